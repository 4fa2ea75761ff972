package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"gantry/pipeline/chat"
)

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

// writeJSON writes v as a JSON response, ended by a newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
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

// writeChatError writes a gateway error in the OpenAI shape. It is the one
// place that turns a pipeline error into an HTTP status.
func writeChatError(w http.ResponseWriter, e *chat.Error) {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	status := e.Status
	if status == 499 { // the client is gone; nobody reads this
		status = http.StatusBadRequest
	}
	writeJSON(w, status, e.Body())
}
