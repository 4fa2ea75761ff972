package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"

	"gantry/agent/httpio"
	"gantry/pipeline"
	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
)

// invokeRequest is the body of POST /v1/features/{name}/invoke.
type invokeRequest struct {
	Vars    map[string]any `json:"vars"`
	User    string         `json:"user"`
	Journey string         `json:"journey"`
}

// InvokeResponse is what a feature invocation returns.
type InvokeResponse struct {
	Output      any            `json:"output"`
	TraceID     string         `json:"trace_id"`
	RequestID   string         `json:"request_id"`
	Release     string         `json:"release"`
	ReleaseHash string         `json:"release_hash"`
	Label       string         `json:"label"`
	Model       string         `json:"model"`
	Usage       *chat.Usage    `json:"usage,omitempty"`
	Sources     []trace.Source `json:"sources"`
	// Evaluation calls also get what assertions judge beyond the output:
	// the call's cost, the model's tool calls and the retrieved context.
	CostUSD   *float64        `json:"cost_usd,omitempty"`
	ToolCalls []chat.ToolCall `json:"tool_calls,omitempty"`
	Context   string          `json:"context,omitempty"`
}

// invoke serves POST /v1/features/{name}/invoke.
func (h *Handlers) invoke(w http.ResponseWriter, r *http.Request) {
	snap := h.snapshot(w)
	if snap == nil {
		return
	}
	c := newCall(r, pipeline.EntryInvoke)
	c.Snap = snap // one configuration for the whole request, decoding included
	setTraceHeaders(w, c)
	body, cerr := h.readBody(w, r, snap.Limits.MaxBodyBytes)
	var in invokeRequest
	if cerr == nil {
		cerr = decodeInvoke(body, &in)
	}
	c.Req = &chat.Request{Model: pipeline.FeaturePrefix + r.PathValue("name")}
	if cerr == nil {
		cerr = evalHeaders(r, c)
	}
	if cerr != nil {
		h.reject(w, c, cerr)
		return
	}
	c.Vars, c.User, c.Journey = in.Vars, in.User, in.Journey
	err := h.Gateway.Serve(r.Context(), c)
	rateHeaders(w, c)
	if err != nil {
		httpio.ChatError(w, err)
		return
	}
	out := InvokeResponse{
		Output:      c.Output(),
		TraceID:     c.TraceID.String(),
		RequestID:   c.ID,
		Release:     c.Release.ID,
		ReleaseHash: c.Release.Hash,
		Label:       c.Label,
		Model:       c.Answered.Model.Name,
		Sources:     c.Sources,
	}
	if c.UsageKnown {
		out.Usage = &c.Usage
	}
	if c.Release.Schema != nil {
		out.Output = json.RawMessage(c.Output()) // validated JSON
	}
	if out.Sources == nil {
		out.Sources = []trace.Source{}
	}
	if c.Evaluation() {
		cost := c.CostUSD
		out.CostUSD, out.Context = &cost, c.Context
		if len(c.Resp.Choices) > 0 {
			out.ToolCalls = c.Resp.Choices[0].Message.ToolCalls
		}
		evalResponseHeaders(w, c)
	}
	httpio.JSON(w, http.StatusOK, out)
}

func decodeInvoke(body []byte, in *invokeRequest) *chat.Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil // no variables
	}
	if err := chat.DecodeJSON(body, in); err != nil {
		return err
	}
	if len(in.User) > 256 {
		return chat.BadRequest("user", "user is longer than 256 characters")
	}
	if len(in.Journey) > 256 {
		return chat.BadRequest("journey", "journey is longer than 256 characters")
	}
	return nil
}
