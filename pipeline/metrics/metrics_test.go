package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gantry/pipeline/trace"
)

// scrape returns the exposition text the handler serves.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return string(b)
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l+"\n") {
			t.Errorf("exposition lacks %q", l)
		}
	}
	if t.Failed() {
		t.Fatalf("exposition:\n%s", body)
	}
}

func TestObserveCallExposition(t *testing.T) {
	m := New()
	m.ObserveCall(&Call{
		Feature: "support-answer", Release: "support-answer@v2", Model: "gpt-4o-mini", Provider: "openai",
		HTTPStatus: 200, Total: 1500 * time.Millisecond, Upstream: 1499 * time.Millisecond, TTFT: 300 * time.Millisecond,
		InputTokens: 120, OutputTokens: 40, CostUSD: 0.0025, Retries: 1, Fallbacks: 1,
	})
	m.ObserveCall(&Call{
		Feature: "support-answer", Release: "support-answer@v2", Model: "gpt-4o-mini", Provider: "openai",
		HTTPStatus: 502, ErrorReason: "upstream_timeout", Total: 30 * time.Second, Upstream: 30 * time.Second,
	})
	m.ObserveCall(&Call{Feature: "summarise", HTTPStatus: 429, Total: time.Millisecond})
	body := scrape(t, m)
	wantLines(t, body,
		`gantry_requests_total{code="2xx",feature="support-answer",model="gpt-4o-mini",release="support-answer@v2"} 1`,
		`gantry_requests_total{code="5xx",feature="support-answer",model="gpt-4o-mini",release="support-answer@v2"} 1`,
		`gantry_requests_total{code="4xx",feature="summarise",model="none",release="none"} 1`,
		`gantry_request_duration_seconds_bucket{feature="support-answer",model="gpt-4o-mini",le="2.5"} 1`,
		`gantry_request_duration_seconds_bucket{feature="support-answer",model="gpt-4o-mini",le="30"} 2`,
		`gantry_request_duration_seconds_count{feature="support-answer",model="gpt-4o-mini"} 2`,
		`gantry_upstream_duration_seconds_count{model="gpt-4o-mini",provider="openai"} 2`,
		`gantry_gateway_overhead_seconds_bucket{feature="support-answer",le="0.001"} 2`,
		`gantry_gateway_overhead_seconds_bucket{feature="support-answer",le="0.0005"} 1`,
		`gantry_time_to_first_token_seconds_count{model="gpt-4o-mini"} 1`,
		`gantry_tokens_total{direction="input",model="gpt-4o-mini"} 120`,
		`gantry_tokens_total{direction="output",model="gpt-4o-mini"} 40`,
		`gantry_cost_usd_total{feature="support-answer",model="gpt-4o-mini"} 0.0025`,
		`gantry_errors_total{feature="support-answer",reason="upstream_timeout"} 1`,
		`gantry_errors_total{feature="summarise",reason="http_429"} 1`,
		`gantry_fallbacks_total{feature="support-answer"} 1`,
		`gantry_retries_total{feature="support-answer"} 1`,
	)
	if strings.Contains(body, `gantry_errors_total{feature="support-answer",reason="http_200"}`) {
		t.Fatal("a successful call counted as an error")
	}
}

func TestObserveTrace(t *testing.T) {
	m := New()
	m.ObserveTrace(&trace.Trace{
		ID: "4bf92f3577b34da6a3ce929d0e0e4736", User: "user-123", Feature: "classify", Release: "classify@v1",
		Model: "claude-haiku", Provider: "anthropic", Status: "error", HTTPStatus: 503, ErrorCode: "all_targets_failed",
		Duration: 2000, Upstream: 1900, Fallbacks: 1,
		Attempts: []trace.Attempt{
			{Model: "gpt-4o-mini", Provider: "openai", Status: "timeout"},
			{Model: "gpt-4o-mini", Provider: "openai", Status: "status"},
			{Model: "claude-haiku", Provider: "anthropic", Status: "status"},
		},
	})
	body := scrape(t, m)
	wantLines(t, body,
		`gantry_requests_total{code="5xx",feature="classify",model="claude-haiku",release="classify@v1"} 1`,
		`gantry_errors_total{feature="classify",reason="all_targets_failed"} 1`,
		`gantry_upstream_attempts_total{model="gpt-4o-mini",outcome="timeout",provider="openai"} 1`,
		`gantry_upstream_attempts_total{model="claude-haiku",outcome="status",provider="anthropic"} 1`,
		`gantry_retries_total{feature="classify"} 1`,
		`gantry_fallbacks_total{feature="classify"} 1`,
		`gantry_request_duration_seconds_sum{feature="classify",model="claude-haiku"} 2`,
	)
	// 2000 ms in all, 1900 upstream, 99.5 waiting between retries: the
	// gateway's own time is half a millisecond.
	m2 := New()
	m2.ObserveTrace(&trace.Trace{Feature: "classify", Model: "m", Status: "ok", HTTPStatus: 200, Duration: 2000, Upstream: 1900,
		Attempts: []trace.Attempt{{Model: "m", Status: "http_500"}, {Model: "m", Status: "http_500", Backoff: 49.5}, {Model: "m", Status: "ok", Backoff: 50}}})
	wantLines(t, scrape(t, m2),
		`gantry_gateway_overhead_seconds_bucket{feature="classify",le="0.00025"} 0`,
		`gantry_gateway_overhead_seconds_bucket{feature="classify",le="0.0005"} 1`,
	)
	for _, leak := range []string{"user-123", "4bf92f3577b34da6a3ce929d0e0e4736"} {
		if strings.Contains(body, leak) {
			t.Fatalf("exposition carries %q", leak)
		}
	}
}

