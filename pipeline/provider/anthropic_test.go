package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/pipeline/chat"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// TestAnthropicEncodeGolden translates each testdata/anthropic/NAME.request.json
// and compares the Messages API body with NAME.golden.json.
func TestAnthropicEncodeGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/anthropic/*.request.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases found: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".request.json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			req, err := chat.DecodeRequest(in, 0)
			if err != nil {
				t.Fatalf("decode %s: %v", file, err)
			}
			body, err := encodeAnthropic(req, false)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('\n')
			golden := strings.TrimSuffix(file, ".request.json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if got.String() != string(want) {
				t.Fatalf("body differs from %s:\n got: %s\nwant: %s", golden, got.String(), want)
			}
		})
	}
}

func TestAnthropicEncodeRefuses(t *testing.T) {
	user := chat.Message{Role: "user", Content: chat.Text("hi")}
	tests := []struct {
		name  string
		req   chat.Request
		param string
	}{
		{"only a system prompt", chat.Request{Messages: []chat.Message{{Role: "system", Content: chat.Text("be nice")}}}, "messages"},
		{"audio part", chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.Content{Parts: []chat.Part{{Type: chat.PartInputAudio, InputAudio: &chat.InputAudio{}}}}}}}, "messages[0].content[0].type"},
		{"non-image data url", chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.Content{Parts: []chat.Part{{Type: chat.PartImageURL, ImageURL: &chat.ImageURL{URL: "data:text/plain;base64,aGk="}}}}}}}, "messages[0].content[0].image_url.url"},
		{"ftp image", chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.Content{Parts: []chat.Part{{Type: chat.PartImageURL, ImageURL: &chat.ImageURL{URL: "ftp://x/y.png"}}}}}}}, "messages[0].content[0].image_url.url"},
		{"tool arguments not an object", chat.Request{Messages: []chat.Message{user, {Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "t", Function: chat.FunctionCall{Name: "f", Arguments: "[1]"}}}}}}, "messages[1].tool_calls[0].function.arguments"},
		{"unknown tool_choice", chat.Request{Messages: []chat.Message{user}, Tools: []chat.Tool{{Type: "function", Function: chat.Function{Name: "f"}}}, ToolChoice: json.RawMessage(`"sometimes"`)}, "tool_choice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := encodeAnthropic(&tt.req, false)
			var ce *chat.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *chat.Error", err)
			}
			if ce.Status != 400 || ce.Param != tt.param {
				t.Fatalf("got status %d param %q, want 400 %q (%s)", ce.Status, ce.Param, tt.param, ce.Message)
			}
		})
	}
}

const anthropicAnswer = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001",
"content":[{"type":"thinking","thinking":"…","signature":"s"},{"type":"text","text":"Let me check. "},
{"type":"tool_use","id":"toolu_1","name":"track","input":{"order":1042}},
{"type":"web_search_tool_result","tool_use_id":"x","content":[{"type":"web_search_result"}]}],
"stop_reason":"tool_use","usage":{"input_tokens":20,"output_tokens":15,"cache_read_input_tokens":100,"cache_creation_input_tokens":5}}`

func TestAnthropicComplete(t *testing.T) {
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, anthropicAnswer)
	})
	resp, err := NewAnthropic(u.srv.URL, "sk-ant", nil).Complete(context.Background(), userRequest("claude-haiku-4-5"))
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	h := <-u.hdr
	if h.Get("X-Api-Key") != "sk-ant" || h.Get("Anthropic-Version") != anthropicVersion {
		t.Fatalf("headers: got key %q version %q", h.Get("X-Api-Key"), h.Get("Anthropic-Version"))
	}
	if body := u.lastBody(t); body["max_tokens"] != float64(anthropicMaxTokens) {
		t.Fatalf("max_tokens: got %v, want %d", body["max_tokens"], anthropicMaxTokens)
	}
	c := resp.Choices[0]
	if c.Message.Content.Text != "Let me check. " || c.FinishReason != "tool_calls" {
		t.Fatalf("choice: got content %q finish %q", c.Message.Content.Text, c.FinishReason)
	}
	if len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Function.Arguments != `{"order":1042}` || c.Message.ToolCalls[0].ID != "toolu_1" {
		t.Fatalf("tool calls: got %+v", c.Message.ToolCalls)
	}
	want := chat.Usage{PromptTokens: 125, CompletionTokens: 15, TotalTokens: 140}
	if u := resp.Usage; u.PromptTokens != want.PromptTokens || u.CompletionTokens != want.CompletionTokens || u.TotalTokens != want.TotalTokens || u.CachedTokens() != 100 {
		t.Fatalf("usage: got %+v (cached %d), want %+v cached 100", *u, u.CachedTokens(), want)
	}
	if resp.Object != chat.ObjectCompletion || resp.Model != "claude-haiku-4-5-20251001" {
		t.Fatalf("envelope: got object %q model %q", resp.Object, resp.Model)
	}
}

func TestAnthropicFailures(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		kind    Kind
		status  int
		message string
	}{
		{"overloaded", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(529)
			io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
		}, KindStatus, 529, "Overloaded"},
		{"invalid request", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}`)
		}, KindStatus, 400, "max_tokens: too large"},
		{"not a message", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"type":"error","error":{"type":"api_error","message":"boom"}}`)
		}, KindProtocol, 0, `the answer has type "error", want message: boom`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, tt.handler)
			_, err := NewAnthropic(u.srv.URL, "k", nil).Complete(context.Background(), userRequest("c"))
			if pe := wantError(t, err, tt.kind, tt.status); pe.Message != tt.message {
				t.Fatalf("message: got %q, want %q", pe.Message, tt.message)
			}
		})
	}
}

// anthropicEvents is a recorded Messages API stream with text, a tool call
// and the final usage.
var anthropicEvents = []string{
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":10}}}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	"event: ping\ndata: {\"type\":\"ping\"}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking \"}}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"now.\"}}\n\n",
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"track\",\"input\":{}}}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"order\\\":\"}}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1042}\"}}\n\n",
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n",
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
}

func TestAnthropicStream(t *testing.T) {
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { sseBody(w, anthropicEvents...) })
	s, err := NewAnthropic(u.srv.URL, "k", nil).Stream(context.Background(), userRequest("claude-haiku-4-5"))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if body := u.lastBody(t); body["stream"] != true {
		t.Fatalf("stream: got %v, want true", body["stream"])
	}
	var chunks []*chat.Chunk
	for {
		c, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv after %d chunks: %v", len(chunks), err)
		}
		chunks = append(chunks, c)
	}
	s.Close()
	// role, 2 text, tool start, 2 tool argument pieces, finish, usage
	if len(chunks) != 8 {
		t.Fatalf("got %d chunks, want 8", len(chunks))
	}
	if chunks[0].Choices[0].Delta.Role != "assistant" || chunks[0].ID != "msg_1" || chunks[0].Model != "claude-haiku-4-5" {
		t.Fatalf("first chunk: got %+v", chunks[0])
	}
	text := *chunks[1].Choices[0].Delta.Content + *chunks[2].Choices[0].Delta.Content
	if text != "Checking now." {
		t.Fatalf("text: got %q", text)
	}
	start := chunks[3].Choices[0].Delta.ToolCalls[0]
	if *start.Index != 0 || start.ID != "toolu_9" || start.Function.Name != "track" || start.Type != "function" {
		t.Fatalf("tool call start: got %+v", start)
	}
	args := chunks[4].Choices[0].Delta.ToolCalls[0].Function.Arguments + chunks[5].Choices[0].Delta.ToolCalls[0].Function.Arguments
	if args != `{"order":1042}` {
		t.Fatalf("tool arguments: got %q", args)
	}
	if f := chunks[6].Choices[0].FinishReason; f == nil || *f != "tool_calls" {
		t.Fatalf("finish: got %v, want tool_calls", f)
	}
	last := chunks[7]
	if len(last.Choices) != 0 || last.Usage == nil || last.Usage.PromptTokens != 35 || last.Usage.CompletionTokens != 42 || last.Usage.CachedTokens() != 10 {
		t.Fatalf("usage chunk: got %+v usage %+v", last, last.Usage)
	}
}

func TestAnthropicStreamFailures(t *testing.T) {
	overloaded := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	tests := []struct {
		name     string
		events   []string
		atStream bool // the failure comes from Stream, before any chunk
		kind     Kind
		status   int
	}{
		{"error before output", []string{overloaded}, true, KindStatus, 529},
		{"error mid-answer", append(append([]string{}, anthropicEvents[:4]...), overloaded), false, KindCut, 0},
		{"ends without message_stop", anthropicEvents[:10], false, KindCut, 0},
		{"tool input for a text block", append(append([]string{}, anthropicEvents[:2]...), "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n"), false, KindProtocol, 0},
		{"unreadable event", []string{anthropicEvents[0], "data: {\"type\":\n\n"}, false, KindProtocol, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { sseBody(w, tt.events...) })
			s, err := NewAnthropic(u.srv.URL, "k", nil).Stream(context.Background(), userRequest("c"))
			if tt.atStream {
				wantError(t, err, tt.kind, tt.status)
				return
			}
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			_, _, _, end := drain(t, s)
			wantError(t, end, tt.kind, tt.status)
		})
	}
}

func FuzzAnthropicStream(f *testing.F) {
	f.Add([]byte(strings.Join(anthropicEvents, "")))
	f.Add([]byte(strings.Join(anthropicEvents[:5], "")))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\"}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		check := checkChunk(t)
		fuzzStream(t, body, &anthropicDecoder{tools: map[int]int{}}, func(c *chat.Chunk) {
			check(c)
			for _, ch := range c.Choices {
				for _, tc := range ch.Delta.ToolCalls {
					if tc.Index == nil || *tc.Index < 0 {
						t.Fatalf("tool call chunk without a valid index: %+v", tc)
					}
				}
			}
		})
	})
}

func FuzzAnthropicResponse(f *testing.F) {
	f.Add([]byte(anthropicAnswer))
	f.Add([]byte(`{"type":"message","content":[{"type":"tool_use","input":null}]}`))
	f.Add([]byte(`{"type":"message","content":[{"type":"text","text":"a"}],"usage":{"input_tokens":-3,"output_tokens":-1,"cache_read_input_tokens":9}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := decodeAnthropicResponse(body, time.Unix(0, 0))
		if err != nil {
			return
		}
		if len(resp.Choices) != 1 || resp.Usage == nil {
			t.Fatalf("decoded answer has %d choices and usage %v", len(resp.Choices), resp.Usage)
		}
		if u := resp.Usage; u.PromptTokens < 0 || u.CompletionTokens < 0 || u.CachedTokens() > u.PromptTokens {
			t.Fatalf("usage %+v", *u)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("an answer the gateway cannot send on: %v", err)
		}
		for _, tc := range resp.Choices[0].Message.ToolCalls {
			if !json.Valid([]byte(tc.Function.Arguments)) {
				t.Fatalf("tool arguments %q are not JSON", tc.Function.Arguments)
			}
		}
	})
}

func BenchmarkAnthropicEncode(b *testing.B) {
	in, err := os.ReadFile("testdata/anthropic/tools.request.json")
	if err != nil {
		b.Fatal(err)
	}
	req, err := chat.DecodeRequest(in, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeAnthropic(req, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnthropicStreamDecode(b *testing.B) {
	var in bytes.Buffer
	in.WriteString(anthropicEvents[0] + anthropicEvents[1])
	for range 500 {
		in.WriteString(anthropicEvents[3])
	}
	in.WriteString(strings.Join(anthropicEvents[5:], ""))
	benchStream(b, in.Bytes(), func() eventDecoder { return &anthropicDecoder{tools: map[int]int{}} })
}
