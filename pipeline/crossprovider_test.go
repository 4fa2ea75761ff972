package pipeline

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/price"
	"gantry/pipeline/provider"
	"gantry/pipeline/provider/fake"
	"gantry/pipeline/trace"
)

// crossCase is one provider kind behind a replay of its recorded wire
// format, for the same call.
type crossCase struct {
	name     string
	provider config.Provider // BaseURL is filled in
	model    config.Model
	complete string // recording of a complete answer, "" for none
	stream   func(t *testing.T) fake.Step
	// usage the recordings report, in OpenAI's terms.
	in, out, cached, reasoning int
	source                     price.Source
}

func recorded(name string) func(t *testing.T) fake.Step {
	return func(t *testing.T) fake.Step {
		t.Helper()
		r, err := fake.ReadRecording(filepath.Join("provider", "testdata", "recorded", name))
		if err != nil {
			t.Fatalf("recording: %v", err)
		}
		return fake.Step{Recording: r}
	}
}

func bedrockFrames(*testing.T) fake.Step {
	return fake.Step{Recording: fake.Recording{Status: 200, Header: http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}},
		Body: fake.EventStream(
			fake.Frame{Event: "messageStart", Payload: `{"role":"assistant"}`},
			fake.Frame{Event: "contentBlockDelta", Payload: `{"contentBlockIndex":0,"delta":{"text":"Your order"}}`},
			fake.Frame{Event: "contentBlockDelta", Payload: `{"contentBlockIndex":0,"delta":{"text":" shipped yesterday."}}`},
			fake.Frame{Event: "contentBlockStop", Payload: `{"contentBlockIndex":0}`},
			fake.Frame{Event: "messageStop", Payload: `{"stopReason":"end_turn"}`},
			fake.Frame{Event: "metadata", Payload: `{"usage":{"inputTokens":8,"outputTokens":6,"totalTokens":18,"cacheReadInputTokens":4},"metrics":{"latencyMs":402}}`},
		)}}
}

var crossCases = []crossCase{
	{name: "openai", provider: config.Provider{Kind: config.KindOpenAI, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "gpt-4o-mini-2024-07-18"},
		complete: "openai/text.http", stream: recorded("openai/stream.http"), in: 12, out: 6, cached: 4, source: price.SourceTable},
	{name: "anthropic", provider: config.Provider{Kind: config.KindAnthropic, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "claude-3-5-haiku-20241022"},
		complete: "anthropic/text.http", stream: recorded("anthropic/stream.http"), in: 12, out: 6, cached: 4, source: price.SourceTable},
	{name: "gemini", provider: config.Provider{Kind: config.KindGemini, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "gemini-2.5-flash"},
		complete: "gemini/text.http", stream: recorded("gemini/stream.http"), in: 12, out: 28, cached: 4, reasoning: 22, source: price.SourceTable},
	{name: "azure", provider: config.Provider{Kind: config.KindAzure, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Name: "gpt-4o", Upstream: "support-gpt4o"},
		complete: "azure/text.http", stream: recorded("azure/stream.http"), in: 12, out: 6, source: price.SourceTable},
	{name: "bedrock", provider: config.Provider{Kind: config.KindBedrock, Region: "us-east-1"}, model: config.Model{Upstream: "anthropic.claude-3-5-haiku-20241022-v1:0"},
		complete: "bedrock/text.http", stream: bedrockFrames, in: 12, out: 6, cached: 4, source: price.SourceTable},
	{name: "mistral", provider: config.Provider{Kind: config.KindMistral, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "mistral-small-latest"},
		stream: recorded("mistral/stream.http"), in: 12, out: 6, source: price.SourceTable},
	{name: "groq", provider: config.Provider{Kind: config.KindGroq, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "llama-3.3-70b-versatile"},
		stream: recorded("groq/stream.http"), in: 12, out: 6, source: price.SourceTable},
	{name: "together", provider: config.Provider{Kind: config.KindTogether, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "meta-llama/Llama-3.3-70B-Instruct-Turbo"},
		stream: recorded("together/stream.http"), in: 12, out: 6, source: price.SourceTable},
	{name: "fireworks", provider: config.Provider{Kind: config.KindOpenAI, Preset: config.KindFireworks, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "accounts/fireworks/models/llama-v3p1-8b-instruct"},
		stream: recorded("fireworks/stream.http"), in: 12, out: 6, source: price.SourceTable},
	{name: "deepseek", provider: config.Provider{Kind: config.KindDeepSeek, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "deepseek-reasoner"},
		complete: "deepseek/text.http", in: 64, out: 40, cached: 48, reasoning: 28, source: price.SourceTable},
	{name: "vllm", provider: config.Provider{Kind: config.KindVLLM}, model: config.Model{Upstream: "Qwen/Qwen2.5-7B-Instruct"},
		stream: recorded("vllm/stream.http"), in: 12, out: 6, source: price.SourceSelfHosted},
	{name: "ollama", provider: config.Provider{Kind: config.KindOllama}, model: config.Model{Upstream: "llama3.2"},
		stream: recorded("ollama/stream.http"), in: 12, out: 6, source: price.SourceSelfHosted},
	{name: "llama.cpp", provider: config.Provider{Kind: config.KindLlamaCpp}, model: config.Model{Upstream: "local"},
		stream: recorded("llamacpp/stream.http"), in: 12, out: 6, source: price.SourceSelfHosted},
	{name: "openai, unpriced model", provider: config.Provider{Kind: config.KindOpenAI, APIKeyEnv: "UPSTREAM_API_KEY"}, model: config.Model{Upstream: "gpt-9-ultra"},
		complete: "openai/text.http", stream: recorded("openai/stream.http"), in: 12, out: 6, cached: 4, source: price.SourceUnknown},
}

