package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gantry/pipeline/chat"
)

// upstream starts a test server and records the last request body.
type upstream struct {
	srv  *httptest.Server
	body chan []byte
	hdr  chan http.Header
}

func newUpstream(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) *upstream {
	t.Helper()
	u := &upstream{body: make(chan []byte, 16), hdr: make(chan http.Header, 16)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.body <- b
		u.hdr <- r.Header.Clone()
		handler(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// lastBody returns the JSON body of the request the server got.
func (u *upstream) lastBody(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	select {
	case b := <-u.body:
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("request body %q is not JSON: %v", b, err)
		}
	default:
		t.Fatal("the upstream got no request")
	}
	return m
}

func sseBody(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, e := range events {
		fmt.Fprint(w, e)
		w.(http.Flusher).Flush()
	}
}

func userRequest(model string) *chat.Request {
	return &chat.Request{Model: model, Messages: []chat.Message{{Role: "user", Content: chat.Text("Where is my order?")}}, Metadata: map[string]string{"journey": "checkout"}}
}

// wantError checks that err is an *Error of the kind and status given.
func wantError(t *testing.T, err error, kind Kind, status int) *Error {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a provider *Error", err, err)
	}
	if pe.Kind != kind || pe.Status != status {
		t.Fatalf("error %v: got kind %s status %d, want kind %s status %d", err, pe.Kind, pe.Status, kind, status)
	}
	return pe
}

// drain reads a stream to its end and returns the content, the finish
// reason, the usage and the error that ended it.
func drain(t *testing.T, s Stream) (content, finish string, usage *chat.Usage, end error) {
	t.Helper()
	defer s.Close()
	var b strings.Builder
	for range 100000 {
		c, err := s.Recv()
		if err != nil {
			return b.String(), finish, usage, err
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				b.WriteString(*ch.Delta.Content)
			}
			for _, tc := range ch.Delta.ToolCalls {
				b.WriteString(tc.Function.Arguments)
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			usage = c.Usage
		}
	}
	t.Fatal("stream never ended")
	return
}

const openAIAnswer = `{"id":"chatcmpl-9","object":"chat.completion","created":1764000000,"model":"gpt-4o-mini-2024-07-18",
"choices":[{"index":0,"message":{"role":"assistant","content":"It ships today."},"finish_reason":"stop"}],
"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":8}}}`

func TestOpenAIComplete(t *testing.T) {
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, openAIAnswer)
	})
	p := NewOpenAI(u.srv.URL+"/v1/", "sk-test", nil)
	resp, err := p.Complete(context.Background(), userRequest("gpt-4o-mini"))
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := resp.Choices[0].Message.Content.Text; got != "It ships today." {
		t.Fatalf("content: got %q", got)
	}
	if resp.Usage == nil || resp.Usage.PromptTokens != 12 || resp.Usage.CachedTokens() != 8 {
		t.Fatalf("usage: got %+v", resp.Usage)
	}
	body := u.lastBody(t)
	if _, ok := body["metadata"]; ok {
		t.Fatalf("metadata was sent upstream: %v", body)
	}
	if _, ok := body["stream"]; ok {
		t.Fatalf("stream was sent for a complete call: %v", body)
	}
	if got := (<-u.hdr).Get("Authorization"); got != "Bearer sk-test" {
		t.Fatalf("Authorization: got %q", got)
	}
}

func TestOpenAINoKeyNoAuthorization(t *testing.T) {
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, openAIAnswer) })
	if _, err := NewOpenAI(u.srv.URL, "", nil).Complete(context.Background(), userRequest("llama3")); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	<-u.body
	if got := (<-u.hdr).Get("Authorization"); got != "" {
		t.Fatalf("Authorization: got %q, want none", got)
	}
}

func TestOpenAIFailures(t *testing.T) {
	tests := []struct {
		name       string
		handler    func(w http.ResponseWriter, r *http.Request)
		kind       Kind
		status     int
		message    string
		retryAfter time.Duration
		retryable  bool
	}{
		{"rate limit", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{"message":"Rate limit reached for gpt-4o"}}`)
		}, KindStatus, 429, "Rate limit reached for gpt-4o", 3 * time.Second, true},
		{"bad request", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"Invalid 'messages'","param":"messages"}}`)
		}, KindStatus, 400, "Invalid 'messages'", 0, false},
		{"server error without body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
		}, KindStatus, 502, "Bad Gateway", 0, true},
		{"not json", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>hello</html>")
		}, KindProtocol, 0, "the answer is not a chat completion", 0, true},
		{"no choices", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"id":"x","choices":[]}`)
		}, KindProtocol, 0, "the answer has no choices", 0, true},
		{"error with status 200", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"error":{"message":"model overloaded"}}`)
		}, KindProtocol, 0, "an error in a 200 answer: model overloaded", 0, true},
		{"body cut short", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, `{"id":"x",`)
		}, KindCut, 0, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, tt.handler)
			_, err := NewOpenAI(u.srv.URL, "k", nil).Complete(context.Background(), userRequest("m"))
			pe := wantError(t, err, tt.kind, tt.status)
			if pe.Message != tt.message {
				t.Fatalf("message: got %q, want %q", pe.Message, tt.message)
			}
			if pe.RetryAfter != tt.retryAfter {
				t.Fatalf("retry after: got %v, want %v", pe.RetryAfter, tt.retryAfter)
			}
			if pe.Retryable() != tt.retryable {
				t.Fatalf("retryable: got %v, want %v", pe.Retryable(), tt.retryable)
			}
		})
	}
}

