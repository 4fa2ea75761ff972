package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// The official SDKs as real clients of a real `gantry agent --dev`
// process, each with only its base URL changed: Anthropic's Go SDK on
// /v1/messages, openai-go on /v1/responses and /v1/embeddings. The dev
// simulator injects rare faults; the routes retry, so a call fails only if
// the gateway does.

// sent records the method, path, query and headers of each request an SDK
// sends, to show what a client of the gateway really asks for.
type sent struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *sent) middleware(r *http.Request, next aoption.MiddlewareNext) (*http.Response, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Clone(context.Background()))
	s.mu.Unlock()
	return next(r)
}

func (s *sent) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

func TestDevAgentServesAnthropicSDK(t *testing.T) {
	addr := startDevAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rec sent
	c := anthropic.NewClient(aoption.WithBaseURL("http://"+addr), aoption.WithAPIKey(e2eKey), aoption.WithMaxRetries(0),
		aoption.WithMiddleware(rec.middleware))
	ask := anthropic.MessageNewParams{Model: "default", MaxTokens: 300,
		System:   []anthropic.TextBlockParam{{Text: "You are a concise support agent."}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Where is my order?"))}}

	// Plain.
	msg, err := c.Messages.New(ctx, ask)
	if err != nil {
		t.Fatalf("Messages.New: %v", err)
	}
	if msg.Type != "message" || msg.Role != "assistant" || len(msg.Content) != 1 || msg.Content[0].Text == "" ||
		msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens <= 0 || msg.Usage.OutputTokens <= 0 {
		t.Fatalf("message: %+v", msg)
	}
	// This SDK sends its key as a Bearer token; Claude Code and older SDKs
	// send x-api-key, which the next client does.
	r := rec.last()
	if r.Method != "POST" || r.URL.Path != "/v1/messages" || r.Header.Get("Authorization") != "Bearer "+e2eKey || r.Header.Get("Anthropic-Version") == "" {
		t.Fatalf("the SDK sent %s %s with authorization %q, anthropic-version %q", r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Anthropic-Version"))
	}
	xkey := anthropic.NewClient(aoption.WithBaseURL("http://"+addr), aoption.WithHeader("X-Api-Key", e2eKey), aoption.WithMaxRetries(0),
		aoption.WithMiddleware(rec.middleware))
	if msg, err := xkey.Messages.New(ctx, ask); err != nil || msg.Content[0].Text == "" {
		t.Fatalf("with x-api-key: %+v, %v", msg, err)
	}
	if r := rec.last(); r.Header.Get("X-Api-Key") != e2eKey || r.Header.Get("Authorization") != "" {
		t.Fatalf("the x-api-key client sent x-api-key %q, authorization %q", r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
	}

	// Streaming, accumulated by the SDK.
	stream := c.Messages.NewStreaming(ctx, ask)
	var streamed anthropic.Message
	events := 0
	for stream.Next() {
		events++
		if err := streamed.Accumulate(stream.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if events < 5 || len(streamed.Content) != 1 || streamed.Content[0].Text == "" || streamed.StopReason != anthropic.StopReasonEndTurn || streamed.Usage.OutputTokens <= 0 {
		t.Fatalf("%d events, message %+v", events, streamed)
	}

	// Tools: a forced call, its result sent back, then text.
	tools := ask
	tools.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "track_order", Description: anthropic.String("Track an order by id"),
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"id": map[string]any{"type": "string"}}, Required: []string{"id"}}}}}
	tools.ToolChoice = anthropic.ToolChoiceUnionParam{OfTool: &anthropic.ToolChoiceToolParam{Name: "track_order"}}
	call, err := c.Messages.New(ctx, tools)
	if err != nil {
		t.Fatalf("tool call: %v", err)
	}
	use := call.Content[len(call.Content)-1]
	var input map[string]any
	if call.StopReason != anthropic.StopReasonToolUse || use.Type != "tool_use" || use.Name != "track_order" || use.ID == "" || json.Unmarshal(use.Input, &input) != nil {
		t.Fatalf("want a track_order tool_use, got %+v", call)
	}
	tools.Messages = append(tools.Messages, call.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, `{"status":"shipped"}`, false)))
	tools.ToolChoice = anthropic.ToolChoiceUnionParam{OfNone: &anthropic.ToolChoiceNoneParam{}}
	answer, err := c.Messages.New(ctx, tools)
	if err != nil || answer.StopReason != anthropic.StopReasonEndTurn || answer.Content[0].Text == "" {
		t.Fatalf("after the tool result: %+v, %v", answer, err)
	}

	// count_tokens.
	n, err := c.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: ask.Model,
		System: anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: ask.System}, Messages: ask.Messages})
	if err != nil || n.InputTokens < 5 || n.InputTokens > 100 {
		t.Fatalf("count_tokens: %+v, %v", n, err)
	}
	if r := rec.last(); r.URL.Path != "/v1/messages/count_tokens" {
		t.Fatalf("count_tokens went to %s", r.URL.Path)
	}

	// Errors reach the SDK as its own typed errors.
	unknown := ask
	unknown.Model = "claude-nonexistent"
	_, err = c.Messages.New(ctx, unknown)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Type() != "not_found_error" || !strings.Contains(ae.Message, "claude-nonexistent") {
		t.Fatalf("unknown model: got %v, want a 404 not_found_error", err)
	}
	bad := anthropic.NewClient(aoption.WithBaseURL("http://"+addr), aoption.WithAPIKey("gk_not-a-real-key-000000"), aoption.WithMaxRetries(0))
	_, err = bad.Messages.New(ctx, ask)
	if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Type() != "authentication_error" {
		t.Fatalf("wrong key: got %v, want a 401 authentication_error", err)
	}

	// The beta surface Claude Code uses: a Bearer token and anthropic-beta.
	// (Claude Code's own SDK also adds ?beta=true to the path, which this
	// one does not; agent/inbound_test.go sends a request as Claude Code
	// does.)
	beta := anthropic.NewClient(aoption.WithBaseURL("http://"+addr), aoption.WithAuthToken(e2eKey), aoption.WithMaxRetries(0),
		aoption.WithMiddleware(rec.middleware))
	bmsg, err := beta.Beta.Messages.New(ctx, anthropic.BetaMessageNewParams{Model: "default", MaxTokens: 300,
		Betas:    []anthropic.AnthropicBeta{"interleaved-thinking-2025-05-14"},
		Messages: []anthropic.BetaMessageParam{anthropic.NewBetaUserMessage(anthropic.NewBetaTextBlock("Where is my order?"))}})
	if err != nil || len(bmsg.Content) == 0 || bmsg.Content[0].Text == "" {
		t.Fatalf("beta messages: %+v, %v", bmsg, err)
	}
	if r := rec.last(); r.URL.Path != "/v1/messages" || r.Header.Get("Authorization") != "Bearer "+e2eKey || r.Header.Get("Anthropic-Beta") == "" {
		t.Fatalf("the beta SDK sent %s with authorization %q, anthropic-beta %q", r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Anthropic-Beta"))
	}
}