// crossGateway serves one model of the case's kind from a replay server.
func crossGateway(t *testing.T, tc crossCase, step fake.Step) (*Gateway, *[]*trace.Trace) {
	t.Helper()
	srv := httptest.NewServer(fake.NewReplay(step))
	t.Cleanup(srv.Close)
	p := tc.provider
	p.Name = "upstream"
	p.BaseURL = srv.URL
	switch p.Kind {
	case config.KindOpenAI, config.KindVLLM, config.KindOllama, config.KindLlamaCpp, config.KindMistral, config.KindGroq, config.KindTogether, config.KindDeepSeek:
		p.BaseURL += "/v1"
	}
	m := tc.model
	if m.Name == "" {
		m.Name = "answer-model"
	}
	m.Provider = p.Name
	cfg := &config.Config{Providers: []config.Provider{p}, Models: []config.Model{m},
		Keys: []config.Key{{Name: "test", Team: "qa", Hash: config.HashKey(testKey)}}}
	env := map[string]string{"UPSTREAM_API_KEY": "sk-test", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
	set := NewProviderSet(func(pc config.Provider) (provider.Provider, error) {
		return provider.New(pc, func(k string) string { return env[k] }, nil)
	})
	snap, err := Compile(cfg, set)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	var mu sync.Mutex
	var traces []*trace.Trace
	g := NewGateway(Deps{Record: func(tr *trace.Trace) {
		mu.Lock()
		traces = append(traces, tr)
		mu.Unlock()
	}})
	g.Swap(snap)
	return g, &traces
}

// TestCrossProvider sends the same call to each provider kind in turn and
// checks that every trace has the same shape, the usage the provider
// reported, and a cost computed from the price it names.
func TestCrossProvider(t *testing.T) {
	var spans string // the stage names, the same for every provider
	for _, tc := range crossCases {
		for _, stream := range []bool{false, true} {
			if (stream && tc.stream == nil) || (!stream && tc.complete == "") {
				continue
			}
			name := tc.name
			if stream {
				name += " stream"
			}
			t.Run(name, func(t *testing.T) {
				step := tc.stream
				if !stream {
					step = recorded(tc.complete)
				}
				g, traces := crossGateway(t, tc, step(t))
				c := &Call{ID: "r1", TraceID: trace.NewTraceID(), Received: time.Now(), Entry: EntryChat, Secret: testKey,
					Req: &chat.Request{Model: "answer-model", Messages: []chat.Message{{Role: "user", Content: chat.Text("Where is my order?")}}}}
				if tc.model.Name != "" {
					c.Req.Model = tc.model.Name
				}
				var text strings.Builder
				if stream {
					c.Req.Stream = true
					c.Emit = func(ch *chat.Chunk) error {
						for _, choice := range ch.Choices {
							if choice.Delta.Content != nil {
								text.WriteString(*choice.Delta.Content)
							}
						}
						return nil
					}
				}
				if err := g.Serve(context.Background(), c); err != nil {
					t.Fatalf("serve: %v", err)
				}
				if !stream {
					text.WriteString(c.Resp.Choices[0].Message.Content.Text)
				}
				if got := text.String(); got != "Your order shipped yesterday." && tc.name != "deepseek" {
					t.Fatalf("client got %q", got)
				}
				tr := (*traces)[0]
				if tr.Status != "ok" || tr.HTTPStatus != 200 || tr.Provider != "upstream" || len(tr.Attempts) != 1 || tr.Attempts[0].Status != "ok" || tr.Stream != stream {
					t.Fatalf("trace: status %s %d provider %s attempts %+v stream %v", tr.Status, tr.HTTPStatus, tr.Provider, tr.Attempts, tr.Stream)
				}
				if tr.InputTokens != tc.in || tr.OutputTokens != tc.out || tr.CachedTokens != tc.cached || tr.ReasoningTokens != tc.reasoning || tr.TokensEstimate {
					t.Fatalf("usage: got in %d out %d cached %d reasoning %d estimated %v, want %d %d %d %d as reported",
						tr.InputTokens, tr.OutputTokens, tr.CachedTokens, tr.ReasoningTokens, tr.TokensEstimate, tc.in, tc.out, tc.cached, tc.reasoning)
				}
				q, _ := g.Snapshot().ModelPrice(c.Req.Model)
				if q.Source != tc.source || tr.PriceUnknown != (tc.source == price.SourceUnknown) || tr.PriceSource != q.String() {
					t.Fatalf("price: got source %s, trace %q unknown %v; want %s", q.Source, tr.PriceSource, tr.PriceUnknown, tc.source)
				}
				want := q.Cost(tc.in, tc.cached, tc.out, tc.reasoning)
				if math.Abs(tr.CostUSD-want) > 1e-12 || (tc.source == price.SourceTable && want <= 0) {
					t.Fatalf("cost: got %v, want %v", tr.CostUSD, want)
				}
				var names []string
				for _, s := range tr.Spans {
					names = append(names, s.Name)
				}
				if spans == "" {
					spans = strings.Join(names, ",")
				} else if got := strings.Join(names, ","); got != spans {
					t.Fatalf("spans: got %s, other providers had %s", got, spans)
				}
			})
		}
	}
}
