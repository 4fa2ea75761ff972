package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/tokens"
)

// checkSchema fails unless doc satisfies schema.
func checkSchema(t testing.TB, schema, doc string) {
	t.Helper()
	s, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatalf("schema %s: %v", schema, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", s); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("compile %s: %v", schema, err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("generated %q is not JSON: %v", doc, err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("generated %s does not satisfy %s: %v", doc, schema, err)
	}
}

func TestSimJSONSatisfiesSchemas(t *testing.T) {
	schemas := map[string]string{
		"ticket triage": `{"type":"object","required":["category","priority"],"additionalProperties":false,
			"properties":{"category":{"type":"string","enum":["billing","shipping","returns","other"]},"priority":{"type":"integer","minimum":1,"maximum":3}}}`,
		"nested arrays": `{"type":"object","required":["items"],"properties":{"items":{"type":"array","minItems":2,"maxItems":4,
			"items":{"type":"object","required":["sku","qty","price"],"properties":{"sku":{"type":"string","minLength":3,"maxLength":8},
			"qty":{"type":"integer","exclusiveMinimum":0,"multipleOf":2,"maximum":10},"price":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}}}}}}`,
		"refs and defs": `{"$defs":{"addr":{"type":"object","required":["city"],"properties":{"city":{"type":"string"},"zip":{"type":"string","format":"uuid"}}}},
			"type":"object","required":["from","to"],"properties":{"from":{"$ref":"#/$defs/addr"},"to":{"$ref":"#/$defs/addr"}}}`,
		"recursive":           `{"type":"object","required":["name"],"properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}}}}`,
		"nullable and unions": `{"type":"object","required":["a","b","c"],"properties":{"a":{"type":["null","string"]},"b":{"anyOf":[{"type":"boolean"},{"type":"string"}]},"c":{"oneOf":[{"const":42}]}}}`,
		"all of":              `{"allOf":[{"type":"object","required":["id"],"properties":{"id":{"type":"string","format":"date-time"}}},{"required":["n"],"properties":{"n":{"type":"number","minimum":-5,"maximum":-4}}}]}`,
		"tuple":               `{"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false,"minItems":2}`,
		"free form":           `{}`,
		"true":                `true`,
		"untyped":             `{"required":["x"]}`,
		"big minLen":          `{"type":"string","minLength":300}`,
	}
	for name, schema := range schemas {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(20) {
				rng := rand.New(rand.NewPCG(seed, 1))
				out, err := simJSON(json.RawMessage(schema), rng)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				checkSchema(t, schema, out)
			}
		})
	}
}

func TestSimJSONRefuses(t *testing.T) {
	tests := map[string]string{
		"false":            `false`,
		"not json":         `{"type":`,
		"remote ref":       `{"$ref":"https://example.com/s.json"}`,
		"missing ref":      `{"$ref":"#/$defs/nope"}`,
		"empty range":      `{"type":"integer","minimum":5,"maximum":4}`,
		"exclusive range":  `{"type":"integer","exclusiveMinimum":1,"exclusiveMaximum":2}`,
		"too many items":   `{"type":"array","minItems":100000}`,
		"inverted lengths": `{"type":"string","minLength":5,"maxLength":2}`,
		"unknown type":     `{"type":"decimal"}`,
		"endless ref":      `{"$ref":"#"}`,
		"not a schema":     `[1,2]`,
	}
	for name, schema := range tests {
		t.Run(name, func(t *testing.T) {
			if out, err := simJSON(json.RawMessage(schema), rand.New(rand.NewPCG(1, 1))); err == nil {
				t.Fatalf("got %s, want an error", out)
			}
		})
	}
}

func FuzzSimJSON(f *testing.F) {
	f.Add([]byte(`{"type":"object","required":["a"],"properties":{"a":{"type":"integer","minimum":1}}}`))
	f.Add([]byte(`{"$defs":{"x":{"type":"array","items":{"$ref":"#/$defs/x"}}},"$ref":"#/$defs/x"}`))
	f.Add([]byte(`{"allOf":[{"$ref":"#"}]}`))
	f.Fuzz(func(t *testing.T, schema []byte) {
		out, err := simJSON(schema, rand.New(rand.NewPCG(7, 7)))
		if err != nil {
			return
		}
		if !json.Valid([]byte(out)) {
			t.Fatalf("generated %q is not JSON", out)
		}
		// Bounded: nodes times the longest string, with room for keys.
		if len(out) > simMaxNodes*(simMaxString+len(schema)+16) {
			t.Fatalf("generated %d bytes from a %d-byte schema", len(out), len(schema))
		}
	})
}

