package httpio

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// DefaultStall is how long one event may wait for a client that reads
// nothing before its stream is ended.
const DefaultStall = 30 * time.Second

// SSE writes server-sent events and flushes each one at once, so a chunk
// reaches the client as soon as the upstream sent it.
type SSE struct {
	// Stall bounds how long one event may take to leave, so a client that
	// stops reading cannot hold the stream, its upstream call and the
	// connection for ever [DefaultStall]; 0 sets no bound.
	Stall   time.Duration
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	buf     []byte
	// enc writes events into out, reused for every chunk of the stream.
	out bytes.Buffer
	enc *json.Encoder
}

// NewSSE starts nothing yet: the status and headers go out with the first
// event, so an error before it can still be an ordinary answer.
func NewSSE(w http.ResponseWriter) *SSE {
	return &SSE{w: w, rc: http.NewResponseController(w), Stall: DefaultStall}
}

// Started reports whether anything was written.
func (s *SSE) Started() bool { return s.started }

func (s *SSE) start() {
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

// Event writes one `data:` event holding v as JSON.
func (s *SSE) Event(v any) error {
	return s.NamedEvent("", v)
}

// NamedEvent writes one event of type name (none when empty) holding v as
// JSON, as Anthropic's and the Responses API's streams do.
func (s *SSE) NamedEvent(name string, v any) error {
	if s.enc == nil {
		s.enc = json.NewEncoder(&s.out)
	}
	s.out.Reset()
	if name != "" {
		s.out.WriteString("event: ")
		s.out.WriteString(name)
		s.out.WriteByte('\n')
	}
	s.out.WriteString("data: ")
	// Encode ends the value with a newline; the event needs one more.
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	s.out.WriteByte('\n')
	return s.send(s.out.Bytes())
}

// Named writes one event of type name holding data, already JSON, as it
// is: the inbound translations hand out encoded events.
func (s *SSE) Named(name string, data []byte) error {
	s.buf = append(s.buf[:0], "event: "...)
	s.buf = append(s.buf, name...)
	s.buf = append(s.buf, "\ndata: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, '\n', '\n')
	return s.send(s.buf)
}

// Raw writes one `data:` event holding data as it is.
func (s *SSE) Raw(data []byte) error {
	s.buf = append(s.buf[:0], "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, '\n', '\n')
	return s.send(s.buf)
}

// send writes one whole event and flushes it.
func (s *SSE) send(event []byte) error {
	s.start()
	if s.Stall > 0 {
		// The deadline is lifted after each event: the connection may
		// serve another request after this stream.
		s.rc.SetWriteDeadline(time.Now().Add(s.Stall))
		defer s.rc.SetWriteDeadline(time.Time{})
	}
	if _, err := s.w.Write(event); err != nil {
		return err
	}
	return s.rc.Flush()
}

// Done ends a stream the OpenAI way.
func (s *SSE) Done() error { return s.Raw([]byte("[DONE]")) }

// Comment writes an SSE comment line; readers ignore it, proxies see life.
func (s *SSE) Comment(text string) error {
	return s.send([]byte(": " + text + "\n\n"))
}
