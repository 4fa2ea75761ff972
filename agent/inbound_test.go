package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"gantry/api"
	"gantry/config"
	"gantry/pipeline"
	"gantry/pipeline/price"
	"gantry/pipeline/provider/fake"
)

// The gateway's other client APIs, run by the official SDKs against an
// agent: Anthropic's Messages API, OpenAI's Responses API and embeddings.

func (a *testAgent) anthropic(opts ...aoption.RequestOption) anthropic.Client {
	base := []aoption.RequestOption{aoption.WithBaseURL(a.srv.URL), aoption.WithMaxRetries(0)}
	if len(opts) == 0 {
		opts = []aoption.RequestOption{aoption.WithAPIKey(devKey)}
	}
	return anthropic.NewClient(append(base, opts...)...)
}

func (a *testAgent) openai() openai.Client {
	return openai.NewClient(option.WithBaseURL(a.srv.URL+"/v1"), option.WithAPIKey(devKey), option.WithMaxRetries(0))
}

func question(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 200,
		System:   []anthropic.TextBlockParam{{Text: "Answer briefly."}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Where is my order?"))}}
}

func TestMessagesThroughThePipeline(t *testing.T) {
	a := startAgent(t, quietConfig())
	for _, auth := range []aoption.RequestOption{aoption.WithAPIKey(devKey), aoption.WithAuthToken(devKey)} {
		var hr *http.Response
		c := a.anthropic(auth)
		msg, err := c.Messages.New(context.Background(), question("sim-small"), aoption.WithResponseInto(&hr))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if msg.Role != "assistant" || len(msg.Content) != 1 || msg.Content[0].Text == "" || msg.StopReason != anthropic.StopReasonEndTurn || msg.Model != "sim-small" {
			t.Fatalf("message: %+v", msg)
		}
		id := strings.TrimPrefix(msg.ID, "msg_")
		if hr.Header.Get("Request-Id") != id || hr.Header.Get("X-Gantry-Model") != "sim-small" {
			t.Fatalf("headers: request-id %q x-gantry-model %q, want %s and sim-small", hr.Header.Get("Request-Id"), hr.Header.Get("X-Gantry-Model"), id)
		}
		tr := a.waitTrace(id)
		if tr.Entry != pipeline.EntryMessages || tr.Status != "ok" || tr.Key != "dev" || tr.Model != "sim-small" || tr.CostUSD <= 0 ||
			tr.InputTokens != int(msg.Usage.InputTokens+msg.Usage.CacheReadInputTokens) || tr.OutputTokens != int(msg.Usage.OutputTokens) || tr.Output != msg.Content[0].Text {
			t.Fatalf("trace %+v does not match the message %+v", tr, msg)
		}
		if len(tr.Spans) < 7 {
			t.Fatalf("trace has %d spans, want one per stage", len(tr.Spans))
		}
	}
	if n := metricValue(t, a, `gantry_requests_total{code="2xx",feature="none",model="sim-small",release="none"}`); n != 2 {
		t.Fatalf("requests_total for sim-small: %v, want 2", n)
	}
}

// metricValue reads one series from /metrics; 0 when it is absent.
func metricValue(t *testing.T, a *testAgent, series string) float64 {
	t.Helper()
	resp, err := http.Get(a.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err != nil {
				t.Fatalf("metric %s: %q", series, v)
			}
			return f
		}
	}
	return 0
}

