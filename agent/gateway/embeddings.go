package gateway

import (
	"net/http"

	"gantry/agent/httpio"
	"gantry/pipeline"
	"gantry/pipeline/chat"
)

// decodeEmbeddings reads an embeddings request.
func decodeEmbeddings(_ *pipeline.Snapshot, c *pipeline.Call, body []byte) error {
	req, err := chat.DecodeEmbeddingRequest(body)
	if err != nil {
		return err
	}
	return pipeline.NewEmbeddingCall(c, req)
}

// embeddings serves POST /v1/embeddings through the same stages as a chat
// call: key, model permission, rate limits and budget on the input's
// tokens, routing, trace and cost.
func (h *Handlers) embeddings(w http.ResponseWriter, r *http.Request) {
	c := h.prepare(w, r, pipeline.EntryEmbeddings, httpio.ChatError, decodeEmbeddings)
	if c == nil {
		return
	}
	err := h.Gateway.Serve(r.Context(), c)
	rateHeaders(w, c)
	if err != nil {
		httpio.ChatError(w, err)
		return
	}
	w.Header()["X-Gantry-Model"] = []string{c.Answered.Model.Name}
	httpio.JSON(w, http.StatusOK, c.Embedding)
}
