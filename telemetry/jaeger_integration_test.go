//go:build integration

package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	bin := os.Getenv("GANTRY_JAEGER")
	if bin == "" {
		t.Fatal("GANTRY_JAEGER is not set: build Jaeger with `go build -C tools -o bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger` and set GANTRY_JAEGER=$PWD/bin/jaeger (.ci/run does both)")
	}
	clearEnv(t)
	httpAddr, grpcAddr, queryAddr, queryGRPC := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfgPath, []byte(jaegerConfig(httpAddr, grpcAddr, queryAddr, queryGRPC)), 0o600); err != nil {
		t.Fatal(err)
	}
	startJaeger(t, bin, cfgPath)
	query := "http://" + queryAddr
	waitOK(t, query+"/api/services", 60*time.Second)

	for _, tc := range []struct{ protocol, endpoint string }{
		{ProtocolHTTP, "http://" + httpAddr},
		{ProtocolGRPC, "http://" + grpcAddr},
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
			spans := jaegerTrace(t, query, c.TraceID.String(), 1+7+1)

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
			tags := root.tags()
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
			var route, attempt *jaegerSpan
			for _, s := range spans {
				switch {
				case s.OperationName == "gantry.route":
					route = s
				case s.tags()["span.kind"] == "client":
					attempt = s
				}
			}
			if route == nil || attempt == nil {
				t.Fatalf("no route stage or attempt span among %d spans", len(spans))
			}
			if route.parent() != root.SpanID || attempt.parent() != route.SpanID {
				t.Fatal("stage span not under the call span, or attempt span not under the route stage")
			}
			if got := attempt.tags()["gen_ai.request.model"]; got != tags["gen_ai.response.model"] {
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

func jaegerConfig(httpAddr, grpcAddr, queryAddr, queryGRPC string) string {
	return fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    traces:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 1000
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: %q
    grpc:
      endpoint: %q
receivers:
  otlp:
    protocols:
      http:
        endpoint: %q
      grpc:
        endpoint: %q
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
`, queryAddr, queryGRPC, httpAddr, grpcAddr)
}

type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

func (s *jaegerSpan) tags() map[string]string {
	m := map[string]string{}
	for _, kv := range s.Tags {
		m[kv.Key] = fmt.Sprint(kv.Value)
	}
	return m
}

func (s *jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// jaegerTrace polls Jaeger's query API until the trace holds want spans.
func jaegerTrace(t *testing.T, query, id string, want int) map[string]*jaegerSpan {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		resp, err := http.Get(query + "/api/traces/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Data []struct {
				Spans []*jaegerSpan `json:"spans"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK && len(r.Data) == 1 {
			got = len(r.Data[0].Spans)
			if got >= want {
				m := make(map[string]*jaegerSpan, got)
				for _, s := range r.Data[0].Spans {
					m[s.SpanID] = s
				}
				return m
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("Jaeger holds %d spans of trace %s after 30s, want %d", got, id, want)
	return nil
}

func startJaeger(t *testing.T, bin, cfg string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config", "file:"+cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jaeger: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			s := out.String()
			if len(s) > 4000 {
				s = "…" + s[len(s)-4000:]
			}
			t.Logf("jaeger output:\n%s", s)
		}
	})
}

func waitOK(t *testing.T, u string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not ready after %v (last error %v)", u, within, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
