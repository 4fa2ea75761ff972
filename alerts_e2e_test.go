package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
)

// alertsConfig serves the feature "answer" from a model whose provider
// fails every call, with a healthy fallback: callers keep getting answers
// while the failing model's circuit opens.
func alertsConfig() string {
	return `providers:
  - name: sim
    kind: sim
    sim: {latency_p50: 2ms, latency_p99: 10ms, output_tokens: 12, seed: 3}
  - name: sim-broken
    kind: sim
    sim: {latency_p50: 2ms, latency_p99: 10ms, error_rate: 1, seed: 4}
models:
  - name: sim-small
    provider: sim
    price: {input: 0.15, output: 0.60}
  - name: sim-broken
    provider: sim-broken
    price: {input: 0.15, output: 0.60}
routes:
  - name: flaky
    targets: [{model: sim-broken, weight: 1}]
    fallbacks: [sim-small]
    retry: {attempts: 1}
    breaker: {failures: 3, cooldown: 60s}
features:
  - name: answer
    releases:
      - version: 1
        system: Answer briefly.
        template: [{role: user, content: "{{question}}"}]
        variables: [{name: question, required: true}]
        route: flaky
    labels: {production: 1}
keys:
  - name: e2e
    hash: ` + config.HashKey(clusterKey) + `
`
}

// TestFailingModelAlertsWithinSeconds: three agents serve a feature whose
// model starts failing every call. Callers keep their answers (the
// fallback serves them); within 10 s GET /admin/v1/alerts on the agent
// that saw the failures names the model's open circuit, critical and
// first, with a link whose filter lists the failed calls. Then a member
// stops, and the others alert that it is unreachable within 10 s.
func TestFailingModelAlertsWithinSeconds(t *testing.T) {
	c := startClusterWith(t, alertsConfig())
	c.waitConverged(60 * time.Second)
	n1 := c.agents[0]
	// Once the cluster has formed, nothing is critical.
	c.waitFor("no critical alert on n1 once the cluster formed", 10*time.Second, func() bool {
		var out api.Alerts
		if _, err := c.call(n1, "GET", api.PathAlerts, nil, &out); err != nil {
			t.Fatal(err)
		}
		return len(out.Alerts) == 0 || out.Alerts[0].Severity != api.SeverityCritical
	})

	start := time.Now()
	var got api.Alert
	c.waitFor("the open circuit of sim-broken in n1's alerts", 10*time.Second, func() bool {
		if err := c.chat(n1); err != nil {
			t.Fatalf("a caller lost its answer while the model failed: %v", err)
		}
		var out api.Alerts
		if _, err := c.call(n1, "GET", api.PathAlerts, nil, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Alerts) > 0 && out.Alerts[0].ID == "breaker_open/model/sim-broken" {
			got = out.Alerts[0]
			return true
		}
		return false
	})
	t.Logf("breaker alert after %s", time.Since(start).Round(time.Millisecond))
	if got.Severity != api.SeverityCritical || got.Node != "n1" || got.Since.Before(start.Add(-time.Second)) {
		t.Fatalf("alert %+v: want critical, from n1, begun after the failures began", got)
	}
	view, filter, _ := strings.Cut(got.Link, "?")
	q, err := url.ParseQuery(filter)
	if view != "traces" || err != nil || q.Get("model") != "sim-broken" {
		t.Fatalf("link %q: want the traces of sim-broken", got.Link)
	}
	var list api.TraceList
	if _, err := c.call(n1, "GET", api.PathTraces+"?"+filter, nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Traces) < 3 {
		t.Fatalf("the alert's link lists %d calls, want the 3 or more that failed on sim-broken", len(list.Traces))
	}

	n3 := c.agents[2]
	n3.stop(t)
	down := time.Now()
	c.waitFor("n3 unreachable in n1's alerts", 10*time.Second, func() bool {
		var out api.Alerts
		if _, err := c.call(n1, "GET", api.PathAlerts, nil, &out); err != nil {
			return false
		}
		for _, a := range out.Alerts {
			if a.ID == "member_down/member/n3" && a.Severity == api.SeverityCritical {
				return true
			}
		}
		return false
	})
	t.Logf("member alert after %s", time.Since(down).Round(time.Millisecond))
}
