package admin

import (
	"testing"
	"time"

	"gantry/api"
	"gantry/pipeline/trace"
)

// TestComputeHealth: a model failing twice (a retry), then its fallback
// answering; its circuit opening; a refused call; and a stream.
func TestComputeHealth(t *testing.T) {
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	traces := []*trace.Trace{
		{Start: now.Add(-time.Second), Status: "ok", Duration: 900, Model: "b", Provider: "p2", Fallbacks: 1, Attempts: []trace.Attempt{
			{Model: "a", Provider: "p1", Duration: 300, Status: "http_500"},
			{Model: "a", Provider: "p1", Duration: 300, Status: "http_500"},
			{Model: "b", Provider: "p2", Duration: 200, Status: "ok"}}},
		{Start: now.Add(-2 * time.Second), Status: "ok", Duration: 100, Model: "b", Provider: "p2", Fallbacks: 1, Attempts: []trace.Attempt{
			{Model: "a", Provider: "p1", Status: "circuit_open"},
			{Model: "b", Provider: "p2", Duration: 100, Status: "ok"}}},
		{Start: now.Add(-3 * time.Second), Status: "error", HTTPStatus: 401, ErrorCode: "invalid_api_key", Duration: 1},
		{Start: now.Add(-4 * time.Second), Status: "ok", Duration: 500, TTFT: 50, Model: "a", Provider: "p1", Attempts: []trace.Attempt{
			{Model: "a", Provider: "p1", Duration: 500, Status: "ok"}}},
	}
	states := map[string]string{"a": api.BreakerOpen}
	h := computeHealth("n1", now, time.Minute, traces, map[string]string{"a": "p1", "b": "p2", "idle": "p1"},
		func(m string) string {
			if s := states[m]; s != "" {
				return s
			}
			return api.BreakerClosed
		})
	tot := h.Totals
	if tot.Calls != 4 || tot.Errors != 1 || tot.ErrorsByKind["invalid_api_key"] != 1 || tot.ErrorRate != 0.25 || tot.Retries != 1 || tot.Fallbacks != 2 {
		t.Fatalf("totals %+v", tot)
	}
	if len(h.Models) != 3 {
		t.Fatalf("models %+v, want a, b and the idle one", h.Models)
	}
	a, b, idle := h.Models[0], h.Models[1], h.Models[2]
	if a.Model != "a" || a.Breaker != api.BreakerOpen || a.Calls != 3 || a.Attempts != 3 || a.Errors != 2 ||
		a.ErrorsByKind["http_500"] != 2 || a.ErrorsByKind["circuit_open"] != 1 || a.Retries != 1 || a.Fallbacks != 2 {
		t.Fatalf("model a %+v", a)
	}
	if a.ErrorRate != 2.0/3 || a.P95 != 500 || a.TTFTP50 != 50 {
		t.Fatalf("model a rate %v p95 %v ttft %v", a.ErrorRate, a.P95, a.TTFTP50)
	}
	if b.Calls != 2 || b.Errors != 0 || b.Breaker != api.BreakerClosed || b.P50 != 100 || b.P95 != 200 {
		t.Fatalf("model b %+v", b)
	}
	if idle.Model != "idle" || idle.Calls != 0 || idle.Breaker != api.BreakerClosed {
		t.Fatalf("idle model %+v", idle)
	}
	if len(h.Providers) != 2 || h.Providers[0].Provider != "p1" || h.Providers[0].Errors != 2 || h.Providers[0].Calls != 3 {
		t.Fatalf("providers %+v", h.Providers)
	}
}
