// Package httpio reads and writes the agent's HTTP: the bearer token of a
// request, JSON answers, the gateway's OpenAI-shaped errors, the admin API's
// one error shape, and server-sent events. Both planes use it, so each
// shape is written in one place.
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

// ChatError writes a gateway error in the OpenAI shape. It is the one
// place that turns a pipeline error into an HTTP status.
func ChatError(w http.ResponseWriter, e *chat.Error) {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	status := e.Status
	if status == 499 { // the client is gone; nobody reads this
		status = http.StatusBadRequest
	}
	JSON(w, status, e.Body())
}

// APIError writes the admin API's one error shape.
func APIError(w http.ResponseWriter, status int, code, msg string) {
	JSON(w, status, api.ErrorResponse{Error: api.Error{Code: code, Message: msg}})
}
