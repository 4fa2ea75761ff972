package pipeline

import (
	"errors"
	"net/http"
	"strconv"

	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/trace"
)

// record turns the finished call into a trace and hands it on. It runs on
// every exit path, success, failure or panic.
func (g *Gateway) record(c *Call) {
	if g.Record == nil {
		return
	}
	g.Record(g.Trace(c))
}

// Trace builds the trace of a finished call. Bodies are left out here: what
// may be kept of prompts and responses is the policy layer's decision.
func (g *Gateway) Trace(c *Call) *trace.Trace {
	end := c.Received
	if n := len(c.Spans); n > 0 {
		end = c.Spans[n-1].Start.Add(c.Spans[n-1].Dur)
	}
	t := &trace.Trace{
		ID:         c.TraceID.String(),
		RequestID:  c.ID,
		Start:      c.Received,
		Duration:   trace.Ms(end.Sub(c.Received)),
		Node:       g.Node,
		Entry:      c.Entry,
		Journey:    c.Journey,
		User:       c.User,
		Stream:     c.Emit != nil,
		Status:     "ok",
		HTTPStatus: http.StatusOK,
		TTFT:       trace.Ms(c.TTFT),
		Upstream:   trace.Ms(c.Upstream),
		Validation: c.Validation,
		Sources:    c.Sources,
	}
	if c.Req != nil {
		t.Requested = c.Req.Model
	}
	if c.Key != nil {
		t.Key, t.Team = c.Key.Name, c.Key.Team
	}
	if c.Release != nil {
		t.Feature, t.Release, t.ReleaseHash, t.Label = c.Release.Feature, c.Release.ID, c.Release.Hash, c.Label
	}
	if c.Route != nil {
		t.Route = c.Route.Name
	}
	for _, s := range c.Spans {
		sp := trace.Span{Name: s.Name, Start: s.Start, Duration: trace.Ms(s.Dur)}
		if s.Err != nil {
			sp.Error = s.Err.Error()
		}
		t.Spans = append(t.Spans, sp)
	}
	models := map[string]bool{}
	for _, o := range c.Outcomes {
		a := trace.Attempt{Model: o.Target.Model.Name, Provider: o.Target.Model.Provider, Start: o.Start,
			Duration: trace.Ms(o.Duration), Backoff: trace.Ms(o.Backoff), Status: "ok"}
		switch {
		case o.Skipped:
			a.Status = "circuit_open"
		case o.Err != nil:
			a.Status, a.Error = attemptStatus(o.Err), o.Err.Error()
		}
		t.Attempts = append(t.Attempts, a)
		models[a.Model] = true
	}
	if len(models) > 1 {
		t.Fallbacks = len(models) - 1
	}
	if c.Answered != nil {
		t.Model, t.Provider = c.Answered.Model.Name, c.Answered.Model.Provider
		in, out, cached := c.Usage.PromptTokens, c.Usage.CompletionTokens, c.Usage.CachedTokens()
		if !c.UsageKnown {
			in, out, t.TokensEstimate = c.InputTokens, 0, true
			if g.CountText != nil {
				out = g.CountText(c.Output())
			}
		}
		t.InputTokens, t.OutputTokens, t.CachedTokens = in, out, cached
		t.CostUSD = c.Answered.Model.Price.Cost(in, cached, out)
	} else if c.Streamed && len(c.Outcomes) > 0 {
		// A stream cut after output was sent still cost money.
		last := c.Outcomes[len(c.Outcomes)-1].Target
		t.Model, t.Provider = last.Model.Name, last.Model.Provider
	}
	if c.Err != nil {
		var ce *chat.Error
		if errors.As(c.Err, &ce) {
			t.HTTPStatus, t.ErrorCode, t.Error = ce.Status, ce.Code, ce.Message
		} else {
			t.HTTPStatus, t.Error = http.StatusInternalServerError, c.Err.Error()
		}
		t.Status = "error"
	}
	return t
}

func attemptStatus(err error) string {
	var pe *provider.Error
	if errors.As(err, &pe) {
		if pe.Kind == provider.KindStatus {
			return "http_" + strconv.Itoa(pe.Status)
		}
		return string(pe.Kind)
	}
	if errors.Is(err, ErrClientGone) {
		return "client_gone"
	}
	return "error"
}
