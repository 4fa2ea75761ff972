package gateway

import (
	"errors"
	"net/http"

	"gantry/agent/httpio"
	"gantry/pipeline"
	"gantry/pipeline/chat"
)

// decoder reads a request body into c: c.Req, and c.Embed for an
// embeddings call. Every error is a *chat.Error.
type decoder func(snap *pipeline.Snapshot, c *pipeline.Call, body []byte) error

// prepare starts a call through entry: it reads the body within the
// snapshot's limit, decodes it and reads the headers every entry takes.
// A request it refuses is answered with fail and recorded, and prepare
// returns nil.
func (h *Handlers) prepare(w http.ResponseWriter, r *http.Request, entry string, fail errorWriter, decode decoder) *pipeline.Call {
	snap := h.snapshotOr(w, fail)
	if snap == nil {
		return nil
	}
	c := newCall(r, entry)
	c.Snap = snap // one configuration for the whole request, decoding included
	setTraceHeaders(w, c)
	body, cerr := h.readBody(w, r, snap.Limits.MaxBodyBytes)
	if cerr == nil {
		if err := decode(snap, c, body); err != nil {
			cerr = asChatError(err)
		}
	}
	if j := r.Header.Get("X-Gantry-Journey"); cerr == nil && len(j) > maxJourney {
		cerr = chat.BadRequest("X-Gantry-Journey", "the X-Gantry-Journey header is longer than %d bytes", maxJourney)
	}
	if cerr == nil {
		cerr = evalHeaders(r, c)
	}
	if cerr != nil {
		h.rejectWith(w, c, cerr, fail)
		return nil
	}
	c.User = c.Req.User
	c.Journey = r.Header.Get("X-Gantry-Journey")
	// Metadata carries a feature's variables.
	if len(c.Req.Metadata) > 0 {
		c.Vars = make(map[string]any, len(c.Req.Metadata))
		for k, v := range c.Req.Metadata {
			c.Vars[k] = v
		}
	}
	return c
}

// asChatError is err as the gateway's error; decoders return nothing
// else, so anything else is a bug and a 500.
func asChatError(err error) *chat.Error {
	var ce *chat.Error
	if errors.As(err, &ce) {
		return ce
	}
	return &chat.Error{Status: http.StatusInternalServerError, Type: chat.TypeServer, Message: "internal error in the gateway", Cause: err}
}

// decodeChat reads a chat completion request.
func decodeChat(snap *pipeline.Snapshot, c *pipeline.Call, body []byte) error {
	req, err := chat.DecodeRequestWith(body, snap.ChatLimits())
	c.Req = req
	return err
}

// chatCompletions serves POST /v1/chat/completions.
func (h *Handlers) chatCompletions(w http.ResponseWriter, r *http.Request) {
	c := h.prepare(w, r, pipeline.EntryChat, httpio.ChatError, decodeChat)
	if c == nil {
		return
	}
	if !c.Req.Stream {
		err := h.Gateway.Serve(r.Context(), c)
		rateHeaders(w, c)
		if err != nil {
			httpio.ChatError(w, err)
			return
		}
		w.Header()["X-Gantry-Model"] = []string{c.Answered.Model.Name}
		evalResponseHeaders(w, c)
		httpio.JSON(w, http.StatusOK, c.Resp)
		return
	}
	sse := httpio.NewSSE(w)
	c.Emit = func(ch *chat.Chunk) error {
		if !sse.Started() {
			w.Header().Set("x-gantry-model", ch.Model)
			rateHeaders(w, c)
		}
		return sse.Event(ch)
	}
	err := h.Gateway.Serve(r.Context(), c)
	switch {
	case err == nil:
		sse.Done()
	case !sse.Started():
		rateHeaders(w, c)
		httpio.ChatError(w, err)
	default:
		// Output already went out: end with an error event, never [DONE],
		// so the client knows the answer is incomplete.
		sse.Event(err.Body())
	}
}

// usage is what a finished call used: the provider's count, else the
// gateway's estimate of its input and first choice, as the trace records
// them. The Messages and Responses APIs always report usage.
func (h *Handlers) usage(c *pipeline.Call) chat.Usage {
	if c.UsageKnown {
		return c.Usage
	}
	u := chat.Usage{PromptTokens: c.InputTokens}
	if c.Resp != nil && len(c.Resp.Choices) > 0 {
		m := c.Resp.Choices[0].Message
		u.CompletionTokens = h.Gateway.CountText(m.Content.Text)
		for _, tc := range m.ToolCalls {
			u.CompletionTokens += h.Gateway.CountText(tc.Function.Arguments)
		}
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// models serves GET /v1/models: what the caller's key may name, in
// Anthropic's list shape for a client that sends anthropic-version.
func (h *Handlers) models(w http.ResponseWriter, r *http.Request) {
	fail := errorsFor(r)
	snap := h.snapshotOr(w, fail)
	if snap == nil {
		return
	}
	k, err := pipeline.Authenticate(snap, httpio.Bearer(r))
	if err != nil {
		fail(w, err)
		return
	}
	var ids []string
	for _, id := range snap.ModelIDs() {
		if pipeline.KeyAllows(k, id) {
			ids = append(ids, id)
		}
	}
	if anthropicClient(r) {
		httpio.JSON(w, http.StatusOK, anthropicModels(ids, snap.Loaded))
		return
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, id := range ids {
		out.Data = append(out.Data, model{ID: id, Object: "model", Created: snap.Loaded.Unix(), OwnedBy: "gantry"})
	}
	httpio.JSON(w, http.StatusOK, out)
}