func TestOtherMetrics(t *testing.T) {
	m := New()
	m.ValidationFailure("classify", "classify@v1", "schema")
	m.ValidationFailure("classify", "classify@v1", "schema")
	m.CacheLookup("summarise", true)
	m.CacheLookup("summarise", false)
	m.CacheLookup("summarise", false)
	m.SetBreaker("openai/gpt-4o-mini", BreakerOpen)
	m.SetBreaker("anthropic/claude-haiku", BreakerHalfOpen)
	m.SetBreaker("anthropic/claude-haiku", BreakerClosed)
	m.TraceDropped()
	m.TraceDropped()
	body := scrape(t, m)
	wantLines(t, body,
		`gantry_validation_failures_total{feature="classify",reason="schema",release="classify@v1"} 2`,
		`gantry_cache_requests_total{feature="summarise",result="hit"} 1`,
		`gantry_cache_requests_total{feature="summarise",result="miss"} 2`,
		`gantry_circuit_breaker_state{target="openai/gpt-4o-mini"} 2`,
		`gantry_circuit_breaker_state{target="anthropic/claude-haiku"} 0`,
		`gantry_traces_dropped_total 2`,
	)
	if !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Fatal("runtime and process collectors missing")
	}
}

func TestWatchStoreAndRecorder(t *testing.T) {
	m := New()
	s, err := trace.Open("", trace.Limits{MaxCount: 2, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := m.WatchStore(s); err != nil {
		t.Fatalf("WatchStore: %v", err)
	}
	if err := m.WatchStore(s); err == nil {
		t.Fatal("second WatchStore: want an error")
	}
	r := trace.NewRecorder(s, 16, m.TraceDropped)
	defer r.Close(t.Context())
	if err := m.WatchRecorder(r); err != nil {
		t.Fatalf("WatchRecorder: %v", err)
	}
	feed, cancel := s.Subscribe(1)
	defer cancel()
	for i := range 3 {
		s.Add(&trace.Trace{ID: fmt.Sprintf("%032x", i+1), Status: "ok"})
	}
	<-feed
	body := scrape(t, m)
	wantLines(t, body,
		`gantry_trace_store_traces 2`,
		`gantry_trace_store_max_traces 2`,
		`gantry_trace_store_evicted_total 1`,
		`gantry_trace_feed_dropped_total 2`,
		`gantry_trace_feed_subscribers 1`,
		`gantry_trace_queue_capacity 16`,
		`gantry_trace_queue_length 0`,
	)
	if !strings.Contains(body, "\ngantry_trace_store_bytes ") {
		t.Fatal("store bytes gauge missing")
	}
}

func TestLabelBounds(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", None},
		{"gpt-4o", "gpt-4o"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{strings.Repeat("é", 100), strings.Repeat("é", maxLabel/2)},
	}
	for _, tt := range tests {
		if got := label(tt.in); got != tt.want {
			t.Fatalf("label(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}

	m := New()
	for i := range MaxSeries + 50 {
		m.ValidationFailure(fmt.Sprintf("f%d", i), "r", "schema")
	}
	body := scrape(t, m)
	wantLines(t, body, `gantry_validation_failures_total{feature="other",reason="other",release="other"} 50`)
	if n := strings.Count(body, "gantry_validation_failures_total{"); n != MaxSeries+1 {
		t.Fatalf("validation series: got %d, want %d", n, MaxSeries+1)
	}
}

func BenchmarkObserveCall(b *testing.B) {
	m := New()
	features := []string{"support-answer", "summarise", "classify", "extract"}
	calls := make([]Call, 16)
	for i := range calls {
		calls[i] = Call{Feature: features[i%4], Release: features[i%4] + "@v1", Model: "gpt-4o-mini", Provider: "openai",
			HTTPStatus: 200, Total: 800 * time.Millisecond, Upstream: 795 * time.Millisecond, TTFT: 200 * time.Millisecond,
			InputTokens: 300, OutputTokens: 120, CostUSD: 0.0004}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.ObserveCall(&calls[i%len(calls)])
			i++
		}
	})
}

func BenchmarkObserveTrace(b *testing.B) {
	m := New()
	t := &trace.Trace{Feature: "support-answer", Release: "support-answer@v1", Model: "gpt-4o-mini", Provider: "openai",
		Requested: "feature/support-answer", Route: "support-answer", Status: "ok", HTTPStatus: 200, Duration: 800, Upstream: 795, InputTokens: 300, OutputTokens: 120, CostUSD: 0.0004,
		Attempts: []trace.Attempt{{Model: "gpt-4o-mini", Provider: "openai", Status: "ok"}}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveTrace(t)
		}
	})
}