func TestOpenAIConnectAndTimeout(t *testing.T) {
	// A closed server refuses connections.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	_, err := NewOpenAI(closed.URL, "k", nil).Complete(context.Background(), userRequest("m"))
	wantError(t, err, KindConnect, 0)

	release := make(chan struct{})
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = NewOpenAI(slow.srv.URL, "k", nil).Complete(ctx, userRequest("m"))
	pe := wantError(t, err, KindTimeout, 0)
	if !errors.Is(pe, context.DeadlineExceeded) {
		t.Fatalf("timeout error %v does not wrap context.DeadlineExceeded", pe)
	}

	// A caller that leaves is no upstream failure: no *Error, nothing to retry.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = NewOpenAI(slow.srv.URL, "k", nil).Complete(ctx, userRequest("m"))
	var pe2 *Error
	if errors.As(err, &pe2) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: got %v, want a wrapped context.Canceled that is no *Error", err)
	}
}

func chunkEvent(content string, finish string) string {
	c := chat.Chunk{ID: "c1", Object: chat.ObjectChunk, Model: "m", Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &content}}}}
	if finish != "" {
		c.Choices[0].FinishReason = &finish
		c.Choices[0].Delta = chat.Delta{}
	}
	b, _ := json.Marshal(c)
	return "data: " + string(b) + "\n\n"
}

const usageEvent = `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}` + "\n\n"

func TestOpenAIStream(t *testing.T) {
	tests := []struct {
		name    string
		events  []string
		content string
		finish  string
		usage   int // total tokens, 0 for none
		end     error
		kind    Kind // of the Recv error when end is nil
	}{
		{"whole", []string{chunkEvent("It ", ""), ": ping\n\n", chunkEvent("ships.", ""), chunkEvent("", "stop"), usageEvent, "data: [DONE]\n\n"}, "It ships.", "stop", 12, io.EOF, ""},
		{"finished without DONE", []string{chunkEvent("Hi", ""), chunkEvent("", "stop")}, "Hi", "stop", 0, io.EOF, ""},
		{"cut", []string{chunkEvent("It ", ""), chunkEvent("ships", "")}, "It ships", "", 0, nil, KindCut},
		{"cut mid-event", []string{chunkEvent("It ", ""), `data: {"id":"c1","choi`}, "It ", "", 0, nil, KindCut},
		{"error mid-stream", []string{chunkEvent("It ", ""), `data: {"error":{"message":"server overloaded"}}` + "\n\n"}, "It ", "", 0, nil, KindCut},
		{"unreadable chunk", []string{chunkEvent("It ", ""), "data: {nope}\n\n"}, "It ", "", 0, nil, KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { sseBody(w, tt.events...) })
			s, err := NewOpenAI(u.srv.URL, "k", nil).Stream(context.Background(), userRequest("m"))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			body := u.lastBody(t)
			if body["stream"] != true || fmt.Sprint(body["stream_options"]) != "map[include_usage:true]" {
				t.Fatalf("stream request: got stream=%v stream_options=%v", body["stream"], body["stream_options"])
			}
			content, finish, usage, end := drain(t, s)
			if content != tt.content || finish != tt.finish {
				t.Fatalf("got content %q finish %q, want %q %q", content, finish, tt.content, tt.finish)
			}
			if (usage == nil) != (tt.usage == 0) || usage != nil && usage.TotalTokens != tt.usage {
				t.Fatalf("usage: got %+v, want total %d", usage, tt.usage)
			}
			if tt.end != nil {
				if end != tt.end {
					t.Fatalf("end: got %v, want %v", end, tt.end)
				}
				return
			}
			wantError(t, end, tt.kind, 0)
			if _, again := s.Recv(); again != end {
				t.Fatalf("Recv after failure: got %v, want the same %v", again, end)
			}
		})
	}
}

