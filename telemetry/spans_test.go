package telemetry

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"

	"gantry/pipeline/trace"
)

// sampleTrace is a streamed feature call that fell back once, as the
// gateway records it.
func sampleTrace() *trace.Trace {
	temp, topP := 0.2, 0.9
	return &trace.Trace{
		ID: "req-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentID: "b7ad6b7169203331",
		RequestID: "req-1", Start: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC), Duration: 1200, Node: "agent-1",
		Entry: "invoke", Feature: "support-answer", Release: "support-answer@v3", ReleaseHash: "sha256:abc", Label: "canary",
		Journey: "checkout", User: "user-42", Key: "web", Team: "support",
		Requested: "feature/support-answer", Route: "support-answer", Model: "gpt-4o-mini", Provider: "openai", Stream: true,
		Params: &trace.Params{MaxTokens: 256, Temperature: &temp, TopP: &topP}, ResponseID: "chatcmpl-req-1", FinishReasons: []string{"stop"},
		Status: "ok", HTTPStatus: 200, InputTokens: 320, OutputTokens: 41, CostUSD: 0.00012, TTFT: 400, Upstream: 1100, Fallbacks: 1,
		Attempts: []trace.Attempt{
			{Model: "gpt-4o", Provider: "openai", Offset: 50, Duration: 100, Status: "http_503", Error: "upstream said 503"},
			{Model: "gpt-4o-mini", Provider: "openai", Offset: 170, Duration: 1000, Status: "ok", Backoff: 20},
		},
		Spans: []trace.Span{
			{Name: "authenticate", Offset: 0, Duration: 1}, {Name: "resolve", Offset: 1, Duration: 1},
			{Name: "context", Offset: 2, Duration: 20}, {Name: "prompt", Offset: 22, Duration: 3},
			{Name: "policy", Offset: 25, Duration: 5}, {Name: "route", Offset: 30, Duration: 1150},
			{Name: "validate", Offset: 1180, Duration: 20, Error: "schema: /answer is required"},
		},
		Validation: []string{"/answer: required"},
		Policy:     []trace.Decision{{Rule: "pii.email", Action: "redact"}},
		Sources:    []trace.Source{{Document: "refunds.md", Chunk: "3"}},
		Input:      "system: be brief\nuser: where is my refund?\nit has been a week\n",
		Output:     `{"answer":"on its way"}`,
	}
}

func emitOne(t *testing.T, tr *trace.Trace, capture bool) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(idGenerator{}))
	defer tp.Shutdown(context.Background()) // clears the exporter: read it first
	emit(tp.Tracer(scope), tr, capture)
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range exp.GetSpans().Snapshots() {
		if _, dup := byName[s.Name()]; dup {
			t.Fatalf("two spans named %q", s.Name())
		}
		byName[s.Name()] = s
	}
	return byName
}

func attrs(s sdktrace.ReadOnlySpan) map[string]attribute.Value {
	m := map[string]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value
	}
	return m
}

