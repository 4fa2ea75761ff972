//go:build integration

package telemetry

import (
	"gantry/internal/jaegertest"

	"net/http"
	"os"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/tokens"
	"gantry/pipeline/trace"
)

// TestSpansReachJaeger sends a feature call through the real pipeline and
// the sim provider, exports it with a real exporter to a real Jaeger
// (all-in-one, OTLP receivers on loopback), and reads it back through
// Jaeger's query API: the call span carries the GenAI attributes and the
// caller's span as parent, and the stage and attempt spans hang under it.
// Jaeger takes traces only, so metrics are off here (exporter_test.go
// sends them to a real OTLP receiver). It builds only with -tags integration; GANTRY_JAEGER names the jaeger
// binary, which .ci/run builds from the tools module.
func TestSpansReachJaeger(t *testing.T) {
	clearEnv(t)
	j := jaegertest.Start(t)

	for _, tc := range []struct{ protocol, endpoint string }{
		{ProtocolHTTP, "http://" + j.OTLPHTTP},
		{ProtocolGRPC, "http://" + j.OTLPGRPC},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			e, err := New(t.Context(), Config{Endpoint: tc.endpoint, Protocol: tc.protocol, Node: "agent-1", Version: "test",
				NoMetrics: true}, nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			g := simGateway(t, e.Record)
			caller := trace.NewSpanID()
			c := &pipeline.Call{ID: "it-" + tc.protocol, TraceID: trace.NewTraceID(), ParentID: caller, SpanID: trace.NewSpanID(),
				Received: time.Now(), Entry: pipeline.EntryInvoke, Secret: simKey,
				Req:  &chat.Request{Model: pipeline.FeaturePrefix + "support-answer"},
				Vars: map[string]any{"customer": "Ana", "question": "Where is my order?"}, Journey: "checkout"}
			if err := g.Serve(t.Context(), c); err != nil {
				t.Fatalf("serve: %v", err)
			}
			if err := e.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			spans := map[string]*jaegertest.Span{}
			for _, s := range j.Spans(t, c.TraceID.String(), 1+7+1) {
				spans[s.SpanID] = s
			}
			root, ok := spans[c.SpanID.String()]
			if !ok {
				t.Fatalf("no span with the id the response's traceparent names (%s)", c.SpanID)
			}
			if root.OperationName != "chat feature/support-answer" {
				t.Fatalf("call span named %q", root.OperationName)
			}
			if len(root.References) != 1 || root.References[0].RefType != "CHILD_OF" || root.References[0].SpanID != caller.String() {
				t.Fatalf("call span references %+v, want CHILD_OF the caller's span %s", root.References, caller)
			}
			tags := root.Attrs()
			for k, want := range map[string]string{
				"gen_ai.operation.name": "chat", "gen_ai.provider.name": "sim", "gen_ai.request.model": "feature/support-answer",
				"gantry.feature": "support-answer", "gantry.journey": "checkout", "span.kind": "server",
			} {
				if got := tags[k]; got != want {
					t.Errorf("tag %s = %q, want %q", k, got, want)
				}
			}
			for _, k := range []string{"gen_ai.response.model", "gen_ai.response.id", "gen_ai.usage.input_tokens",
				"gen_ai.usage.output_tokens", "gen_ai.request.temperature", "gen_ai.request.max_tokens", "gantry.release.id",
				"gantry.release.hash", "gantry.label", "gantry.cost_usd"} {
				if tags[k] == "" {
					t.Errorf("tag %s missing", k)
				}
			}
			if t.Failed() {
				t.FailNow()
			}
			var route, attempt *jaegertest.Span
			for _, s := range spans {
				switch {
				case s.OperationName == "gantry.route":
					route = s
				case s.Attrs()["span.kind"] == "client":
					attempt = s
				}
			}
			if route == nil || attempt == nil {
				t.Fatalf("no route stage or attempt span among %d spans", len(spans))
			}
			if route.Parent() != root.SpanID || attempt.Parent() != route.SpanID {
				t.Fatal("stage span not under the call span, or attempt span not under the route stage")
			}
			if got := attempt.Attrs()["gen_ai.request.model"]; got != tags["gen_ai.response.model"] {
				t.Fatalf("attempt asked model %q, call answered by %q", got, tags["gen_ai.response.model"])
			}
		})
	}
}

const simKey = "gk_jaeger-test-key"

// simGateway serves the example configuration with a simulator that never
// fails, so the call has one attempt.
func simGateway(t *testing.T, record func(*trace.Trace)) *pipeline.Gateway {
	t.Helper()
	cfg := config.Example()
	for i := range cfg.Providers {
		if s := cfg.Providers[i].Sim; s != nil {
			s.ErrorRate, s.RateLimitRate, s.TimeoutRate, s.CutRate = 0, 0, 0, 0
		}
	}
	cfg.Keys = append(cfg.Keys, config.Key{Name: "jaeger-test", Team: "qa", Hash: config.HashKey(simKey)})
	set := pipeline.NewProviderSet(func(p config.Provider) (provider.Provider, error) {
		return provider.New(p, os.Getenv, http.DefaultClient)
	})
	snap, err := pipeline.Compile(cfg, set)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	g := pipeline.NewGateway(pipeline.Deps{Record: record, Node: "agent-1", Counter: tokens.Counter{}})
	g.Swap(snap)
	return g
}
