package provider

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"
	"time"

	"gantry/pipeline/chat"
	"gantry/pipeline/inbound/messages"
)

// These tests go round the Messages API: a client's request through the
// inbound translation to the gateway's chat request and out again through
// the Anthropic provider, and an answer and a stream the other way. What
// comes out must say what went in.

func normalizeAnthropic(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	// A string system prompt and string content are one text block.
	if s, ok := m["system"].(string); ok {
		m["system"] = []any{map[string]any{"type": "text", "text": s}}
	}
	if msgs, ok := m["messages"].([]any); ok {
		for _, msg := range msgs {
			mm := msg.(map[string]any)
			if s, ok := mm["content"].(string); ok {
				mm["content"] = []any{map[string]any{"type": "text", "text": s}}
			}
		}
	}
	delete(m, "stream")
	return m
}

func TestMessagesRequestRoundTrip(t *testing.T) {
	for name, in := range map[string]string{
		"text": `{"model":"claude-3-5-haiku-20241022","max_tokens":300,"system":"Answer briefly.","temperature":0.3,"stop_sequences":["END"],
			"metadata":{"user_id":"user-42"},"messages":[{"role":"user","content":"Where is my order?"}]}`,
		"tools": `{"model":"claude-3-5-haiku-20241022","max_tokens":300,"system":"Answer briefly.",
			"tools":[{"name":"track_order","description":"Track an order","input_schema":{"type":"object","properties":{"id":{"type":"string"}}}}],
			"tool_choice":{"type":"tool","name":"track_order","disable_parallel_tool_use":true},
			"messages":[{"role":"user","content":[{"type":"text","text":"Where is A-1001?"}]},
				{"role":"assistant","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"toolu_01","name":"track_order","input":{"id":"A-1001"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"shipped"},{"type":"text","text":"And when?"}]}]}`,
		"image": `{"model":"claude-3-5-haiku-20241022","max_tokens":50,"messages":[{"role":"user","content":[
			{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},{"type":"text","text":"What is this?"}]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, req, err := messages.Decode([]byte(in))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			out, err := encodeAnthropic(req, false)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, want := normalizeAnthropic(t, out), normalizeAnthropic(t, []byte(in))
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", " ")
				w, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("round trip changed the request:\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestMessagesAnswerRoundTrip(t *testing.T) {
	resp := &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: chat.Text("Looking it up."),
		ToolCalls: []chat.ToolCall{{ID: "toolu_9", Type: "function", Function: chat.FunctionCall{Name: "track_order", Arguments: `{"id":"A-1001"}`}}}},
		FinishReason: "tool_calls"}}}
	usage := chat.Usage{PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42, PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 10}}
	body, _ := json.Marshal(messages.FromChat("c1", "m", resp, usage))
	back, err := decodeAnthropicResponse(body, time.Unix(0, 0))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	got := back.Choices[0]
	if got.Message.Content.Text != "Looking it up." || got.FinishReason != "tool_calls" || !reflect.DeepEqual(got.Message.ToolCalls, resp.Choices[0].Message.ToolCalls) {
		t.Fatalf("got %+v", got)
	}
	if !reflect.DeepEqual(*back.Usage, usage) {
		t.Fatalf("usage: got %+v, want %+v", *back.Usage, usage)
	}
}

// TestMessagesStreamRoundTrip replays a recorded Anthropic stream through
// the provider's decoder, the inbound stream translation, and the
// decoder again: the text, the finish and the usage survive.
func TestMessagesStreamRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame func(t *testing.T) []chat.Chunk
	}{
		{"text", func(t *testing.T) []chat.Chunk { return chunksOf(t, recording(t, "anthropic/stream.http").Body) }},
		{"tool", func(t *testing.T) []chat.Chunk {
			zero, one := 0, 1
			text, finish := "Checking.", "tool_calls"
			return []chat.Chunk{
				{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Role: "assistant"}}}},
				{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &text}}}},
				{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{{Index: &zero, ID: "toolu_1", Function: chat.FunctionCall{Name: "track_order"}}}}}}},
				{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{{Index: &zero, Function: chat.FunctionCall{Arguments: `{"id":`}}}}}}},
				{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{{Index: &zero, Function: chat.FunctionCall{Arguments: `"A-1"}`}}}}}}},
				{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{{Index: &one, ID: "toolu_2", Function: chat.FunctionCall{Name: "refund", Arguments: `{}`}}}}}}},
				{Choices: []chat.ChunkChoice{{FinishReason: &finish}}},
				{Choices: []chat.ChunkChoice{}, Usage: &chat.Usage{PromptTokens: 20, CompletionTokens: 9, TotalTokens: 29}},
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.frame(t)
			st := messages.NewStream("c1", "m")
			var wire bytes.Buffer
			var finish string
			var usage chat.Usage
			for i := range first {
				c := first[i]
				for _, ch := range c.Choices {
					if ch.FinishReason != nil {
						finish = *ch.FinishReason
					}
				}
				if c.Usage != nil {
					usage = *c.Usage
				}
				for _, e := range st.Chunk(&c) {
					wire.Write(e.Bytes())
				}
			}
			for _, e := range st.Finish(finish, usage) {
				wire.Write(e.Bytes())
			}
			second := chunksOf(t, wire.Bytes())
			if a, b := summarize(first), summarize(second); !reflect.DeepEqual(a, b) {
				t.Fatalf("round trip changed the stream:\n got %+v\nwant %+v", b, a)
			}
		})
	}
}

// chunksOf decodes an Anthropic event stream with the provider's decoder.
func chunksOf(t *testing.T, body []byte) []chat.Chunk {
	t.Helper()
	s, err := startStream(t.Context(), io.NopCloser(bytes.NewReader(body)), &anthropicDecoder{tools: map[int]int{}})
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	var out []chat.Chunk
	for {
		c, err := s.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		out = append(out, *c)
	}
}

type streamSummary struct {
	Text, Finish string
	Calls        []chat.ToolCall
	Usage        chat.Usage
}

func summarize(chunks []chat.Chunk) streamSummary {
	var s streamSummary
	for _, c := range chunks {
		if c.Usage != nil {
			s.Usage = *c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				s.Text += *ch.Delta.Content
			}
			if ch.FinishReason != nil {
				s.Finish = *ch.FinishReason
			}
			for _, tc := range ch.Delta.ToolCalls {
				for len(s.Calls) <= *tc.Index {
					s.Calls = append(s.Calls, chat.ToolCall{})
				}
				call := &s.Calls[*tc.Index]
				if tc.ID != "" {
					call.ID = tc.ID
				}
				if tc.Function.Name != "" {
					call.Function.Name = tc.Function.Name
				}
				call.Function.Arguments += tc.Function.Arguments
			}
		}
	}
	return s
}
