// Package fake is a scriptable stand-in for model upstreams, for tests and
// load runs: an http.Handler that speaks OpenAI's chat completions API
// (/v1/chat/completions, streaming and not) and Anthropic's Messages API
// (/v1/messages), and injects faults on request: error statuses with
// Retry-After, delays before the headers and between chunks, garbage
// bodies, streams cut after some chunks, errors in the middle of a stream,
// oversized bodies and connections closed without an answer.
//
// A Fake with no faults and no delays does little per request beyond
// decoding the request, so a gateway benchmark can use it as its upstream
// without measuring the fake.
//
// For every other provider, and for exact wire formats, a Replay serves
// Recordings: answers written from the providers' API references as
// HTTP/1.1 responses (and AWS event-stream frames), optionally cut mid-body.
package fake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the Fake does to one request. The zero Fault answers
// normally.
type Fault struct {
	// Status, when not 0 or 200, answers with this status and an error body
	// in the API's shape.
	Status int
	// RetryAfter and RetryAfterMS set the Retry-After and retry-after-ms
	// headers of an error answer, verbatim.
	RetryAfter   string
	RetryAfterMS string
	// Message is the error message; empty means a stock one.
	Message string
	// HeaderDelay waits before sending the headers; ChunkDelay waits before
	// every stream chunk after the first. Both end early when the client
	// goes away.
	HeaderDelay time.Duration
	ChunkDelay  time.Duration
	// Garbage answers with status 200 and a body that is not JSON (for a
	// stream: events that are not JSON).
	Garbage bool
	// CutAfter, when above 0, ends a stream after that many content chunks
	// without its end marker, and a complete answer after that many bytes
	// of its body.
	CutAfter int
	// ErrorAfter, when above 0, sends an error event after that many
	// content chunks of a stream.
	ErrorAfter int
	// Hijack closes the connection without answering.
	Hijack bool
	// Pad adds that many bytes of whitespace to a complete answer, to make
	// it oversized.
	Pad int
}

// Options configure a Fake.
type Options struct {
	// Content is the answer's text; empty means a stock sentence.
	Content string
	// Chunks is how many content chunks a stream splits Content into; 0
	// means one per word.
	Chunks int
	// Model overrides the model name in answers; empty echoes the request.
	Model string
	// APIKey, when set, is required: as a Bearer token on the OpenAI path
	// and as x-api-key on the Anthropic path. A wrong key gets 401.
	APIKey string
	// ToolArguments are the JSON arguments of the tool call the Fake makes
	// when a request offers tools (and tool_choice is not "none" and the
	// last message is no tool result); empty means "{}".
	ToolArguments string
	// PromptTokens and CompletionTokens are reported as usage; 0 means 10
	// and the number of chunks.
	PromptTokens     int
	CompletionTokens int
	// CachedTokens is reported as cached prompt tokens.
	CachedTokens int
	// Script gives the fault of each request in arrival order; requests
	// beyond it get Default. FaultFunc, when set, decides instead, from the
	// request's number (counting from 0).
	Script    []Fault
	Default   Fault
	FaultFunc func(n int64) Fault
	// Record keeps the bodies of the last RecordLimit requests (default
	// 64) for Requests; off by default so load runs do not pay for it.
	Record      bool
	RecordLimit int
}

// Request is a request the Fake received.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
}

// Fake is the handler. It is safe for concurrent use.
type Fake struct {
	opts   Options
	pieces []string // content chunks
	quoted [][]byte // the same, JSON-encoded, so streams skip the encoder
	count  atomic.Int64

	mu       sync.Mutex
	received []Request
}

var _ http.Handler = (*Fake)(nil)

// New returns a Fake.
func New(opts Options) *Fake {
	if opts.Content == "" {
		opts.Content = "Your order shipped yesterday and should arrive within three business days."
	}
	if opts.ToolArguments == "" {
		opts.ToolArguments = "{}"
	}
	if opts.RecordLimit <= 0 {
		opts.RecordLimit = 64
	}
	f := &Fake{opts: opts, pieces: split(opts.Content, opts.Chunks)}
	for _, p := range f.pieces {
		f.quoted = append(f.quoted, mustJSON(p))
	}
	if f.opts.PromptTokens == 0 {
		f.opts.PromptTokens = 10
	}
	if f.opts.CompletionTokens == 0 {
		f.opts.CompletionTokens = len(f.pieces)
	}
	return f
}

// Handler returns a Fake as an http.Handler, for a server that only serves
// it.
func Handler(opts Options) http.Handler { return New(opts) }

// NewServer starts an httptest server running a Fake. Its URL + "/v1" is
// the base URL of an OpenAI-kind provider; its URL is the base URL of an
// Anthropic-kind one. The caller closes the server.
func NewServer(opts Options) (*httptest.Server, *Fake) {
	f := New(opts)
	return httptest.NewServer(f), f
}

// Count is the number of requests received so far, faulted ones included.
func (f *Fake) Count() int64 { return f.count.Load() }

// Requests returns the recorded requests, oldest first.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.received...)
}

// split cuts s into n pieces at word starts, or into words when n is 0.
func split(s string, n int) []string {
	var words []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' && s[i-1] != ' ' {
			words = append(words, s[start:i])
			start = i
		}
	}
	words = append(words, s[start:])
	if n <= 0 || n >= len(words) {
		return words
	}
	out := make([]string, 0, n)
	per := (len(words) + n - 1) / n
	for i := 0; i < len(words); i += per {
		out = append(out, strings.Join(words[i:min(i+per, len(words))], ""))
	}
	return out
}

func (f *Fake) fault(n int64) Fault {
	if f.opts.FaultFunc != nil {
		return f.opts.FaultFunc(n)
	}
	if n < int64(len(f.opts.Script)) {
		return f.opts.Script[n]
	}
	return f.opts.Default
}