func TestDevAgentServesResponsesAndEmbeddings(t *testing.T) {
	addr := startDevAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := openai.NewClient(option.WithBaseURL("http://"+addr+"/v1"), option.WithAPIKey(e2eKey), option.WithMaxRetries(0))
	ask := responses.ResponseNewParams{Model: "default", Instructions: openai.String("You are a concise support agent."),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Where is my order?")}, MaxOutputTokens: openai.Int(300)}

	resp, err := c.Responses.New(ctx, ask)
	if err != nil {
		t.Fatalf("Responses.New: %v", err)
	}
	if resp.Status != "completed" || resp.OutputText() == "" || resp.Usage.InputTokens <= 0 || resp.Usage.OutputTokens <= 0 {
		t.Fatalf("response: %s %q %+v", resp.Status, resp.OutputText(), resp.Usage)
	}

	s := c.Responses.NewStreaming(ctx, ask)
	var text strings.Builder
	var final responses.Response
	for s.Next() {
		switch ev := s.Current(); ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			final = ev.AsResponseCompleted().Response
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if text.Len() == 0 || final.OutputText() != text.String() || final.Status != "completed" {
		t.Fatalf("stream: deltas %q, completed %q (%s)", text.String(), final.OutputText(), final.Status)
	}

	tools := ask
	tools.Tools = []responses.ToolUnionParam{responses.ToolParamOfFunction("track_order",
		map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}, "required": []string{"id"}}, false)}
	tools.ToolChoice = responses.ResponseNewParamsToolChoiceUnion{OfToolChoiceMode: openai.Opt(responses.ToolChoiceOptionsRequired)}
	resp, err = c.Responses.New(ctx, tools)
	if err != nil {
		t.Fatalf("tool call: %v", err)
	}
	var call responses.ResponseOutputItemUnion
	for _, it := range resp.Output {
		if it.Type == "function_call" {
			call = it
		}
	}
	if call.Name != "track_order" || call.CallID == "" || !json.Valid([]byte(call.Arguments.OfString)) {
		t.Fatalf("want a track_order call, got %+v", resp.Output)
	}

	// Stateless: following a stored response is refused with a clear error.
	prev := ask
	prev.PreviousResponseID = openai.String(resp.ID)
	_, err = c.Responses.New(ctx, prev)
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 400 || oe.Param != "previous_response_id" || !strings.Contains(oe.Message, "send the whole conversation") {
		t.Fatalf("previous_response_id: got %v", err)
	}

	// Embeddings from the example configuration's embedding model: a
	// paraphrase lands nearer than an unrelated text.
	texts := []string{"Where is my order? It has not shipped.", "My order still hasn't shipped, where is it?", "How do I reset the thermostat?"}
	emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "sim-embed", Dimensions: openai.Int(256),
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts}})
	if err != nil {
		t.Fatalf("embeddings: %v", err)
	}
	if len(emb.Data) != 3 || len(emb.Data[0].Embedding) != 256 || emb.Model != "sim-embed" || emb.Usage.PromptTokens <= 0 {
		t.Fatalf("embeddings: %d vectors, model %s, usage %+v", len(emb.Data), emb.Model, emb.Usage)
	}
	dot := func(a, b []float64) (s float64) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	if near, far := dot(emb.Data[0].Embedding, emb.Data[1].Embedding), dot(emb.Data[0].Embedding, emb.Data[2].Embedding); near <= far {
		t.Fatalf("paraphrase similarity %.3f is not above the unrelated text's %.3f", near, far)
	}
	_, err = c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "no-such-embedder", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	if !errors.As(err, &oe) || oe.StatusCode != 404 || oe.Code != "model_not_found" {
		t.Fatalf("unknown embedding model: got %v", err)
	}
}