func TestOpenAIStreamFailsBeforeFirstChunk(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		kind    Kind
		status  int
	}{
		{"status", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, KindStatus, 503},
		{"error event first", func(w http.ResponseWriter, r *http.Request) {
			sseBody(w, `data: {"error":{"message":"overloaded"}}`+"\n\n")
		}, KindStatus, 500},
		{"invalid request event first", func(w http.ResponseWriter, r *http.Request) {
			sseBody(w, `data: {"error":{"message":"bad tools","type":"invalid_request_error"}}`+"\n\n")
		}, KindStatus, 400},
		{"empty stream", func(w http.ResponseWriter, r *http.Request) { sseBody(w) }, KindCut, 0},
		{"only DONE", func(w http.ResponseWriter, r *http.Request) { sseBody(w, "data: [DONE]\n\n") }, KindProtocol, 0},
		{"json instead of stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			io.WriteString(w, openAIAnswer)
		}, KindProtocol, 0},
		{"event too large", func(w http.ResponseWriter, r *http.Request) {
			sseBody(w, "data: "+strings.Repeat("x", MaxEventBytes+1)+"\n\n")
		}, KindProtocol, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, tt.handler)
			s, err := NewOpenAI(u.srv.URL, "k", nil).Stream(context.Background(), userRequest("m"))
			if s != nil {
				t.Fatalf("got a stream, want an error")
			}
			wantError(t, err, tt.kind, tt.status)
		})
	}
}

func TestOpenAIStreamDeadlineMidAnswer(t *testing.T) {
	release := make(chan struct{})
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		sseBody(w, chunkEvent("It ", ""))
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s, err := NewOpenAI(u.srv.URL, "k", nil).Stream(ctx, userRequest("m"))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	_, _, _, end := drain(t, s)
	pe := wantError(t, end, KindCut, 0)
	if !errors.Is(pe, context.DeadlineExceeded) {
		t.Fatalf("cut %v does not wrap the deadline", pe)
	}
}

func FuzzOpenAIStream(f *testing.F) {
	f.Add([]byte(chunkEvent("a", "") + chunkEvent("", "stop") + usageEvent + "data: [DONE]\n\n"))
	f.Add([]byte(`data: {"error":"x"}` + "\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\"}}]}}]}\n\n"))
	f.Add([]byte(`data: {"choices":[{"index":7,"delta":{"content":"n"}}],"usage":{"prompt_tokens":-5,"completion_tokens":-1}}` + "\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"\\ud800\"}}]}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzStream(t, body, &openAIDecoder{}, checkChunk(t))
	})
}

// checkChunk vets what a stream decoder hands the gateway: a chunk it can
// send on to its client as JSON, with usage that is never negative.
func checkChunk(t *testing.T) func(*chat.Chunk) {
	return func(c *chat.Chunk) {
		t.Helper()
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("a chunk the gateway cannot send on: %v", err)
		}
		if u := c.Usage; u != nil && (u.PromptTokens < 0 || u.CompletionTokens < 0 || u.TotalTokens < 0 || u.CachedTokens() < 0) {
			t.Fatalf("negative usage %+v", *u)
		}
	}
}

// fuzzStream reads body as a stream through dec: every failure must be an
// *Error, the stream must end, and check, when set, vets every chunk.
func fuzzStream(t *testing.T, body []byte, dec eventDecoder, check func(*chat.Chunk)) {
	t.Helper()
	s, err := startStream(context.Background(), io.NopCloser(bytes.NewReader(body)), dec)
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("Stream error %v is not an *Error", err)
		}
		return
	}
	for range len(body) + 2 {
		c, err := s.Recv()
		if err == io.EOF {
			return
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Recv error %v is not an *Error", err)
			}
			return
		}
		if c == nil {
			t.Fatal("Recv returned neither a chunk nor an error")
		}
		if check != nil {
			check(c)
		}
	}
	t.Fatal("more chunks than input bytes")
}

func BenchmarkOpenAIStreamDecode(b *testing.B) {
	var in bytes.Buffer
	for range 500 {
		in.WriteString(chunkEvent(" token", ""))
	}
	in.WriteString(chunkEvent("", "stop") + usageEvent + "data: [DONE]\n\n")
	benchStream(b, in.Bytes(), func() eventDecoder { return &openAIDecoder{} })
}

// benchStream reads data as a whole stream per iteration.
func benchStream(b *testing.B, data []byte, newDecoder func() eventDecoder) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := startStream(context.Background(), io.NopCloser(bytes.NewReader(data)), newDecoder())
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	elsewhere := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, openAIAnswer) })
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.srv.URL+"/v1/chat/completions", http.StatusTemporaryRedirect)
	})
	_, err := NewOpenAI(u.srv.URL, "sk-secret", nil).Complete(context.Background(), userRequest("m"))
	if pe := wantError(t, err, KindStatus, http.StatusTemporaryRedirect); pe.Retryable() {
		t.Fatalf("a redirect is retryable: %v", pe)
	}
	select {
	case <-elsewhere.body:
		t.Fatal("the request followed the redirect")
	default:
	}
}
