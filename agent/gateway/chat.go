package gateway

import (
	"net/http"

	"gantry/agent/httpio"
	"gantry/pipeline"
	"gantry/pipeline/chat"
)

// chatCompletions serves POST /v1/chat/completions.
func (h *Handlers) chatCompletions(w http.ResponseWriter, r *http.Request) {
	snap := h.snapshot(w)
	if snap == nil {
		return
	}
	c := newCall(r, pipeline.EntryChat)
	setTraceHeaders(w, c)
	body, cerr := h.readBody(w, r, snap.Limits.MaxBodyBytes)
	if cerr == nil {
		var err error
		c.Req, err = chat.DecodeRequestWith(body, snap.ChatLimits())
		if err != nil {
			cerr = err.(*chat.Error)
		}
	}
	if j := r.Header.Get("X-Gantry-Journey"); cerr == nil && len(j) > maxJourney {
		cerr = chat.BadRequest("X-Gantry-Journey", "the X-Gantry-Journey header is longer than %d bytes", maxJourney)
	}
	if cerr == nil {
		cerr = evalHeaders(r, c)
	}
	if cerr != nil {
		h.reject(w, c, cerr)
		return
	}
	c.User = c.Req.User
	c.Journey = r.Header.Get("X-Gantry-Journey")
	if len(c.Req.Metadata) > 0 {
		c.Vars = make(map[string]any, len(c.Req.Metadata))
		for k, v := range c.Req.Metadata {
			c.Vars[k] = v
		}
	}
	if !c.Req.Stream {
		err := h.Gateway.Serve(r.Context(), c)
		rateHeaders(w, c)
		if err != nil {
			httpio.ChatError(w, err.(*chat.Error))
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
		httpio.ChatError(w, err.(*chat.Error))
	default:
		// Output already went out: end with an error event, never [DONE],
		// so the client knows the answer is incomplete.
		sse.Event(err.(*chat.Error).Body())
	}
}

// models serves GET /v1/models: what the caller's key may name.
func (h *Handlers) models(w http.ResponseWriter, r *http.Request) {
	snap := h.snapshot(w)
	if snap == nil {
		return
	}
	k, err := pipeline.Authenticate(snap, httpio.Bearer(r))
	if err != nil {
		httpio.ChatError(w, err.(*chat.Error))
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
	for _, id := range snap.ModelIDs() {
		if pipeline.KeyAllows(k, id) {
			out.Data = append(out.Data, model{ID: id, Object: "model", Created: snap.Loaded.Unix(), OwnedBy: "gantry"})
		}
	}
	httpio.JSON(w, http.StatusOK, out)
}
