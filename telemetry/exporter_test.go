package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"gantry/pipeline/trace"
)

// collector keeps what a real OTLP receiver got, by either protocol.
type collector struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	metrics []*metricpb.Metric
	service string

	coltracepb.UnimplementedTraceServiceServer
	colmetricpb.UnimplementedMetricsServiceServer
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.addSpans(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) addSpans(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				c.service = a.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
}

func (c *collector) addMetrics(req *colmetricpb.ExportMetricsServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			c.metrics = append(c.metrics, sm.Metrics...)
		}
	}
}

// metricsServer adapts the collector to the metrics service, whose
// method has the same name as the trace service's.
type metricsServer struct{ *collector }

func (m metricsServer) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	m.addMetrics(req)
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// httpCollector serves OTLP/HTTP with protobuf bodies, as a collector
// does on :4318.
func httpCollector(t *testing.T, c *collector, hold <-chan struct{}) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		if hold != nil {
			<-hold
		}
		var req coltracepb.ExportTraceServiceRequest
		if !decode(t, w, r, &req) {
			return
		}
		c.addSpans(&req)
		writeProto(w, &coltracepb.ExportTraceServiceResponse{})
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		var req colmetricpb.ExportMetricsServiceRequest
		if !decode(t, w, r, &req) {
			return
		}
		c.addMetrics(&req)
		writeProto(w, &colmetricpb.ExportMetricsServiceResponse{})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func decode(t *testing.T, w http.ResponseWriter, r *http.Request, m proto.Message) bool {
	b, err := io.ReadAll(r.Body)
	if err == nil {
		err = proto.Unmarshal(b, m)
	}
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("collector got %s body: %v", r.Header.Get("Content-Type"), err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return false
	}
	return true
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	b, _ := proto.Marshal(m)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(b)
}

func grpcCollector(t *testing.T, c *collector) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	colmetricpb.RegisterMetricsServiceServer(srv, metricsServer{c})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

func TestExportToARealReceiver(t *testing.T) {
	for _, proto := range []string{ProtocolHTTP, ProtocolGRPC} {
		t.Run(proto, func(t *testing.T) {
			clearEnv(t)
			c := &collector{}
			endpoint := grpcCollector(t, c)
			if proto == ProtocolHTTP {
				endpoint = httpCollector(t, c, nil)
			}
			reg := prometheus.NewRegistry()
			e, err := New(t.Context(), Config{Endpoint: endpoint, Protocol: proto, ServiceName: "gantry-test", Node: "agent-1"}, reg)
			if err != nil || e == nil {
				t.Fatalf("New: %v %v", e, err)
			}
			tr := sampleTrace()
			e.Record(tr)
			failed := sampleTrace()
			failed.ID, failed.TraceID, failed.SpanID, failed.Status, failed.ErrorCode = "req-failed", "0af7651916cd43dd8448eb211c80319c", "", "error", "rate_limited"
			e.Record(failed)
			if err := e.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if want := 2 * (1 + len(tr.Spans) + len(tr.Attempts)); len(c.spans) != want {
				t.Fatalf("receiver got %d spans, want %d", len(c.spans), want)
			}
			if c.service != "gantry-test" {
				t.Fatalf("service.name %q", c.service)
			}
			var call *tracepb.Span
			for _, s := range c.spans {
				if s.Name == "chat feature/support-answer" && trace.TraceID(s.TraceId).String() == tr.TraceID {
					call = s
				}
			}
			if call == nil {
				t.Fatal("the call span did not arrive")
			}
			if got := trace.SpanID(call.ParentSpanId).String(); got != tr.ParentID {
				t.Fatalf("parent %s, want the caller's %s", got, tr.ParentID)
			}
			found := map[string]bool{}
			for _, m := range c.metrics {
				found[m.Name] = true
				if m.Name == "gen_ai.client.operation.duration" {
					var total uint64
					for _, dp := range m.GetHistogram().DataPoints {
						total += dp.Count
					}
					if total != 2 {
						t.Fatalf("operation duration counted %d calls, want 2", total)
					}
				}
			}
			for _, name := range []string{"gen_ai.client.operation.duration", "gen_ai.client.token.usage",
				"gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token"} {
				if !found[name] {
					t.Errorf("metric %s did not arrive; got %v", name, found)
				}
			}
			if n := testutil.ToFloat64(e.dropped); n != 0 {
				t.Fatalf("%v calls dropped", n)
			}
		})
	}
}

// A collector that does not answer never holds up a call: the queue fills,
// further calls are dropped and counted.
func TestFullQueueDropsAndCounts(t *testing.T) {
	clearEnv(t)
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "1")
	t.Setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
	hold := make(chan struct{})
	c := &collector{}
	reg := prometheus.NewRegistry()
	e, err := New(t.Context(), Config{Endpoint: httpCollector(t, c, hold), Queue: 2, NoMetrics: true}, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	const calls = 50
	for range calls {
		e.Record(sampleTrace()) // each makes 10 spans, more than the batch queue holds
	}
	// The goroutine took at most one call before the stalled export
	// stopped it; the queue holds two.
	if n := testutil.ToFloat64(e.dropped); n < calls-3 {
		t.Fatalf("%v calls dropped, want at least %d", n, calls-3)
	}
	if n, err := testutil.GatherAndCount(reg, DroppedSeries, QueueSeries); err != nil || n != 2 {
		t.Fatalf("exporter series: %d, %v", n, err)
	}
	close(hold)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// An unreachable collector costs failed exports, counted.
func TestUnreachableCollectorCounted(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	e, err := New(t.Context(), Config{Endpoint: "http://" + addr, Timeout: 500 * time.Millisecond, NoMetrics: true}, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.Record(sampleTrace())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	e.Shutdown(ctx)
	if n := testutil.ToFloat64(e.failed); n < 1 {
		t.Fatalf("failed exports %v, want at least 1", n)
	}
}

func TestNothingConfiguredIsNil(t *testing.T) {
	clearEnv(t)
	e, err := New(t.Context(), Config{}, prometheus.NewRegistry())
	if err != nil || e != nil {
		t.Fatalf("New with nothing set: %v, %v; want nil, nil", e, err)
	}
	e.Record(sampleTrace()) // a nil exporter takes calls and does nothing
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Record's cost on the request path: a queue send while the queue has
// room (it is sized to the run here, so nothing is dropped).
func BenchmarkRecord(b *testing.B) {
	srv := discardingCollector(b)
	tr := sampleTrace()
	e, err := New(context.Background(), Config{Endpoint: srv, Queue: b.N + 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		// Exporting the lot would take long; what is queued is dropped.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		e.Shutdown(ctx)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e.Record(tr)
	}
	b.StopTimer()
}

// The export path's cost for one call: its GenAI metrics, its ten spans
// through the batch processor, OTLP/HTTP encoding and a loopback
// collector in the same process. Its inverse bounds the calls a second
// the exporter keeps up with before it drops.
func BenchmarkExportWork(b *testing.B) {
	srv := discardingCollector(b)
	e, err := New(context.Background(), Config{Endpoint: srv, Queue: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	tr := sampleTrace()
	b.ReportAllocs()
	for b.Loop() {
		e.record(tr)
		emit(e.tracer, tr, false)
	}
}

func discardingCollector(b *testing.B) string {
	for _, v := range []string{envEndpoint, envTracesEndpoint, envMetricsEndpoint, envProtocol, envDisabled, envTracesExporter, envMetricsExporter} {
		b.Setenv(v, "")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		writeProto(w, &coltracepb.ExportTraceServiceResponse{})
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}
