package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// sseWriter writes server-sent events and flushes each one at once, so a
// chunk reaches the client as soon as the upstream sent it.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	buf     []byte
	// enc writes events into out, reused for every chunk of the stream.
	out bytes.Buffer
	enc *json.Encoder
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

func (s *sseWriter) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
}

// event writes one `data:` event holding v as JSON.
func (s *sseWriter) event(v any) error {
	if s.enc == nil {
		s.enc = json.NewEncoder(&s.out)
	}
	s.out.Reset()
	s.out.WriteString("data: ")
	// Encode ends the value with a newline; the event needs one more.
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	s.out.WriteByte('\n')
	return s.send(s.out.Bytes())
}

func (s *sseWriter) raw(data []byte) error {
	s.buf = append(s.buf[:0], "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, '\n', '\n')
	return s.send(s.buf)
}

// send writes one whole event and flushes it.
func (s *sseWriter) send(event []byte) error {
	s.start()
	if _, err := s.w.Write(event); err != nil {
		return err
	}
	return s.rc.Flush()
}

// done ends a stream the OpenAI way.
func (s *sseWriter) done() error { return s.raw([]byte("[DONE]")) }

// comment writes an SSE comment line; readers ignore it, proxies see life.
func (s *sseWriter) comment(text string) error {
	s.start()
	if _, err := s.w.Write([]byte(": " + text + "\n\n")); err != nil {
		return err
	}
	return s.rc.Flush()
}