func simRequest() *chat.Request {
	return &chat.Request{Model: "sim-large", Messages: []chat.Message{
		{Role: "system", Content: chat.Text("You are a support agent.")},
		{Role: "user", Content: chat.Text("Where is my order 1042?")},
	}}
}

func TestSimComplete(t *testing.T) {
	s := New(config.SimSettings{Seed: 42, OutputTokens: 20})
	resp, err := s.Complete(context.Background(), simRequest())
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	c := resp.Choices[0]
	if c.Message.Role != "assistant" || c.FinishReason != "stop" || resp.Model != "sim-large" || resp.Object != chat.ObjectCompletion {
		t.Fatalf("answer: got %+v", resp)
	}
	words := len(strings.Fields(c.Message.Content.Text))
	if words < 10 || words > 30 {
		t.Fatalf("got %d words, want 10..30 around the configured 20", words)
	}
	u := resp.Usage
	if resp.SystemFingerprint != Fingerprint {
		t.Fatalf("system_fingerprint: got %q, want %q", resp.SystemFingerprint, Fingerprint)
	}
	wantPrompt := tokens.CountMessages(simRequest().Messages)
	if u.CompletionTokens != tokens.Count(c.Message.Content.Text) || u.PromptTokens != wantPrompt || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Fatalf("usage: got %+v for %d words", *u, words)
	}

	// The same seed gives the same answer.
	again, err := New(config.SimSettings{Seed: 42, OutputTokens: 20}).Complete(context.Background(), simRequest())
	if err != nil {
		t.Fatal(err)
	}
	if again.Choices[0].Message.Content.Text != c.Message.Content.Text {
		t.Fatalf("seeded simulators differ: %q and %q", again.Choices[0].Message.Content.Text, c.Message.Content.Text)
	}
}

func TestSimOutputLimit(t *testing.T) {
	req := simRequest()
	req.MaxTokens = 5
	resp, err := New(config.SimSettings{Seed: 1, OutputTokens: 100}).Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if n := resp.Usage.CompletionTokens; resp.Choices[0].FinishReason != "length" || n > 5 || n < 3 || n != tokens.Count(resp.Choices[0].Message.Content.Text) {
		t.Fatalf("got finish %q and %d tokens, want length and at most 5", resp.Choices[0].FinishReason, n)
	}
}

func TestSimResponseFormat(t *testing.T) {
	const schema = `{"type":"object","required":["category","priority"],"additionalProperties":false,"properties":{"category":{"enum":["billing","shipping"]},"priority":{"type":"integer","minimum":1,"maximum":3}}}`
	s := New(config.SimSettings{Seed: 3})
	for _, stream := range []bool{false, true} {
		req := simRequest()
		req.ResponseFormat = &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: "triage", Schema: json.RawMessage(schema)}}
		var out string
		if stream {
			st, err := s.Stream(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var end error
			out, _, _, end = drain(t, st)
			if end != io.EOF {
				t.Fatalf("stream end: %v", end)
			}
		} else {
			resp, err := s.Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			out = resp.Choices[0].Message.Content.Text
		}
		checkSchema(t, schema, out)
	}

	req := simRequest()
	req.ResponseFormat = &chat.ResponseFormat{Type: "json_object"}
	resp, err := s.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(resp.Choices[0].Message.Content.Text), &obj); err != nil || obj["answer"] == nil {
		t.Fatalf("json_object answer %q: %v", resp.Choices[0].Message.Content.Text, err)
	}

	req.ResponseFormat = &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Schema: json.RawMessage(`false`)}}
	_, err = s.Complete(context.Background(), req)
	wantError(t, err, provider.KindStatus, 400)
}

func TestSimTools(t *testing.T) {
	const params = `{"type":"object","required":["order"],"properties":{"order":{"type":"integer","minimum":1000,"maximum":9999}}}`
	tools := []chat.Tool{
		{Type: "function", Function: chat.Function{Name: "refund"}},
		{Type: "function", Function: chat.Function{Name: "track", Parameters: json.RawMessage(params)}},
	}
	tests := []struct {
		name     string
		choice   string
		lastTool bool // the conversation ends with a tool result
		want     string
	}{
		{"named", `{"type":"function","function":{"name":"track"}}`, false, "track"},
		{"auto calls the first", ``, false, "refund"},
		{"none", `"none"`, false, ""},
		{"answers a tool result", `"auto"`, true, ""},
		{"required even after a result", `"required"`, true, "refund"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := simRequest()
			req.Tools = tools
			req.ToolChoice = json.RawMessage(tt.choice)
			if tt.lastTool {
				req.Messages = append(req.Messages,
					chat.Message{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "c1", Type: "function", Function: chat.FunctionCall{Name: "track", Arguments: `{"order":1042}`}}}},
					chat.Message{Role: "tool", ToolCallID: "c1", Content: chat.Text("in transit")})
			}
			resp, err := New(config.SimSettings{Seed: 5}).Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			c := resp.Choices[0]
			if tt.want == "" {
				if len(c.Message.ToolCalls) != 0 || c.FinishReason != "stop" {
					t.Fatalf("got tool calls %+v finish %q, want a text answer", c.Message.ToolCalls, c.FinishReason)
				}
				return
			}
			if len(c.Message.ToolCalls) != 1 || c.FinishReason != "tool_calls" {
				t.Fatalf("got tool calls %+v finish %q, want one call", c.Message.ToolCalls, c.FinishReason)
			}
			tc := c.Message.ToolCalls[0]
			if tc.Function.Name != tt.want || tc.ID == "" || tc.Type != "function" {
				t.Fatalf("got call %+v, want %s", tc, tt.want)
			}
			if tt.want == "track" {
				checkSchema(t, params, tc.Function.Arguments)
			}
		})
	}
}