// maxRequestBody bounds what the Fake reads of a request.
const maxRequestBody = 8 << 20

// request is what the Fake needs of either API's request.
type request struct {
	Model      string            `json:"model"`
	Stream     bool              `json:"stream"`
	Tools      []json.RawMessage `json:"tools"`
	ToolChoice json.RawMessage   `json:"tool_choice"`
	Messages   []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.count.Add(1) - 1
	var api api
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/chat/completions"):
		api = openAI{}
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/messages"):
		api = anthropic{}
	default:
		http.Error(w, `{"error":{"message":"not found","type":"not_found_error"}}`, http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil || len(body) > maxRequestBody {
		api.error(w, http.StatusBadRequest, "the request body is unreadable or too large")
		return
	}
	if f.opts.Record {
		f.mu.Lock()
		if len(f.received) >= f.opts.RecordLimit {
			f.received = append(f.received[:0], f.received[1:]...)
		}
		f.received = append(f.received, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
	}
	fault := f.fault(n)
	if fault.Hijack {
		hijackClose(w)
		return
	}
	if !wait(r, fault.HeaderDelay) {
		return
	}
	if f.opts.APIKey != "" && api.key(r) != f.opts.APIKey {
		api.error(w, http.StatusUnauthorized, "invalid api key")
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		api.error(w, http.StatusBadRequest, "the request body is not JSON: "+err.Error())
		return
	}
	if fault.Status != 0 && fault.Status != http.StatusOK {
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		if fault.RetryAfterMS != "" {
			w.Header().Set("Retry-After-Ms", fault.RetryAfterMS)
		}
		msg := fault.Message
		if msg == "" {
			msg = http.StatusText(fault.Status)
		}
		api.error(w, fault.Status, msg)
		return
	}
	a := answer{f: f, n: n, req: &req, fault: fault, r: r, model: req.Model}
	if f.opts.Model != "" {
		a.model = f.opts.Model
	}
	a.tool = toolName(&req)
	if req.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		api.stream(w, &a)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	api.complete(w, &a)
}

// toolName is the tool the Fake calls, or "" for a text answer.
func toolName(req *request) string {
	if len(req.Tools) == 0 || string(req.ToolChoice) == `"none"` {
		return ""
	}
	if k := len(req.Messages); k > 0 {
		last := req.Messages[k-1]
		if last.Role == "tool" {
			return ""
		}
		// Anthropic sends tool results as user blocks.
		if last.Role == "user" && strings.Contains(string(last.Content), `"tool_result"`) {
			return ""
		}
	}
	var t struct {
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(req.Tools[0], &t) != nil {
		return ""
	}
	var choice struct {
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(req.ToolChoice, &choice) == nil {
		if choice.Function.Name != "" {
			return choice.Function.Name
		}
		if choice.Name != "" {
			return choice.Name
		}
	}
	if t.Function.Name != "" {
		return t.Function.Name
	}
	return t.Name
}

// answer is one successful (or partly successful) answer in the making.
type answer struct {
	f     *Fake
	n     int64
	req   *request
	fault Fault
	r     *http.Request
	model string
	tool  string
}

func (a *answer) id(prefix string) string { return prefix + strconv.FormatInt(a.n, 10) }

// api writes one API's answers.
type api interface {
	key(r *http.Request) string
	error(w http.ResponseWriter, status int, msg string)
	complete(w http.ResponseWriter, a *answer)
	stream(w http.ResponseWriter, a *answer)
}

// wait sleeps d unless the client leaves first; it reports whether to go on.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// hijackClose drops the connection without a response.
func hijackClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 cannot hijack; aborting the handler resets the stream.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// writeBody writes a complete body, honouring Pad and CutAfter. A cut body
// announces its full length, so the client sees it end early.
func writeBody(w http.ResponseWriter, a *answer, body []byte) {
	if a.fault.Garbage {
		io.WriteString(w, "<html><body>502 upstream hiccup</body></html>")
		return
	}
	if a.fault.Pad > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+a.fault.Pad))
		// Whitespace before the closing brace keeps the JSON valid.
		w.Write(body[:len(body)-1])
		pad := []byte(strings.Repeat(" ", 32<<10))
		for left := a.fault.Pad; left > 0; {
			k := min(left, len(pad))
			if _, err := w.Write(pad[:k]); err != nil {
				return
			}
			left -= k
		}
		w.Write(body[len(body)-1:])
		return
	}
	if a.fault.CutAfter > 0 && a.fault.CutAfter < len(body) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:a.fault.CutAfter])
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// streamer writes server-sent events, flushing when the client should see
// them apart: with a chunk delay, after every event; without, once at the
// end, which is what keeps a zero-latency Fake cheap.
type streamer struct {
	w     http.ResponseWriter
	r     *http.Request
	delay time.Duration
	buf   []byte
}

func (s *streamer) event(name string, data []byte) {
	s.buf = s.buf[:0]
	if name != "" {
		s.buf = append(s.buf, "event: "...)
		s.buf = append(s.buf, name...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
	s.w.Write(s.buf)
	if s.delay > 0 {
		s.flush()
	}
}

// pause waits between chunks; it reports whether to go on.
func (s *streamer) pause() bool { return wait(s.r, s.delay) }

func (s *streamer) flush() {
	if fl, ok := s.w.(http.Flusher); ok {
		fl.Flush()
	}
}

// cut ends the stream abruptly: what was written is flushed, then the
// connection closes without the end marker.
func (s *streamer) cut() {
	s.flush()
	// Aborting the handler closes the connection (or resets the HTTP/2
	// stream) without the chunked body's terminator.
	panic(http.ErrAbortHandler)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("fake: " + err.Error())
	}
	return b
}
