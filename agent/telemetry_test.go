package agent

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"gantry/telemetry"
)

// otlpReceiver keeps what an OTLP/HTTP receiver got.
type otlpReceiver struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	metrics map[string]bool
}

func (o *otlpReceiver) serve(t *testing.T) string {
	mux := http.NewServeMux()
	read := func(w http.ResponseWriter, r *http.Request, m proto.Message) bool {
		b, err := io.ReadAll(r.Body)
		if err == nil {
			err = proto.Unmarshal(b, m)
		}
		if err != nil {
			t.Errorf("receiver: %s body: %v", r.URL.Path, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		return true
	}
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		var req coltracepb.ExportTraceServiceRequest
		if !read(w, r, &req) {
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				o.spans = append(o.spans, ss.Spans...)
			}
		}
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Write(b)
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		var req colmetricpb.ExportMetricsServiceRequest
		if !read(w, r, &req) {
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					o.metrics[m.Name] = true
				}
			}
		}
		b, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
		w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// An agent started with an OTLP endpoint exports each call it serves: the
// call's span, child of the span the caller named in traceparent, reaches
// the collector by the time the agent has stopped, with the GenAI metrics.
// The SDK batches spans for 5 s; only the stop's flush sends this one.
func TestAgentExportsCallsOverOTLP(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		t.Setenv(v, "")
	}
	rcv := &otlpReceiver{metrics: map[string]bool{}}
	endpoint := rcv.serve(t)
	ready := make(chan string, 1)
	opts := Options{Dev: true, DevKey: devKey, DevAdminToken: devAdmin, HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), NodeID: "a1",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard, Ready: func(addr string) { ready <- addr },
		Telemetry: telemetry.Config{Endpoint: endpoint, Protocol: telemetry.ProtocolHTTP}, Version: "v0.0.0-otlp-test"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	}

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("POST", base+"/v1/features/ticket-triage/invoke", strings.NewReader(`{"vars":{"ticket":"My parcel never arrived"}}`))
		req.Header.Set("Authorization", "Bearer "+devKey)
		req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoke answered %s for 20s", resp.Status)
		}
		time.Sleep(100 * time.Millisecond) // not serving yet, or a simulated fault
	}

	// The operator sees the export's own health and the build beside the
	// agent's series.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\ngantry_otlp_calls_dropped_total 0\n", "\ngantry_otlp_queue_length ", `version="v0.0.0-otlp-test"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop within 30s")
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var call *tracepb.Span
	for _, s := range rcv.spans {
		if hex.EncodeToString(s.TraceId) == traceID && hex.EncodeToString(s.ParentSpanId) == callerSpan {
			call = s
		}
	}
	if call == nil {
		t.Fatalf("the collector got %d spans, none a child of the caller's span %s", len(rcv.spans), callerSpan)
	}
	attrs := map[string]string{}
	for _, kv := range call.Attributes {
		attrs[kv.Key] = kv.Value.GetStringValue()
	}
	if call.Name != "chat feature/ticket-triage" || attrs["gen_ai.operation.name"] != "chat" || attrs["gantry.feature"] != "ticket-triage" ||
		attrs["gen_ai.provider.name"] != "sim" {
		t.Fatalf("call span %q with attributes %v", call.Name, attrs)
	}
	for _, m := range []string{"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} {
		if !rcv.metrics[m] {
			t.Errorf("the collector got no %s (got %v)", m, rcv.metrics)
		}
	}
}