func TestSimStreamToolCall(t *testing.T) {
	req := simRequest()
	req.Tools = []chat.Tool{{Type: "function", Function: chat.Function{Name: "track", Parameters: json.RawMessage(`{"type":"object","required":["order"],"properties":{"order":{"type":"string","minLength":40}}}`)}}}
	st, err := New(config.SimSettings{Seed: 9}).Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var args strings.Builder
	pieces := 0
	for {
		c, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil || *tc.Index != 0 {
					t.Fatalf("tool call piece without index 0: %+v", tc)
				}
				if pieces == 0 && (tc.ID == "" || tc.Function.Name != "track") {
					t.Fatalf("first piece lacks id or name: %+v", tc)
				}
				pieces++
				args.WriteString(tc.Function.Arguments)
			}
		}
	}
	if pieces < 2 {
		t.Fatalf("arguments came in %d pieces, want several", pieces)
	}
	var v struct{ Order string }
	if err := json.Unmarshal([]byte(args.String()), &v); err != nil || len(v.Order) < 40 {
		t.Fatalf("assembled arguments %q: %v", args.String(), err)
	}
}

func TestSimStream(t *testing.T) {
	s := New(config.SimSettings{Seed: 11, OutputTokens: 30})
	st, err := s.Stream(context.Background(), simRequest())
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil || first.Choices[0].Delta.Role != "assistant" || first.Choices[0].Delta.Content == nil {
		t.Fatalf("first chunk: got %+v, %v; want the role and the first token", first, err)
	}
	content, finish, usage, end := drain(t, st)
	content = *first.Choices[0].Delta.Content + content
	if end != io.EOF || finish != "stop" {
		t.Fatalf("end %v finish %q, want EOF and stop", end, finish)
	}
	if usage == nil || usage.CompletionTokens != tokens.Count(content) {
		t.Fatalf("usage %+v for %d words", usage, len(strings.Fields(content)))
	}
	if _, err := st.Recv(); !errors.Is(err, errStreamClosed) {
		t.Fatalf("Recv after Close: got %v, want errStreamClosed", err)
	}
}

func TestSimFailures(t *testing.T) {
	tests := []struct {
		name   string
		set    config.SimSettings
		kind   provider.Kind
		status int
	}{
		{"rate limit", config.SimSettings{RateLimitRate: 1}, provider.KindStatus, 429},
		{"server error", config.SimSettings{ErrorRate: 1}, provider.KindStatus, 503},
		{"timeout", config.SimSettings{TimeoutRate: 1}, provider.KindTimeout, 0},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
				defer cancel()
				s := New(tt.set)
				var err error
				if stream {
					_, err = s.Stream(ctx, simRequest())
				} else {
					_, err = s.Complete(ctx, simRequest())
				}
				pe := wantError(t, err, tt.kind, tt.status)
				if tt.status == 429 && pe.RetryAfter != simRetryAfter {
					t.Fatalf("retry after: got %v, want %v", pe.RetryAfter, simRetryAfter)
				}
			})
		}
	}
}

func TestSimCut(t *testing.T) {
	cuts, clean := 0, 0
	for seed := range int64(40) {
		s := New(config.SimSettings{CutRate: 1, Seed: seed + 1, OutputTokens: 10})
		if _, err := s.Complete(context.Background(), simRequest()); err != nil {
			wantError(t, err, provider.KindCut, 0)
		} else {
			t.Fatalf("seed %d: Complete succeeded with cut rate 1", seed)
		}
		st, err := New(config.SimSettings{CutRate: 1, Seed: seed + 1, OutputTokens: 10}).Stream(context.Background(), simRequest())
		if err != nil {
			wantError(t, err, provider.KindCut, 0)
			cuts++
			continue
		}
		_, _, _, end := drain(t, st)
		if end == io.EOF {
			clean++
		}
		wantError(t, end, provider.KindCut, 0)
		cuts++
	}
	if cuts != 40 || clean != 0 {
		t.Fatalf("got %d cuts and %d clean ends, want 40 and 0", cuts, clean)
	}
}