func TestMessagesStreamAndTools(t *testing.T) {
	a := startAgent(t, quietConfig())
	c := a.anthropic()
	stream := c.Messages.NewStreaming(context.Background(), question("sim-small"))
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
	if kinds[0] != "message_start" || kinds[len(kinds)-1] != "message_stop" || len(msg.Content) != 1 || msg.Content[0].Text == "" {
		t.Fatalf("events %v, message %+v", kinds, msg)
	}
	tr := a.waitTrace(strings.TrimPrefix(msg.ID, "msg_"))
	if !tr.Stream || tr.Entry != pipeline.EntryMessages || tr.Output != msg.Content[0].Text || tr.OutputTokens != int(msg.Usage.OutputTokens) {
		t.Fatalf("trace %+v does not match the streamed message %+v", tr, msg)
	}

	// A forced tool call, answered, then text: the turn Claude Code makes.
	p := question("sim-small")
	p.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "track_order",
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"id": map[string]any{"type": "string"}}, Required: []string{"id"}}}}}
	p.ToolChoice = anthropic.ToolChoiceUnionParam{OfTool: &anthropic.ToolChoiceToolParam{Name: "track_order"}}
	var call anthropic.Message
	s := c.Messages.NewStreaming(context.Background(), p)
	for s.Next() {
		if err := call.Accumulate(s.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("tool stream: %v", err)
	}
	last := call.Content[len(call.Content)-1]
	if call.StopReason != anthropic.StopReasonToolUse || last.Type != "tool_use" || last.Name != "track_order" || !json.Valid(last.Input) {
		t.Fatalf("want a track_order tool_use, got %+v", call)
	}
	p.Messages = append(p.Messages, call.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(last.ID, `{"status":"shipped"}`, false)))
	p.ToolChoice = anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{}}
	next, err := c.Messages.New(context.Background(), p)
	if err != nil || next.StopReason != anthropic.StopReasonEndTurn || next.Content[0].Text == "" {
		t.Fatalf("after the tool result: %+v, %v", next, err)
	}
}

