// Package httpio reads and writes the agent's HTTP: the bearer token of a
// request, JSON answers, the gateway's OpenAI-shaped errors (Anthropic-shaped
// on the Messages API), the admin API's one error shape, and server-sent
// events. Both planes use it, so each shape is written in one place.
package httpio

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"gantry/api"
	"gantry/pipeline/chat"
	"gantry/pipeline/inbound/messages"
)

// Bearer is the token a request presents: `Authorization: Bearer <t>` (the
// scheme in any case, as RFC 9110 says), else an `X-Api-Key` header.
func Bearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) > len("Bearer ") && strings.EqualFold(v[:len("Bearer ")], "Bearer ") {
		return strings.TrimSpace(v[len("Bearer "):])
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}

// jsonBuffer is a response body being encoded; they are pooled because
// every answer needs one.
type jsonBuffer struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonBuffers = sync.Pool{New: func() any {
	b := &jsonBuffer{}
	b.enc = json.NewEncoder(&b.buf)
	return b
}}

// maxPooledJSON is the largest buffer put back in the pool, so one huge
// answer does not stay in memory.
const maxPooledJSON = 64 << 10

// JSON writes v as a JSON response, ended by a newline.
func JSON(w http.ResponseWriter, status int, v any) {
	b := jsonBuffers.Get().(*jsonBuffer)
	defer func() {
		if b.buf.Cap() <= maxPooledJSON {
			b.buf.Reset()
			jsonBuffers.Put(b)
		}
	}()
	if err := b.enc.Encode(v); err != nil {
		http.Error(w, `{"error":{"message":"response does not encode","type":"server_error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b.buf.Bytes())
}

// ChatError writes a gateway error in the OpenAI shape. It and
// MessagesError are the places that turn a pipeline error into an HTTP
// status.
func ChatError(w http.ResponseWriter, e *chat.Error) {
	JSON(w, errorStatus(w, e), e.Body())
}

// MessagesError writes a gateway error in Anthropic's shape, for the
// Messages API: {"type":"error","error":{"type":…,"message":…}}.
func MessagesError(w http.ResponseWriter, e *chat.Error) {
	status, body := messages.ErrorBody(e)
	if status == e.Status {
		status = errorStatus(w, e)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// errorStatus sets Retry-After when the error has one and returns the
// status to send.
func errorStatus(w http.ResponseWriter, e *chat.Error) int {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if e.Status == 499 { // the client is gone; nobody reads this
		return http.StatusBadRequest
	}
	return e.Status
}

// APIError writes the admin API's one error shape.
func APIError(w http.ResponseWriter, status int, code, msg string) {
	JSON(w, status, api.ErrorResponse{Error: api.Error{Code: code, Message: msg}})
}
