package gateway

import (
	"net/http"

	"gantry/agent/httpio"
	"gantry/pipeline"
	"gantry/pipeline/chat"
	inbound "gantry/pipeline/inbound/responses"
)

// responses serves POST /v1/responses, OpenAI's Responses API, statelessly:
// the translation refuses previous_response_id, store and the other
// fields that need stored responses. Errors keep OpenAI's shape; metadata
// carries a feature's variables, as on chat completions.
func (h *Handlers) responses(w http.ResponseWriter, r *http.Request) {
	var areq *inbound.Request
	c := h.prepare(w, r, pipeline.EntryResponses, httpio.ChatError, func(snap *pipeline.Snapshot, c *pipeline.Call, body []byte) error {
		a, req, err := inbound.Decode(body)
		if err != nil {
			return err
		}
		areq, c.Req = a, req
		if err := req.CheckLimits(snap.ChatLimits()); err != nil {
			ce := asChatError(err)
			if ce.Param == "max_completion_tokens" { // the translation's name for it
				ce.Param = "max_output_tokens"
				ce.Message = "max_output_tokens" + ce.Message[len("max_completion_tokens"):]
			}
			return ce
		}
		return nil
	})
	if c == nil {
		return
	}
	created := c.Received.Unix()
	if !c.Req.Stream {
		err := h.Gateway.Serve(r.Context(), c)
		rateHeaders(w, c)
		if err != nil {
			httpio.ChatError(w, err)
			return
		}
		w.Header()["X-Gantry-Model"] = []string{c.Answered.Model.Name}
		evalResponseHeaders(w, c)
		httpio.JSON(w, http.StatusOK, inbound.FromChat(c.ID, created, areq, c.Resp, h.usage(c)))
		return
	}
	sse := httpio.NewSSE(w)
	st := inbound.NewStream(c.ID, created, areq)
	write := func(evs []inbound.Event) error {
		for _, e := range evs {
			if err := sse.Named(e.Name, e.Data); err != nil {
				return err
			}
		}
		return nil
	}
	c.Emit = func(ch *chat.Chunk) error {
		if !sse.Started() {
			w.Header().Set("X-Gantry-Model", ch.Model)
			rateHeaders(w, c)
			if err := write(st.Start()); err != nil {
				return err
			}
		}
		return write(st.Chunk(ch))
	}
	err := h.Gateway.Serve(r.Context(), c)
	switch {
	case err == nil:
		write(st.Finish(c.Resp.Choices[0].FinishReason, h.usage(c)))
	case !sse.Started():
		rateHeaders(w, c)
		httpio.ChatError(w, err)
	default:
		// Output already went out: error and response.failed, never
		// response.completed.
		write(st.Fail(err))
	}
}
