package fake_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/provider/fake"
)

// kinds are the two HTTP provider kinds, each built against a Fake.
var kinds = []struct {
	name string
	new  func(url, key string) provider.Provider
}{
	{"openai", func(url, key string) provider.Provider { return provider.NewOpenAI(url+"/v1", key, nil) }},
	{"anthropic", func(url, key string) provider.Provider { return provider.NewAnthropic(url, key, nil) }},
}

func start(t *testing.T, opts fake.Options) (string, *fake.Fake) {
	t.Helper()
	srv, f := fake.NewServer(opts)
	t.Cleanup(srv.Close)
	return srv.URL, f
}

func ask(model string) *chat.Request {
	return &chat.Request{Model: model, MaxTokens: 100, Messages: []chat.Message{
		{Role: "system", Content: chat.Text("Answer briefly.")},
		{Role: "user", Content: chat.Text("Where is my order?")},
	}}
}

func withTools(model string) *chat.Request {
	r := ask(model)
	r.Tools = []chat.Tool{{Type: "function", Function: chat.Function{
		Name: "track_order", Description: "Track an order",
		Parameters: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`),
	}}}
	return r
}

func wantKind(t *testing.T, err error, kind provider.Kind, status int) *provider.Error {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *provider.Error", err, err)
	}
	if pe.Kind != kind || pe.Status != status {
		t.Fatalf("error %v: got kind %s status %d, want kind %s status %d", err, pe.Kind, pe.Status, kind, status)
	}
	return pe
}

type drained struct {
	content string
	args    string
	tool    string
	finish  string
	usage   *chat.Usage
	chunks  int
}

func drain(t *testing.T, s provider.Stream) (drained, error) {
	t.Helper()
	defer s.Close()
	var d drained
	var b, args strings.Builder
	for range 10000 {
		c, err := s.Recv()
		if err != nil {
			d.content, d.args = b.String(), args.String()
			return d, err
		}
		d.chunks++
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				b.WriteString(*ch.Delta.Content)
			}
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Function.Name != "" {
					d.tool = tc.Function.Name
				}
				args.WriteString(tc.Function.Arguments)
			}
			if ch.FinishReason != nil {
				d.finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			d.usage = c.Usage
		}
	}
	t.Fatal("stream never ended")
	return d, nil
}

func TestComplete(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			url, f := start(t, fake.Options{Content: "It ships today.", APIKey: "sk-1", PromptTokens: 20, CompletionTokens: 4, CachedTokens: 8, Record: true})
			resp, err := k.new(url, "sk-1").Complete(context.Background(), ask("m-1"))
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if got := resp.Choices[0].Message.Content.Text; got != "It ships today." {
				t.Fatalf("content: got %q, want %q", got, "It ships today.")
			}
			if got := resp.Choices[0].FinishReason; got != "stop" {
				t.Fatalf("finish: got %q, want stop", got)
			}
			u := resp.Usage
			if u == nil || u.PromptTokens != 20 || u.CompletionTokens != 4 || u.CachedTokens() != 8 {
				t.Fatalf("usage: got %+v, want prompt 20, completion 4, cached 8", u)
			}
			if resp.Model != "m-1" {
				t.Fatalf("model: got %q, want m-1", resp.Model)
			}
			if got := f.Count(); got != 1 {
				t.Fatalf("requests: got %d, want 1", got)
			}
			if got := len(f.Requests()); got != 1 {
				t.Fatalf("recorded requests: got %d, want 1", got)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			url, _ := start(t, fake.Options{APIKey: "sk-1"})
			_, err := k.new(url, "sk-2").Complete(context.Background(), ask("m"))
			pe := wantKind(t, err, provider.KindStatus, 401)
			if pe.Retryable() {
				t.Fatalf("a 401 must not be retryable")
			}
		})
	}
}

func TestStream(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			url, _ := start(t, fake.Options{Content: "It ships today, by noon.", PromptTokens: 9, CompletionTokens: 6})
			s, err := k.new(url, "").Stream(context.Background(), ask("m"))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			d, end := drain(t, s)
			if end != io.EOF {
				t.Fatalf("end: got %v, want io.EOF", end)
			}
			if d.content != "It ships today, by noon." || d.finish != "stop" {
				t.Fatalf("got content %q finish %q", d.content, d.finish)
			}
			if d.usage == nil || d.usage.PromptTokens != 9 || d.usage.CompletionTokens != 6 || d.usage.TotalTokens != 15 {
				t.Fatalf("usage: got %+v, want 9 + 6 = 15", d.usage)
			}
		})
	}
}

func TestToolRoundTrip(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			url, f := start(t, fake.Options{ToolArguments: `{"id":"A-17","note":"héllo wörld"}`, Record: true})
			p := k.new(url, "")
			resp, err := p.Complete(context.Background(), withTools("m"))
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			ch := resp.Choices[0]
			if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 {
				t.Fatalf("got finish %q and %d tool calls, want tool_calls and 1", ch.FinishReason, len(ch.Message.ToolCalls))
			}
			call := ch.Message.ToolCalls[0]
			var args map[string]string
			if err := json.Unmarshal([]byte(call.Function.Arguments), &args); err != nil || args["id"] != "A-17" || call.Function.Name != "track_order" {
				t.Fatalf("tool call: got %+v (%v)", call, err)
			}

			// The same call streamed.
			s, err := p.Stream(context.Background(), withTools("m"))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			d, end := drain(t, s)
			if end != io.EOF || d.tool != "track_order" || d.finish != "tool_calls" || d.args != `{"id":"A-17","note":"héllo wörld"}` {
				t.Fatalf("streamed tool call: got %+v, end %v", d, end)
			}

			// The tool's result goes back and the model answers in text.
			next := withTools("m")
			next.Messages = append(next.Messages,
				chat.Message{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: call.ID, Type: "function", Function: call.Function}}},
				chat.Message{Role: "tool", ToolCallID: call.ID, Content: chat.Text(`{"status":"shipped"}`)})
			resp, err = p.Complete(context.Background(), next)
			if err != nil {
				t.Fatalf("Complete with tool result: %v", err)
			}
			if resp.Choices[0].FinishReason != "stop" || resp.Choices[0].Message.Content.Text == "" {
				t.Fatalf("answer after tool result: got %+v", resp.Choices[0])
			}
			reqs := f.Requests()
			last := string(reqs[len(reqs)-1].Body)
			if !strings.Contains(last, call.ID) || !strings.Contains(last, "shipped") {
				t.Fatalf("the tool result did not reach the upstream: %s", last)
			}
		})
	}
}

func TestStatusFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      fake.Fault
		status     int
		retryAfter time.Duration
		retryable  bool
	}{
		{"429 seconds", fake.Fault{Status: 429, RetryAfter: "2"}, 429, 2 * time.Second, true},
		{"429 milliseconds", fake.Fault{Status: 429, RetryAfterMS: "250", RetryAfter: "1"}, 429, 250 * time.Millisecond, true},
		{"503 date", fake.Fault{Status: 503, RetryAfter: time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, 503, 0, true},
		{"500", fake.Fault{Status: 500, Message: "boom"}, 500, 0, true},
		{"529 overloaded", fake.Fault{Status: 529}, 529, 0, true},
		{"400", fake.Fault{Status: 400, Message: "bad messages"}, 400, 0, false},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(k.name+"/"+tt.name, func(t *testing.T) {
				url, _ := start(t, fake.Options{Default: tt.fault})
				for _, stream := range []bool{false, true} {
					var err error
					if stream {
						_, err = k.new(url, "").Stream(context.Background(), ask("m"))
					} else {
						_, err = k.new(url, "").Complete(context.Background(), ask("m"))
					}
					pe := wantKind(t, err, provider.KindStatus, tt.status)
					if tt.name == "503 date" {
						if pe.RetryAfter < 80*time.Second || pe.RetryAfter > 91*time.Second {
							t.Fatalf("retry after from a date: got %v, want about 90s", pe.RetryAfter)
						}
					} else if pe.RetryAfter != tt.retryAfter {
						t.Fatalf("retry after: got %v, want %v", pe.RetryAfter, tt.retryAfter)
					}
					if pe.Retryable() != tt.retryable {
						t.Fatalf("retryable: got %v, want %v", pe.Retryable(), tt.retryable)
					}
					if tt.fault.Message != "" && !strings.Contains(pe.Message, tt.fault.Message) {
						t.Fatalf("message: got %q, want it to hold %q", pe.Message, tt.fault.Message)
					}
				}
			})
		}
	}
}

func TestTransportFaults(t *testing.T) {
	tests := []struct {
		name    string
		fault   fake.Fault
		timeout time.Duration
		kind    provider.Kind
	}{
		{"hijack", fake.Fault{Hijack: true}, 0, provider.KindConnect},
		{"garbage", fake.Fault{Garbage: true}, 0, provider.KindProtocol},
		{"slow headers", fake.Fault{HeaderDelay: 5 * time.Second}, 50 * time.Millisecond, provider.KindTimeout},
		{"body cut", fake.Fault{CutAfter: 20}, 0, provider.KindCut},
		{"oversized", fake.Fault{Pad: provider.MaxResponseBytes + 1}, 0, provider.KindProtocol},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(k.name+"/"+tt.name, func(t *testing.T) {
				url, _ := start(t, fake.Options{Default: tt.fault})
				ctx := context.Background()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				_, err := k.new(url, "").Complete(ctx, ask("m"))
				wantKind(t, err, tt.kind, 0)
			})
		}
	}
}

func TestStreamFaults(t *testing.T) {
	tests := []struct {
		name    string
		fault   fake.Fault
		content string
		kind    provider.Kind
	}{
		{"cut after two chunks", fake.Fault{CutAfter: 2}, "one two", provider.KindCut},
		{"error after one chunk", fake.Fault{ErrorAfter: 1}, "one", provider.KindCut},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(k.name+"/"+tt.name, func(t *testing.T) {
				url, _ := start(t, fake.Options{Content: "one two three four", Default: tt.fault})
				s, err := k.new(url, "").Stream(context.Background(), ask("m"))
				if err != nil {
					t.Fatalf("Stream: %v", err)
				}
				d, end := drain(t, s)
				wantKind(t, end, tt.kind, 0)
				if d.content != tt.content {
					t.Fatalf("content before the fault: got %q, want %q", d.content, tt.content)
				}
			})
		}
	}
}

func TestStreamGarbage(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			url, _ := start(t, fake.Options{Default: fake.Fault{Garbage: true}})
			s, err := k.new(url, "").Stream(context.Background(), ask("m"))
			if err == nil {
				_, err = drain(t, s)
			}
			wantKind(t, err, provider.KindProtocol, 0)
		})
	}
}

func TestChunkDelayAndDeadline(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			url, _ := start(t, fake.Options{Content: "a b c d e f", Default: fake.Fault{ChunkDelay: 30 * time.Millisecond}})
			ctx, cancel := context.WithTimeout(context.Background(), 75*time.Millisecond)
			defer cancel()
			s, err := k.new(url, "").Stream(ctx, ask("m"))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			d, end := drain(t, s)
			var pe *provider.Error
			if !errors.As(end, &pe) || !errors.Is(end, context.DeadlineExceeded) {
				t.Fatalf("end: got %v, want a provider error wrapping the deadline", end)
			}
			if d.content == "" || d.content == "a b c d e f" {
				t.Fatalf("content before the deadline: got %q, want a part of the answer", d.content)
			}
		})
	}
}

func TestScript(t *testing.T) {
	url, f := start(t, fake.Options{Script: []fake.Fault{{Status: 503}, {Status: 429}}})
	p := provider.NewOpenAI(url+"/v1", "", nil)
	for i, want := range []int{503, 429, 0, 0} {
		_, err := p.Complete(context.Background(), ask("m"))
		if want == 0 {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			continue
		}
		wantKind(t, err, provider.KindStatus, want)
	}
	if got := f.Count(); got != 4 {
		t.Fatalf("requests: got %d, want 4", got)
	}
}

func TestFaultFunc(t *testing.T) {
	url, _ := start(t, fake.Options{FaultFunc: func(n int64) fake.Fault {
		if n%2 == 1 {
			return fake.Fault{Status: 500}
		}
		return fake.Fault{}
	}})
	p := provider.NewOpenAI(url+"/v1", "", nil)
	for i := range 4 {
		_, err := p.Complete(context.Background(), ask("m"))
		if (err != nil) != (i%2 == 1) {
			t.Fatalf("request %d: got error %v", i, err)
		}
	}
}

func TestRecordLimit(t *testing.T) {
	url, f := start(t, fake.Options{Record: true, RecordLimit: 2})
	p := provider.NewOpenAI(url+"/v1", "", nil)
	for i := range 3 {
		r := ask("m")
		r.User = string(rune('a' + i))
		if _, err := p.Complete(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	reqs := f.Requests()
	if len(reqs) != 2 || !strings.Contains(string(reqs[0].Body), `"user":"b"`) {
		t.Fatalf("recorded: got %d requests, first %s; want the last 2", len(reqs), reqs[0].Body)
	}
}

func TestChunks(t *testing.T) {
	url, _ := start(t, fake.Options{Content: "one two three four five six", Chunks: 3})
	s, err := provider.NewOpenAI(url+"/v1", "", nil).Stream(context.Background(), ask("m"))
	if err != nil {
		t.Fatal(err)
	}
	d, end := drain(t, s)
	// role, three content chunks, finish, usage
	if end != io.EOF || d.chunks != 6 || d.content != "one two three four five six" {
		t.Fatalf("got %d chunks %q (end %v), want 6 chunks of the whole text", d.chunks, d.content, end)
	}
}

func TestUnknownPath(t *testing.T) {
	url, _ := start(t, fake.Options{})
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("status: got %d, want 404", resp.StatusCode)
	}
}
