package admin

import (
	"fmt"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
	"gantry/pipeline/trace"
)

// BenchmarkAlertsTraffic is the traffic part of one look for alerts (an
// agent takes one every AlertInterval) over a full store of 10,000 traces:
// health by model and provider, then the threshold checks.
func BenchmarkAlertsTraffic(b *testing.B) {
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	models := []string{"m-a", "m-b", "m-c", "m-d"}
	traces := make([]*trace.Trace, 10_000)
	for i := range traces {
		m := models[i%len(models)]
		t := &trace.Trace{Start: now.Add(-time.Duration(i) * 20 * time.Millisecond), Duration: trace.Millis(50 + i%400), Feature: fmt.Sprintf("f%d", i%8),
			Model: m, Provider: "p", Status: "ok", HTTPStatus: 200,
			Attempts: []trace.Attempt{{Model: m, Provider: "p", Duration: trace.Millis(40 + i%400), Status: "ok"}}}
		if i%10 == 0 {
			t.Attempts = append([]trace.Attempt{{Model: "m-e", Provider: "q", Duration: 30, Status: "http_500"}}, t.Attempts...)
		}
		traces[i] = t
	}
	th := config.Alerts{}.WithDefaults()
	cfg := map[string]string{"m-a": "p", "m-b": "p", "m-c": "p", "m-d": "p", "m-e": "q"}
	closed := func(string) string { return api.BreakerClosed }
	b.ReportAllocs()
	for b.Loop() {
		h := computeHealth("n1", now, th.Window.D(), traces, cfg, closed)
		if len(trafficAlerts(th, h, traces)) == 0 {
			b.Fatal("m-e fails every call and raised nothing")
		}
	}
}