func TestMessagesFeatureTakesVariablesFromMetadata(t *testing.T) {
	a := startAgent(t, quietConfig())
	c := a.anthropic()
	p := question("feature/support-answer")
	msg, err := c.Messages.New(context.Background(), p,
		aoption.WithJSONSet("metadata.customer", "Ana"), aoption.WithJSONSet("metadata.question", "Where is my order?"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tr := a.waitTrace(strings.TrimPrefix(msg.ID, "msg_"))
	if tr.Feature != "support-answer" || tr.Release == "" || tr.Label == "" || !strings.Contains(tr.Input, "Customer Ana asks") {
		t.Fatalf("trace: feature %q release %q label %q input %q", tr.Feature, tr.Release, tr.Label, tr.Input)
	}
	// Without them the template cannot render: a 400 in Anthropic's shape.
	_, err = c.Messages.New(context.Background(), p)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Type() != "invalid_request_error" || !strings.Contains(ae.Message, "customer") {
		t.Fatalf("no variables: got %v", err)
	}
}

// anthropicError reads an error body in Anthropic's shape.
func anthropicError(t *testing.T, resp *http.Response) (typ, msg string) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct {
		Type  string `json:"type"`
		Error struct {
			Type, Message string
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Type != "error" || v.Error.Type == "" || v.Error.Message == "" {
		t.Fatalf("%d %s is not an error in Anthropic's shape", resp.StatusCode, b)
	}
	return v.Error.Type, v.Error.Message
}

func TestMessagesErrorsInAnthropicShape(t *testing.T) {
	cfg := quietConfig()
	cfg.Keys = append(cfg.Keys,
		config.Key{Name: "small-only", Team: "t", Hash: config.HashKey("gk_small-only-key-00001"), Models: []string{"sim-small"}},
		config.Key{Name: "slow", Team: "t", Hash: config.HashKey("gk_slow-key-0000000001"), RateLimit: &config.RateLimit{RPM: 1}})
	cfg.Budgets = []config.Budget{{Name: "tiny", Scope: config.ScopeKey, Match: "dev", Period: config.PeriodDay, LimitUSD: 0.0000001}}
	a := startAgent(t, cfg)
	body := `{"model":"sim-small","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`
	send := func(path, key, body string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", a.srv.URL+path, strings.NewReader(body))
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("content-type", "application/json")
		if key != "" {
			req.Header.Set("x-api-key", key)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// The slow key's one call a minute goes first.
	if resp := send("/v1/messages", "gk_slow-key-0000000001", body); resp.StatusCode != 200 {
		t.Fatalf("first call of the slow key: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		name, path, key, body string
		status                int
		typ, says             string
	}{
		{"no key", "/v1/messages", "", body, 401, "authentication_error", "no API key"},
		{"wrong key", "/v1/messages", "gk_wrong-key-000000000", body, 401, "authentication_error", "not valid"},
		{"unknown model", "/v1/messages", "gk_small-only-key-00001", strings.Replace(body, "sim-small", "claude-nonexistent", 1), 404, "not_found_error", "claude-nonexistent"},
		{"model not allowed", "/v1/messages", "gk_small-only-key-00001", strings.Replace(body, "sim-small", "sim-large", 1), 403, "permission_error", "sim-large"},
		{"no max_tokens", "/v1/messages", "gk_small-only-key-00001", `{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", "max_tokens"},
		{"not JSON", "/v1/messages", "gk_small-only-key-00001", `{"model":`, 400, "invalid_request_error", "not valid JSON"},
		{"server tool", "/v1/messages", "gk_small-only-key-00001", `{"model":"sim-small","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", "server tool"},
		{"rate limited", "/v1/messages", "gk_slow-key-0000000001", body, 429, "rate_limit_error", "rate limit"},
		{"over budget", "/v1/messages", devKey, body, 429, "rate_limit_error", "budget"},
		{"unknown path", "/v1/messages/batches", devKey, body, 404, "not_found_error", "not an endpoint"},
		{"count_tokens, wrong key", "/v1/messages/count_tokens", "gk_wrong-key-000000000", body, 401, "authentication_error", "not valid"},
		{"count_tokens, unknown model", "/v1/messages/count_tokens", devKey, strings.Replace(body, "sim-small", "nope", 1), 404, "not_found_error", "nope"},
		{"count_tokens, not allowed", "/v1/messages/count_tokens", "gk_small-only-key-00001", strings.Replace(body, "sim-small", "sim-large", 1), 403, "permission_error", "sim-large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := send(tc.path, tc.key, tc.body)
			typ, msg := anthropicError(t, resp)
			if resp.StatusCode != tc.status || typ != tc.typ || !strings.Contains(msg, tc.says) {
				t.Fatalf("got %d %s %q, want %d %s saying %q", resp.StatusCode, typ, msg, tc.status, tc.typ, tc.says)
			}
			if tc.status == 429 && resp.Header.Get("Retry-After") == "" {
				t.Fatalf("a 429 without Retry-After")
			}
		})
	}
	// The SDK reads them as its own errors.
	bad := a.anthropic(aoption.WithAPIKey("gk_wrong-key-000000000"))
	_, err := bad.Messages.New(context.Background(), question("sim-small"))
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Type() != "authentication_error" {
		t.Fatalf("SDK: got %v, want a 401 authentication_error", err)
	}
}

// A request as Claude Code sends it: the beta path, a Bearer token,
// anthropic-beta, cached system blocks and tools, a thinking budget, the
// session in metadata.user_id and a stream.
const claudeCodeBody = `{"model":"sim-small","max_tokens":32000,"stream":true,"temperature":1,
 "system":[{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude.","cache_control":{"type":"ephemeral"}},
           {"type":"text","text":"You are an interactive CLI tool that helps users with software engineering tasks.","cache_control":{"type":"ephemeral"}}],
 "messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>This is a reminder.</system-reminder>"},
                                       {"type":"text","text":"list the files here","cache_control":{"type":"ephemeral"}}]}],
 "tools":[{"name":"Bash","description":"Executes a bash command","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}},
          {"name":"Read","description":"Reads a file","input_schema":{"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"]},"cache_control":{"type":"ephemeral"}}],
 "metadata":{"user_id":"user_2f1e0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e_account__session_0b6d2d7e-4a8e-4f0e-9a1c-3c2b1a0f9e8d"},
 "thinking":{"type":"enabled","budget_tokens":31999}}`

func TestClaudeCodeRequest(t *testing.T) {
	a := startAgent(t, quietConfig())
	req, _ := http.NewRequest("POST", a.srv.URL+"/v1/messages?beta=true", strings.NewReader(claudeCodeBody))
	for k, v := range map[string]string{"Authorization": "Bearer " + devKey, "anthropic-version": "2023-06-01", "content-type": "application/json",
		"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14", "x-app": "cli",
		"anthropic-dangerous-direct-browser-access": "true", "user-agent": "claude-cli/2.0.0 (external, cli)"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var names []string
	text := ""
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "event: "); ok {
			names = append(names, n)
		}
		// The simulator answers with text or, offered tools, with a call.
		if d, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(d, `"content_block_delta"`) {
			var ev struct {
				Delta struct {
					Text        string `json:"text"`
					PartialJSON string `json:"partial_json"`
				} `json:"delta"`
			}
			if err := json.Unmarshal([]byte(d), &ev); err != nil {
				t.Fatalf("event %s: %v", d, err)
			}
			text += ev.Delta.Text + ev.Delta.PartialJSON
		}
	}
	if len(names) < 6 || names[0] != "message_start" || names[1] != "ping" || names[2] != "content_block_start" ||
		names[len(names)-2] != "message_delta" || names[len(names)-1] != "message_stop" || text == "" {
		t.Fatalf("events %v, text %q", names, text)
	}
	tr := a.waitTrace(resp.Header.Get("Request-Id"))
	if tr.Entry != pipeline.EntryMessages || tr.Output != text || !strings.HasPrefix(tr.User, "user_2f1e") || !strings.Contains(tr.Input, "You are Claude Code") {
		t.Fatalf("trace: entry %s user %q output %q input %q", tr.Entry, tr.User, tr.Output, tr.Input)
	}

	// count_tokens on the beta path, as Claude Code calls it.
	req, _ = http.NewRequest("POST", a.srv.URL+"/v1/messages/count_tokens?beta=true", strings.NewReader(strings.Replace(claudeCodeBody, `"max_tokens":32000,"stream":true,`, "", 1)))
	req.Header.Set("Authorization", "Bearer "+devKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		InputTokens int `json:"input_tokens"`
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &n); err != nil || resp.StatusCode != 200 || n.InputTokens < 40 || n.InputTokens > 400 {
		t.Fatalf("count_tokens: %d %s", resp.StatusCode, b)
	}
}

func TestMessagesCountTokensAndModels(t *testing.T) {
	a := startAgent(t, quietConfig())
	c := a.anthropic()
	q := question("sim-small")
	n, err := c.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{Model: q.Model,
		System: anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: q.System}, Messages: q.Messages})
	if err != nil {
		t.Fatalf("CountTokens: %v", err)
	}
	// The count is the one the gateway's limits use: what a call's trace
	// records as its input.
	msg, err := c.Messages.New(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	tr := a.waitTrace(strings.TrimPrefix(msg.ID, "msg_"))
	if n.InputTokens <= 0 || n.InputTokens != int64(tr.InputTokens) {
		t.Fatalf("count_tokens %d, the call's trace counted %d", n.InputTokens, tr.InputTokens)
	}
	page, err := c.Models.List(context.Background(), anthropic.ModelListParams{})
	if err != nil {
		t.Fatalf("Models.List: %v", err)
	}
	ids := map[string]bool{}
	for _, m := range page.Data {
		ids[m.ID] = true
	}
	if !ids["sim-small"] || !ids["feature/support-answer"] || page.HasMore {
		t.Fatalf("models: %+v", page.Data)
	}
}

func TestResponsesThroughThePipeline(t *testing.T) {
	a := startAgent(t, quietConfig())
	c := a.openai()
	ask := responses.ResponseNewParams{Model: "sim-small", Instructions: openai.String("Answer briefly."),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Where is my order?")}, MaxOutputTokens: openai.Int(200)}
	resp, err := c.Responses.New(context.Background(), ask)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tr := a.waitTrace(strings.TrimPrefix(resp.ID, "resp_"))
	if resp.Status != "completed" || resp.OutputText() == "" || tr.Entry != pipeline.EntryResponses || tr.Output != resp.OutputText() ||
		tr.InputTokens != int(resp.Usage.InputTokens) || tr.OutputTokens != int(resp.Usage.OutputTokens) || tr.CostUSD <= 0 {
		t.Fatalf("response %s %q usage %+v; trace %+v", resp.Status, resp.OutputText(), resp.Usage, tr)
	}

	s := c.Responses.NewStreaming(context.Background(), ask)
	var deltas strings.Builder
	var final responses.Response
	for s.Next() {
		switch ev := s.Current(); ev.Type {
		case "response.output_text.delta":
			deltas.WriteString(ev.Delta)
		case "response.completed":
			final = ev.AsResponseCompleted().Response
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	tr = a.waitTrace(strings.TrimPrefix(final.ID, "resp_"))
	if deltas.Len() == 0 || final.OutputText() != deltas.String() || !tr.Stream || tr.Output != deltas.String() {
		t.Fatalf("stream: deltas %q, completed %q, trace output %q", deltas.String(), final.OutputText(), tr.Output)
	}

	// A feature takes its variables from metadata, as on chat completions.
	fa := ask
	fa.Model = "feature/support-answer"
	fa.Metadata = map[string]string{"customer": "Ana", "question": "Where is my order?"}
	resp, err = c.Responses.New(context.Background(), fa)
	if err != nil {
		t.Fatalf("feature: %v", err)
	}
	if tr := a.waitTrace(strings.TrimPrefix(resp.ID, "resp_")); tr.Feature != "support-answer" || tr.Release == "" {
		t.Fatalf("feature trace: %+v", tr)
	}

	// Stateless: a stored response cannot be followed.
	prev := ask
	prev.PreviousResponseID = openai.String(resp.ID)
	_, err = c.Responses.New(context.Background(), prev)
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 400 || oe.Param != "previous_response_id" {
		t.Fatalf("previous_response_id: got %v, want a 400 naming it", err)
	}
	big := ask
	big.MaxOutputTokens = openai.Int(1 << 20)
	cfg := quietConfig()
	cfg.Limits.MaxOutputTokens = 4096
	if err := a.s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	_, err = c.Responses.New(context.Background(), big)
	if !errors.As(err, &oe) || oe.StatusCode != 400 || oe.Param != "max_output_tokens" || !strings.HasPrefix(oe.Message, "max_output_tokens is") {
		t.Fatalf("over the output limit: got %v, want a 400 naming max_output_tokens", err)
	}
}

func TestEmbeddingsThroughThePipeline(t *testing.T) {
	cfg := quietConfig()
	a := startAgent(t, cfg)
	cfg = quietConfig()
	cfg.Keys = append(cfg.Keys, config.Key{Name: "dev", Team: "dev", Hash: config.HashKey(devKey), RateLimit: &config.RateLimit{RPM: 1}})
	if err := a.s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	c := a.openai()
	texts := []string{"Where is my order?", "How do I reset the thermostat?"}
	var hr *http.Response
	resp, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "sim-embed", Dimensions: openai.Int(32),
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts}}, option.WithResponseInto(&hr))
	if err != nil {
		t.Fatalf("embeddings: %v", err)
	}
	if len(resp.Data) != 2 || len(resp.Data[1].Embedding) != 32 || resp.Model != "sim-embed" || resp.Usage.PromptTokens <= 0 {
		t.Fatalf("embeddings: %d vectors, model %s, usage %+v", len(resp.Data), resp.Model, resp.Usage)
	}
	if hr.Header.Get("x-ratelimit-remaining-requests") != "0" {
		t.Fatalf("rate-limit headers: %v", hr.Header)
	}
	tr := a.waitTrace(hr.Header.Get("X-Request-Id"))
	if tr.Entry != pipeline.EntryEmbeddings || tr.Model != "sim-embed" || tr.Key != "dev" || tr.InputTokens != int(resp.Usage.PromptTokens) || tr.CostUSD <= 0 {
		t.Fatalf("trace: %+v", tr)
	}
	// A feature answers chat requests only; the refusal is traced too.
	_, err = c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "feature/support-answer",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}}, option.WithResponseInto(&hr))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 400 || oe.Param != "model" {
		t.Fatalf("feature: got %v, want a 400 naming model", err)
	}
	if tr := a.waitTrace(hr.Header.Get("X-Request-Id")); tr.Entry != pipeline.EntryEmbeddings || tr.Status != "error" {
		t.Fatalf("refusal trace: %+v", tr)
	}
	_, err = c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "sim-embed", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	if !errors.As(err, &oe) || oe.StatusCode != 429 {
		t.Fatalf("over the key's rate limit: got %v, want a 429", err)
	}
}

func TestUnknownPriceIsFlaggedNotFree(t *testing.T) {
	cfg := quietConfig()
	cfg.Models = append(cfg.Models, config.Model{Name: "mystery", Provider: "sim"})
	a := startAgent(t, cfg)
	resp := a.post("/v1/chat/completions", `{"model":"mystery","messages":[{"role":"user","content":"hi"}]}`)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	tr := a.waitTrace(resp.Header.Get("X-Request-Id"))
	if !tr.PriceUnknown || tr.PriceSource != "unknown" || tr.CostUSD != 0 {
		t.Fatalf("trace: unknown %v source %q cost %v", tr.PriceUnknown, tr.PriceSource, tr.CostUSD)
	}
	models := decode[api.Models](t, a.admin(api.PathModels))
	byName := map[string]api.Model{}
	for _, m := range models.Models {
		byName[m.Name] = m
	}
	if m := byName["mystery"]; m.PriceKnown() || m.Provider != "sim" || m.Kind != "sim" {
		t.Fatalf("mystery: %+v", m)
	}
	if m := byName["sim-large"]; m.PriceSource != price.SourceConfig || m.Price.Input != 2.5 || m.Upstream != "sim-large" {
		t.Fatalf("sim-large: %+v", m)
	}
	spend := decode[api.Budgets](t, a.admin(api.PathBudgets)).Spend
	for _, s := range spend {
		if s.Dimension == api.DimModel && s.Name == "mystery" {
			if s.Requests != 1 || s.Unpriced != 1 {
				t.Fatalf("spend of mystery: %+v", s)
			}
			return
		}
	}
	t.Fatalf("no spend row for mystery: %+v", spend)
}

func TestEmbeddingsRepeatedAreCached(t *testing.T) {
	a := startAgent(t, quietConfig())
	body := `{"model":"sim-embed","input":["Where is my order?","Reset the thermostat"],"dimensions":16}`
	var traces []string
	for _, hdr := range [][]string{nil, nil, {"X-Gantry-Cache", "bypass"}} {
		resp := a.post("/v1/embeddings", body, hdr...)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		traces = append(traces, resp.Header.Get("X-Request-Id"))
	}
	first, again, bypass := a.waitTrace(traces[0]), a.waitTrace(traces[1]), a.waitTrace(traces[2])
	if first.Cached || !again.Cached || bypass.Cached || again.CostUSD != 0 || first.CostUSD <= 0 || bypass.CostUSD != first.CostUSD {
		t.Fatalf("cached %v/%v/%v, cost %v/%v/%v: want the repeat alone served from the cache, free",
			first.Cached, again.Cached, bypass.Cached, first.CostUSD, again.CostUSD, bypass.CostUSD)
	}
	if n := metricValue(t, a, `gantry_cache_requests_total{feature="none",result="hit"}`); n != 1 {
		t.Fatalf("cache hits counted: %v, want 1", n)
	}
}

// A stream cut after output went out ends, on each API, with an error the
// SDK reports, never with the end of a complete answer; an upstream's
// 429 before output is retried on the fallback as on chat completions.
func TestInboundStreamsCutAndRetried(t *testing.T) {
	u := startWithUpstreams(t, fake.Options{Default: fake.Fault{CutAfter: 3}}, fake.Options{Default: fake.Fault{CutAfter: 3}}, policy())
	a := u.a
	ac := a.anthropic()
	s := ac.Messages.NewStreaming(context.Background(), question("r"))
	var kinds []string
	for s.Next() {
		kinds = append(kinds, s.Current().Type)
	}
	if s.Err() == nil || len(kinds) == 0 || kinds[len(kinds)-1] == "message_stop" {
		t.Fatalf("messages: events %v, err %v; want output then an error", kinds, s.Err())
	}
	c := a.openai()
	rs := c.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{Model: "r",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello")}})
	kinds = nil
	for rs.Next() {
		kinds = append(kinds, rs.Current().Type)
	}
	if len(kinds) < 2 || kinds[len(kinds)-1] != "response.failed" {
		t.Fatalf("responses: events %v, err %v; want output then response.failed", kinds, rs.Err())
	}

	r := startWithUpstreams(t, fake.Options{Script: []fake.Fault{{Status: 429, RetryAfter: "1"}}}, fake.Options{}, policy())
	rc := r.a.anthropic()
	msg, err := rc.Messages.New(context.Background(), question("r"))
	if err != nil {
		t.Fatalf("after an upstream 429: %v", err)
	}
	tr := r.a.waitTrace(strings.TrimPrefix(msg.ID, "msg_"))
	if tr.Status != "ok" || len(tr.Attempts) < 2 || tr.Attempts[0].Status != "http_429" {
		t.Fatalf("trace attempts %+v", tr.Attempts)
	}
}

func TestMessagesNotServingIsAnAnthropicError(t *testing.T) {
	opts := Options{Dev: true, DevKey: devKey, DevAdminToken: devAdmin, DataDir: t.TempDir(), NodeID: "test",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard}
	s, _, err := build(&opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler()) // no configuration loaded yet
	t.Cleanup(func() {
		srv.Close()
		s.close()
	})
	for _, path := range []string{"/v1/messages", "/v1/messages/count_tokens"} {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(`{"model":"sim-small","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("x-api-key", devKey)
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		typ, msg := anthropicError(t, resp)
		if resp.StatusCode != 503 || typ != "overloaded_error" || !strings.Contains(msg, "not serving") || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d %s %q, Retry-After %q", path, resp.StatusCode, typ, msg, resp.Header.Get("Retry-After"))
		}
	}
}
