package messages_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"gantry/pipeline"
	"gantry/pipeline/chat"
	"gantry/pipeline/inbound/messages"
	"gantry/pipeline/internal/gwtest"
	"gantry/pipeline/trace"
)

// handler is what the agent's /v1/messages handler does, in the fewest
// lines: decode, run the pipeline, write the answer or the events.
func handler(g *gwtest.Gateway) http.Handler {
	var seq atomic.Int64
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		var ce *chat.Error
		if !errors.As(err, &ce) {
			ce = &chat.Error{Status: 500, Message: err.Error()}
		}
		status, body := messages.ErrorBody(ce)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}
	mux.HandleFunc("POST /v1/messages", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		_, req, err := messages.Decode(body)
		if err != nil {
			fail(w, err)
			return
		}
		c := &pipeline.Call{ID: strconv.FormatInt(seq.Add(1), 10), TraceID: trace.NewTraceID(), Received: time.Now(),
			Entry: pipeline.EntryChat, Secret: gwtest.Secret(r), Req: req}
		if !req.Stream {
			if err := g.Serve(r.Context(), c); err != nil {
				fail(w, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(messages.FromChat(c.ID, req.Model, c.Resp, c.Usage))
			return
		}
		st := messages.NewStream(c.ID, req.Model)
		started := false
		write := func(evs []messages.Event) error {
			for _, e := range evs {
				if _, err := w.Write(e.Bytes()); err != nil {
					return err
				}
			}
			w.(http.Flusher).Flush()
			return nil
		}
		c.Emit = func(ch *chat.Chunk) error {
			if !started {
				w.Header().Set("Content-Type", "text/event-stream")
				started = true
				if err := write(st.Start(c.InputTokens)); err != nil {
					return err
				}
			}
			return write(st.Chunk(ch))
		}
		if err := g.Serve(r.Context(), c); err != nil {
			var ce *chat.Error
			errors.As(err, &ce)
			if !started {
				fail(w, err)
				return
			}
			write([]messages.Event{messages.ErrorEvent(ce)})
			return
		}
		write(st.Finish(c.Resp.Choices[0].FinishReason, c.Usage))
	})
	mux.HandleFunc("POST /v1/messages/count_tokens", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if _, err := pipeline.Authenticate(g.Snapshot(), gwtest.Secret(r)); err != nil {
			fail(w, err)
			return
		}
		n, err := messages.CountTokens(body)
		if err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"input_tokens": n})
	})
	return mux
}

func client(t *testing.T, opts ...option.RequestOption) (anthropic.Client, *gwtest.Gateway) {
	t.Helper()
	g := gwtest.New(t)
	srv := httptest.NewServer(handler(g))
	t.Cleanup(srv.Close)
	base := []option.RequestOption{option.WithBaseURL(srv.URL), option.WithMaxRetries(0)}
	if len(opts) == 0 {
		opts = []option.RequestOption{option.WithAPIKey(gwtest.Key)}
	}
	return anthropic.NewClient(append(base, opts...)...), g
}

func question() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{Model: "sim-small", MaxTokens: 200,
		System:   []anthropic.TextBlockParam{{Text: "Answer briefly."}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Where is my order?"))}}
}

func trackTool() []anthropic.ToolUnionParam {
	return []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "track_order", Description: anthropic.String("Track an order"),
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"id": map[string]any{"type": "string"}}, Required: []string{"id"}}}}}
}

func TestSDKPlain(t *testing.T) {
	for _, auth := range []option.RequestOption{option.WithAPIKey(gwtest.Key), option.WithAuthToken(gwtest.Key)} {
		c, g := client(t, auth)
		msg, err := c.Messages.New(context.Background(), question())
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if msg.Role != "assistant" || len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text == "" {
			t.Fatalf("message: %+v", msg)
		}
		if msg.StopReason != anthropic.StopReasonEndTurn || msg.Model != "sim-small" || msg.Usage.InputTokens <= 0 || msg.Usage.OutputTokens <= 0 {
			t.Fatalf("stop %q model %q usage %+v", msg.StopReason, msg.Model, msg.Usage)
		}
		tr := g.Traces()[0]
		if tr.Status != "ok" || tr.Key != "conformance" || tr.InputTokens != int(msg.Usage.InputTokens+msg.Usage.CacheReadInputTokens) || tr.OutputTokens != int(msg.Usage.OutputTokens) || tr.CostUSD <= 0 {
			t.Fatalf("trace: %+v", tr)
		}
	}
}

