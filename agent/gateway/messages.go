package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gantry/agent/httpio"
	"gantry/config"
	"gantry/pipeline"
	"gantry/pipeline/chat"
	"gantry/pipeline/inbound/messages"
)

// Anthropic's Messages API, POST /v1/messages and
// /v1/messages/count_tokens, for the Anthropic SDKs and Claude Code: the
// key comes as x-api-key or a Bearer token, anthropic-version and
// anthropic-beta are accepted whatever they say (the answer's shape does
// not depend on them), and every error, 401 and 404 included, is in
// Anthropic's shape.

// anthropicClient reports whether the request comes from an Anthropic
// client: every Anthropic SDK sends anthropic-version.
func anthropicClient(r *http.Request) bool {
	return r.Header.Get("Anthropic-Version") != ""
}

// errorsFor is the error shape the client of r reads.
func errorsFor(r *http.Request) errorWriter {
	if anthropicClient(r) {
		return httpio.MessagesError
	}
	return httpio.ChatError
}

// decodeMessages reads a Messages API request. For a feature, the
// metadata's keys other than user_id are its variables, as a chat
// request's metadata is.
func decodeMessages(snap *pipeline.Snapshot, c *pipeline.Call, body []byte) error {
	_, req, err := messages.Decode(body)
	if err != nil {
		return err
	}
	c.Req = req
	if strings.HasPrefix(req.Model, pipeline.FeaturePrefix) {
		if err := featureVars(body, req); err != nil {
			return err
		}
	}
	return req.CheckLimits(snap.ChatLimits())
}

// featureVars takes the metadata's variables into req.Metadata, where the
// chat request's limits bound them.
func featureVars(body []byte, req *chat.Request) error {
	var v struct {
		Metadata map[string]json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return chat.BadRequest("metadata", "metadata must be an object")
	}
	for k, raw := range v.Metadata {
		if k == "user_id" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return chat.BadRequest("metadata."+k, "metadata.%s must be a string: a feature's variables are strings", k)
		}
		if req.Metadata == nil {
			req.Metadata = map[string]string{}
		}
		req.Metadata[k] = s
	}
	return nil
}

// messages serves POST /v1/messages.
func (h *Handlers) messages(w http.ResponseWriter, r *http.Request) {
	c := h.prepare(w, r, pipeline.EntryMessages, httpio.MessagesError, decodeMessages)
	if c == nil {
		return
	}
	// Anthropic's SDKs report this header as the request id of an error.
	w.Header()["Request-Id"] = []string{c.ID}
	if !c.Req.Stream {
		err := h.Gateway.Serve(r.Context(), c)
		rateHeaders(w, c)
		if err != nil {
			httpio.MessagesError(w, err)
			return
		}
		w.Header()["X-Gantry-Model"] = []string{c.Answered.Model.Name}
		evalResponseHeaders(w, c)
		httpio.JSON(w, http.StatusOK, messages.FromChat(c.ID, c.Answered.Model.Name, c.Resp, h.usage(c)))
		return
	}
	sse := httpio.NewSSE(w)
	var st *messages.Stream
	write := func(evs []messages.Event) error {
		for _, e := range evs {
			if err := sse.Named(e.Name, e.Data); err != nil {
				return err
			}
		}
		return nil
	}
	c.Emit = func(ch *chat.Chunk) error {
		if st == nil {
			w.Header().Set("X-Gantry-Model", ch.Model)
			rateHeaders(w, c)
			st = messages.NewStream(c.ID, ch.Model)
			if err := write(st.Start(c.InputTokens)); err != nil {
				return err
			}
		}
		return write(st.Chunk(ch))
	}
	err := h.Gateway.Serve(r.Context(), c)
	switch {
	case err == nil:
		if st == nil { // an answer without a chunk: the events still say so
			st = messages.NewStream(c.ID, c.Answered.Model.Name)
		}
		write(st.Finish(c.Resp.Choices[0].FinishReason, h.usage(c)))
	case st == nil:
		rateHeaders(w, c)
		httpio.MessagesError(w, err)
	default:
		// Output already went out: an error event, never message_stop,
		// so the client knows the answer is incomplete.
		write([]messages.Event{messages.ErrorEvent(err)})
	}
}

// countTokens serves POST /v1/messages/count_tokens: the request's input
// tokens as Gantry's limits and budgets count them. The key must be
// valid and allowed the model; nothing is called upstream or traced.
// For a feature the caller's messages are counted, not its release's
// template.
func (h *Handlers) countTokens(w http.ResponseWriter, r *http.Request) {
	snap := h.snapshotOr(w, httpio.MessagesError)
	if snap == nil {
		return
	}
	k, err := pipeline.Authenticate(snap, httpio.Bearer(r))
	if err != nil {
		httpio.MessagesError(w, err)
		return
	}
	body, cerr := h.readBody(w, r, snap.Limits.MaxBodyBytes)
	if cerr != nil {
		httpio.MessagesError(w, cerr)
		return
	}
	n, terr := messages.CountTokens(body)
	if terr != nil {
		httpio.MessagesError(w, asChatError(terr))
		return
	}
	var named struct {
		Model string `json:"model"`
	}
	json.Unmarshal(body, &named) // CountTokens decoded it already
	if cerr := modelAllowed(snap, k, named.Model); cerr != nil {
		httpio.MessagesError(w, cerr)
		return
	}
	httpio.JSON(w, http.StatusOK, map[string]int{"input_tokens": n})
}

// modelAllowed says whether name is a model, route or feature this gateway
// serves and the key may name, with the errors a call would get.
func modelAllowed(snap *pipeline.Snapshot, k *config.Key, name string) *chat.Error {
	if name == "" {
		return chat.BadRequest("model", "model is required")
	}
	if f, ok := strings.CutPrefix(name, pipeline.FeaturePrefix); ok {
		if _, ok := snap.Feature(f); !ok {
			return chat.NotFound("feature_not_found", "feature %q does not exist", f)
		}
	} else if _, ok := snap.Route(name); !ok {
		return chat.NotFound("model_not_found", "model %q does not exist; GET /v1/models lists what this gateway serves", name)
	}
	if !pipeline.KeyAllows(k, name) {
		return &chat.Error{Status: http.StatusForbidden, Type: chat.TypePermission, Code: "model_not_allowed",
			Message: fmt.Sprintf("key %q may not use %q", k.Name, name)}
	}
	return nil
}

// anthropicModels is the model list in Anthropic's shape.
func anthropicModels(ids []string, loaded time.Time) any {
	type model struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
	}
	out := struct {
		Data    []model `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}{Data: []model{}}
	for _, id := range ids {
		out.Data = append(out.Data, model{ID: id, Type: "model", DisplayName: id, CreatedAt: loaded.UTC().Format(time.RFC3339)})
	}
	if n := len(ids); n > 0 {
		out.FirstID, out.LastID = &ids[0], &ids[n-1]
	}
	return out
}