func TestSimCancelledCallerIsNoUpstreamFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(config.SimSettings{LatencyP50: config.Duration(time.Second)}).Complete(ctx, simRequest())
	var pe *provider.Error
	if errors.As(err, &pe) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want a wrapped context.Canceled that is no *Error", err)
	}
}

func TestSimPacing(t *testing.T) {
	// 20 tokens at 1000 per second take at least 19 ms after the first.
	s := New(config.SimSettings{Seed: 2, OutputTokens: 20, TokensPerSecond: 1000, LatencyP50: config.Duration(10 * time.Millisecond)})
	req := simRequest()
	req.MaxTokens = 20
	start := time.Now()
	st, err := s.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ttft := time.Since(start)
	content, _, _, end := drain(t, st)
	if end != io.EOF {
		t.Fatal(end)
	}
	n := len(strings.Fields(content))
	if ttft < 10*time.Millisecond {
		t.Fatalf("first token after %v, want at least the 10ms median (no spread is set)", ttft)
	}
	// Token i is due i intervals after the first, which is due at the
	// median; both are counted from inside Stream, after start.
	if min := 10*time.Millisecond + time.Duration(n-1)*time.Millisecond; time.Since(start) < min {
		t.Fatalf("%d tokens took %v, want at least %v", n, time.Since(start), min)
	}
}

func TestLogNormal(t *testing.T) {
	p50, p99 := 40*time.Millisecond, 250*time.Millisecond
	tests := []struct {
		z    float64
		want time.Duration
	}{
		{0, p50},
		{2.326347874, p99},
		{-2.326347874, time.Duration(float64(p50) * float64(p50) / float64(p99))},
		{100, 4 * p99}, // the tail is clipped
	}
	for _, tt := range tests {
		got := logNormal(p50, p99, tt.z)
		if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("z=%v: got %v, want %v", tt.z, got, tt.want)
		}
	}
	if got := logNormal(0, p99, 1); got != 0 {
		t.Fatalf("no median: got %v, want 0", got)
	}
}

func BenchmarkSimComplete(b *testing.B) {
	s := New(config.SimSettings{Seed: 1, OutputTokens: 60})
	req := simRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Complete(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSimJSON(b *testing.B) {
	schema := json.RawMessage(`{"type":"object","required":["category","priority"],"additionalProperties":false,"properties":{"category":{"type":"string","enum":["billing","shipping","returns","other"]},"priority":{"type":"integer","minimum":1,"maximum":3}}}`)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := simJSON(schema, rng); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSimInvalidRate(t *testing.T) {
	const schema = `{"type":"object","required":["category","priority"],"properties":{"category":{"enum":["billing"]},"priority":{"type":"integer"}}}`
	sch, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", sch); err != nil {
		t.Fatal(err)
	}
	compiled, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, rate := range []float64{0, 0.2, 1} {
		s := New(config.SimSettings{Seed: 7, InvalidRate: rate})
		const n = 2000
		invalid := 0
		for range n {
			req := simRequest()
			req.ResponseFormat = &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: "t", Schema: json.RawMessage(schema)}}
			resp, err := s.Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(resp.Choices[0].Message.Content.Text))
			if err != nil {
				t.Fatalf("an invalid answer is still JSON: %v", err)
			}
			if compiled.Validate(v) != nil {
				invalid++
			}
		}
		// Binomial(2000, 0.2) has a standard deviation of about 18.
		if got := float64(invalid) / n; got < rate-0.04 || got > rate+0.04 {
			t.Fatalf("invalid_rate %v: %d of %d answers broke the schema", rate, invalid, n)
		}
	}
}

// drain reads a stream to its end and returns the content, the finish
// reason, the usage and the error that ended it.
func drain(t *testing.T, s provider.Stream) (content, finish string, usage *chat.Usage, end error) {
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

// wantError checks that err is an *provider.Error of the kind and status given.
func wantError(t *testing.T, err error, kind provider.Kind, status int) *provider.Error {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a provider *provider.Error", err, err)
	}
	if pe.Kind != kind || pe.Status != status {
		t.Fatalf("error %v: got kind %s status %d, want kind %s status %d", err, pe.Kind, pe.Status, kind, status)
	}
	return pe
}