func TestSDKStreaming(t *testing.T) {
	c, g := client(t)
	stream := c.Messages.NewStreaming(context.Background(), question())
	var msg anthropic.Message
	var kinds []string
	for stream.Next() {
		ev := stream.Current()
		kinds = append(kinds, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("accumulate %s: %v", ev.Type, err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if kinds[0] != "message_start" || kinds[len(kinds)-1] != "message_stop" || kinds[len(kinds)-2] != "message_delta" {
		t.Fatalf("events: %v", kinds)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text == "" || msg.StopReason != anthropic.StopReasonEndTurn {
		t.Fatalf("message: %+v", msg)
	}
	tr := g.Traces()[0]
	if !tr.Stream || tr.Output != msg.Content[0].Text || tr.OutputTokens != int(msg.Usage.OutputTokens) || tr.InputTokens != int(msg.Usage.InputTokens) {
		t.Fatalf("trace %+v does not match the streamed message %+v", tr, msg)
	}
}

func TestSDKTools(t *testing.T) {
	for _, stream := range []bool{false, true} {
		c, _ := client(t)
		p := question()
		p.Tools = trackTool()
		p.ToolChoice = anthropic.ToolChoiceUnionParam{OfTool: &anthropic.ToolChoiceToolParam{Name: "track_order"}}
		var msg anthropic.Message
		if stream {
			s := c.Messages.NewStreaming(context.Background(), p)
			for s.Next() {
				if err := msg.Accumulate(s.Current()); err != nil {
					t.Fatalf("accumulate: %v", err)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
		} else {
			m, err := c.Messages.New(context.Background(), p)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			msg = *m
		}
		var use *anthropic.ContentBlockUnion
		for i := range msg.Content {
			if msg.Content[i].Type == "tool_use" {
				use = &msg.Content[i]
			}
		}
		if use == nil || use.Name != "track_order" || use.ID == "" || msg.StopReason != anthropic.StopReasonToolUse {
			t.Fatalf("stream %v: want a track_order tool_use, got %+v", stream, msg)
		}
		var input map[string]any
		if err := json.Unmarshal(use.Input, &input); err != nil {
			t.Fatalf("tool input %s: %v", use.Input, err)
		}
		// Answer the call: the model goes on with text.
		p.Messages = append(p.Messages, msg.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, `{"status":"shipped"}`, false)))
		p.ToolChoice = anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{}}
		next, err := c.Messages.New(context.Background(), p)
		if err != nil {
			t.Fatalf("after the tool result: %v", err)
		}
		if next.StopReason != anthropic.StopReasonEndTurn || next.Content[0].Text == "" {
			t.Fatalf("after the tool result: %+v", next)
		}
	}
}

func TestSDKCountTokens(t *testing.T) {
	c, _ := client(t)
	q := question()
	n, err := c.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{Model: q.Model,
		System: anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: q.System}, Messages: q.Messages, Tools: countTools()})
	if err != nil {
		t.Fatalf("CountTokens: %v", err)
	}
	if n.InputTokens < 10 || n.InputTokens > 200 {
		t.Fatalf("input tokens: got %d", n.InputTokens)
	}
}

func countTools() []anthropic.MessageCountTokensToolUnionParam {
	return []anthropic.MessageCountTokensToolUnionParam{{OfTool: trackTool()[0].OfTool}}
}

func TestSDKErrors(t *testing.T) {
	tests := []struct {
		name   string
		opts   []option.RequestOption
		edit   func(p *anthropic.MessageNewParams)
		status int
		typ    string
	}{
		{"wrong key", []option.RequestOption{option.WithAPIKey("gk_wrong-key-00000000000")}, nil, 401, "authentication_error"},
		{"unknown model", nil, func(p *anthropic.MessageNewParams) { p.Model = "claude-nonexistent" }, 404, "not_found_error"},
		{"no max_tokens", nil, func(p *anthropic.MessageNewParams) { p.MaxTokens = 0 }, 400, "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := client(t, tt.opts...)
			p := question()
			if tt.edit != nil {
				tt.edit(&p)
			}
			_, err := c.Messages.New(context.Background(), p)
			var ae *anthropic.Error
			if !errors.As(err, &ae) || ae.StatusCode != tt.status || string(ae.Type()) != tt.typ || ae.Message == "" {
				t.Fatalf("got %v, want %d %s with a message", err, tt.status, tt.typ)
			}
		})
	}
}