func TestSpansOfACall(t *testing.T) {
	tr := sampleTrace()
	spans := emitOne(t, tr, false)
	if len(spans) != 1+len(tr.Spans)+len(tr.Attempts) {
		t.Fatalf("%d spans, want the call, %d stages and %d attempts", len(spans), len(tr.Spans), len(tr.Attempts))
	}
	root, ok := spans["chat feature/support-answer"]
	if !ok {
		t.Fatalf("no span named {operation} {request model}; got %v", keys(spans))
	}
	sc := root.SpanContext()
	if sc.TraceID().String() != tr.TraceID || sc.SpanID().String() != tr.SpanID {
		t.Fatalf("call span ids %s/%s, want the trace's %s/%s", sc.TraceID(), sc.SpanID(), tr.TraceID, tr.SpanID)
	}
	if p := root.Parent(); !p.IsRemote() || p.SpanID().String() != tr.ParentID || p.TraceID().String() != tr.TraceID {
		t.Fatalf("parent %v remote %v, want the caller's span %s", p.SpanID(), p.IsRemote(), tr.ParentID)
	}
	if root.SpanKind() != oteltrace.SpanKindServer {
		t.Fatalf("call span kind %v, want server", root.SpanKind())
	}
	if !root.StartTime().Equal(tr.Start) || root.EndTime().Sub(root.StartTime()) != 1200*time.Millisecond {
		t.Fatalf("call span %v..%v, want the call's own times", root.StartTime(), root.EndTime())
	}
	a := attrs(root)
	want := map[string]string{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "feature/support-answer",
		"gen_ai.response.model": "gpt-4o-mini", "gen_ai.response.id": "chatcmpl-req-1",
		"gantry.feature": "support-answer", "gantry.release.id": "support-answer@v3", "gantry.release.hash": "sha256:abc",
		"gantry.label": "canary", "gantry.journey": "checkout", "gantry.node": "agent-1", "gantry.key.name": "web",
	}
	for k, v := range want {
		if got := a[k].Emit(); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if a["gen_ai.request.max_tokens"].AsInt64() != 256 || a["gen_ai.request.temperature"].AsFloat64() != 0.2 ||
		a["gen_ai.request.top_p"].AsFloat64() != 0.9 {
		t.Errorf("request parameters %v %v %v", a["gen_ai.request.max_tokens"], a["gen_ai.request.temperature"], a["gen_ai.request.top_p"])
	}
	if a["gen_ai.usage.input_tokens"].AsInt64() != 320 || a["gen_ai.usage.output_tokens"].AsInt64() != 41 {
		t.Errorf("usage %v/%v, want 320/41", a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"])
	}
	if got := a["gen_ai.response.finish_reasons"].AsStringSlice(); len(got) != 1 || got[0] != "stop" {
		t.Errorf("finish reasons %v", got)
	}
	if a["gantry.cost_usd"].AsFloat64() != 0.00012 || a["gantry.fallbacks"].AsInt64() != 1 {
		t.Errorf("cost %v fallbacks %v", a["gantry.cost_usd"], a["gantry.fallbacks"])
	}
	if got := a["gantry.validation.failures"].AsStringSlice(); len(got) != 1 {
		t.Errorf("validation failures %v", got)
	}
	for _, leak := range []string{"gen_ai.input.messages", "gen_ai.output.messages"} {
		if _, ok := a[leak]; ok {
			t.Errorf("%s exported without opting in", leak)
		}
	}
	for _, kv := range root.Attributes() {
		if strings.Contains(kv.Value.Emit(), "user-42") {
			t.Errorf("the end user's id left the agent in %s", kv.Key)
		}
	}
	if errs := t.Failed(); errs {
		t.FailNow()
	}

	route := spans["gantry.route"]
	if route.Parent().SpanID() != sc.SpanID() {
		t.Fatal("stage span is not a child of the call span")
	}
	if v := spans["gantry.validate"]; v.Status().Code != codes.Error {
		t.Fatalf("failed stage status %v, want error", v.Status())
	}
	failed, ok := spans["chat gpt-4o"]
	if !ok {
		t.Fatalf("no span for the failed attempt; got %v", keys(spans))
	}
	if failed.Parent().SpanID() != route.SpanContext().SpanID() || failed.SpanKind() != oteltrace.SpanKindClient {
		t.Fatal("attempt span is not a client span under the route stage")
	}
	fa := attrs(failed)
	if fa["error.type"].AsString() != "http_503" || fa["gen_ai.request.model"].AsString() != "gpt-4o" || failed.Status().Code != codes.Error {
		t.Fatalf("failed attempt: error.type %v model %v status %v", fa["error.type"], fa["gen_ai.request.model"], failed.Status())
	}
	if want := tr.Start.Add(50 * time.Millisecond); !failed.StartTime().Equal(want) {
		t.Fatalf("attempt starts %v, want %v", failed.StartTime(), want)
	}
	if _, ok := attrs(spans["chat gpt-4o-mini"])["gen_ai.usage.input_tokens"]; ok {
		t.Fatal("usage repeated on the attempt: a backend summing spans would count it twice")
	}
}

func TestSpansWithoutCaller(t *testing.T) {
	tr := sampleTrace()
	tr.ParentID, tr.SpanID = "", ""
	tr.Status, tr.HTTPStatus, tr.ErrorCode, tr.Error = "error", 429, "budget_exceeded", "budget support-monthly is spent"
	root := emitOne(t, tr, false)["chat feature/support-answer"]
	if root.Parent().IsValid() {
		t.Fatalf("a call without traceparent has parent %v", root.Parent())
	}
	if root.SpanContext().TraceID().String() != tr.TraceID || !root.SpanContext().SpanID().IsValid() {
		t.Fatalf("ids %v, want the trace's id and a fresh span id", root.SpanContext())
	}
	if root.Status().Code != codes.Error || root.Status().Description != tr.Error {
		t.Fatalf("status %v", root.Status())
	}
	if got := attrs(root)["error.type"].AsString(); got != "budget_exceeded" {
		t.Fatalf("error.type %q", got)
	}
}

func TestContentOnlyWhenOptedIn(t *testing.T) {
	root := emitOne(t, sampleTrace(), true)["chat feature/support-answer"]
	a := attrs(root)
	var in []message
	if err := json.Unmarshal([]byte(a["gen_ai.input.messages"].AsString()), &in); err != nil {
		t.Fatalf("input messages: %v", err)
	}
	if len(in) != 2 || in[0].Role != "system" || in[1].Role != "user" || in[1].Parts[0].Content != "where is my refund?\nit has been a week" {
		t.Fatalf("input messages %+v", in)
	}
	var out []message
	if err := json.Unmarshal([]byte(a["gen_ai.output.messages"].AsString()), &out); err != nil {
		t.Fatalf("output messages: %v", err)
	}
	if len(out) != 1 || out[0].Role != "assistant" || out[0].FinishReason != "stop" || out[0].Parts[0].Content != `{"answer":"on its way"}` {
		t.Fatalf("output messages %+v", out)
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzInputMessages: whatever text a trace holds, the rebuilt messages are
// valid JSON in the conventions' shape, and text with any content gives
// at least one message.
func FuzzInputMessages(f *testing.F) {
	for _, s := range []string{"", "user: hi\n", "system: a\nuser: b\nc\n", "no role\nuser: x", "user: \n\n\n", "tool: {\"a\":1}\n\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		out := inputMessages(text)
		if out == "" {
			if strings.Trim(text, "\n") != "" {
				t.Fatalf("text %q gave no messages", text)
			}
			return
		}
		var msgs []message
		if err := json.Unmarshal([]byte(out), &msgs); err != nil {
			t.Fatalf("not JSON for %q: %v", text, err)
		}
		for _, m := range msgs {
			if len(m.Parts) != 1 || m.Parts[0].Type != "text" || m.Role == "" {
				t.Fatalf("message %+v for %q", m, text)
			}
		}
	})
}

func TestCostAttributes(t *testing.T) {
	tr := sampleTrace()
	tr.CostUSD = 0.003
	tr.Tiers = []trace.Tier{{Route: "cheap", Model: "gpt-4o-mini", CostUSD: 0.001, Escalated: "invalid"}, {Route: "premium", Model: "gpt-4o", CostUSD: 0.002}}
	tr.Compression = &trace.Compression{Strategy: "drop_oldest", TokensSaved: 420}
	tr.SemanticHit = &trace.SemanticHit{Similarity: 0.93, Source: "req-0"}
	a := attrs(emitOne(t, tr, false)["chat feature/support-answer"])
	if got := a["gantry.cascade.tiers"].AsStringSlice(); len(got) != 2 || got[0] != "cheap:gpt-4o-mini:invalid" || got[1] != "premium:gpt-4o:" {
		t.Errorf("tiers %v", got)
	}
	if a["gantry.cost_without_escalation_usd"].AsFloat64() != 0.001 || a["gantry.context.tokens_saved"].AsInt64() != 420 ||
		a["gantry.context.strategy"].AsString() != "drop_oldest" || a["gantry.semantic_cache.similarity"].AsFloat64() != 0.93 ||
		a["gantry.semantic_cache.source_trace"].AsString() != "req-0" {
		t.Errorf("cost attributes %v", a)
	}
}
