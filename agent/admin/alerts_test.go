package admin

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"gantry/api"
	"gantry/cluster"
	"gantry/config"
	"gantry/pipeline/trace"
)

func TestBudgetAlerts(t *testing.T) {
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	cfg := &config.Config{Budgets: []config.Budget{
		{Name: "all", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 10, SoftThreshold: 0.8},
		{Name: "each-user", Scope: config.ScopeUser, Period: config.PeriodDay, LimitUSD: 1},
	}}
	soon, later := now.Add(30*time.Minute), now.Add(5*time.Hour)
	rows := []api.Budget{
		{Name: "all", Scope: config.ScopeGlobal, Period: "day", LimitUSD: 10, SpentUSD: 8.5, BurnPerHour: 0.3, Exhausts: &later},
		{Name: "each-user", Scope: config.ScopeUser, Match: "alice", Period: "day", LimitUSD: 1, SpentUSD: 0.9, BurnPerHour: 0.2, Exhausts: &soon},
		{Name: "each-user", Scope: config.ScopeUser, Match: "bob", Period: "day", LimitUSD: 1, SpentUSD: 1},
		{Name: "each-user", Scope: config.ScopeUser, Match: "carol", Period: "day", LimitUSD: 1, SpentUSD: 0.01},
	}
	got := map[string]string{}
	for _, a := range budgetAlerts(cfg, rows, now) {
		got[a.ID] = a.Severity
		if a.Link != "budgets?name="+rowName(a.Subject) {
			t.Errorf("%s: link %q", a.ID, a.Link)
		}
	}
	want := map[string]string{
		"budget_exhausts/budget/all":                  api.SeverityWarning,  // runs out in 5h, before the day ends
		"budget_soft/budget/all":                      api.SeverityWarning,  // 85 % past 80 %
		"budget_exhausts/budget/each-user/user:alice": api.SeverityCritical, // within the hour
		"budget_exhausts/budget/each-user/user:bob":   api.SeverityCritical, // spent
	}
	if len(got) != len(want) {
		t.Fatalf("alerts %v, want %v", got, want)
	}
	for id, sev := range want {
		if got[id] != sev {
			t.Errorf("%s: %q, want %q", id, got[id], sev)
		}
	}
}

// rowName is the budget name of a subject budget/NAME[/user:U].
func rowName(subject string) string {
	s := subject[len("budget/"):]
	for i := range len(s) {
		if s[i] == '/' {
			return s[:i]
		}
	}
	return s
}

// TestAlertBook: an alert keeps its start while it lasts, starts anew
// after it cleared, a passing election does not alert, and the gauge
// counts what is shown.
func TestAlertBook(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := NewAlertBook(reg)
	t0 := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	open := api.Alert{ID: "breaker_open/model/m", Kind: api.AlertBreakerOpen, Severity: api.SeverityCritical}
	noLeader := api.Alert{ID: "no_leader/cluster", Kind: api.AlertNoLeader, Severity: api.SeverityCritical}
	soft := api.Alert{ID: "budget_soft/budget/all", Kind: api.AlertBudgetSoft, Severity: api.SeverityWarning}

	out := b.record(t0, "n1", []api.Alert{soft, open, noLeader})
	if len(out.Alerts) != 2 || out.Alerts[0].ID != open.ID || out.Alerts[1].ID != soft.ID || !out.Alerts[0].Since.Equal(t0) || out.Alerts[0].Node != "n1" {
		t.Fatalf("first look %+v: want the open circuit then the soft budget, no leaderless moment yet", out.Alerts)
	}
	if v := testutil.ToFloat64(b.gauge.WithLabelValues(api.SeverityCritical)); v != 1 {
		t.Fatalf("critical gauge %v, want 1", v)
	}
	out = b.record(t0.Add(6*time.Second), "n1", []api.Alert{open, noLeader})
	if len(out.Alerts) != 2 || !out.Alerts[0].Since.Equal(t0) || out.Alerts[1].ID != noLeader.ID {
		t.Fatalf("second look %+v: want both critical, the circuit since t0", out.Alerts)
	}
	if v := testutil.ToFloat64(b.gauge.WithLabelValues(api.SeverityWarning)); v != 0 {
		t.Fatalf("warning gauge %v after the soft budget cleared", v)
	}
	b.record(t0.Add(8*time.Second), "n1", nil)
	out = b.record(t0.Add(10*time.Second), "n1", []api.Alert{open})
	if !out.Alerts[0].Since.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("a circuit that opened again starts at %s, want the new opening", out.Alerts[0].Since)
	}
}

func TestSummaryDiff(t *testing.T) {
	for _, c := range []struct {
		before, after string
		want          []api.AuditChange
	}{
		{"production=v1", "production=v1 canary=v2@10%", []api.AuditChange{{Field: "canary", After: "v2@10%"}}},
		{"production=v2 canary=v3@50%", "production=v2", []api.AuditChange{{Field: "canary", Before: "v3@50%"}}},
		{"ci role=operator", "ci role=operator revoked", []api.AuditChange{{Field: "revoked", After: "true"}}},
		{"gpt sha256:0a1b2c", "gpt sha256:ffeedd", nil},
		{"", "support-answer releases=1 production=v1", []api.AuditChange{{Field: "releases", After: "1"}, {Field: "production", After: "v1"}}},
	} {
		got := summaryDiff(c.before, c.after)
		if len(got) != len(c.want) {
			t.Fatalf("%q -> %q: %+v, want %+v", c.before, c.after, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%q -> %q: %+v, want %+v", c.before, c.after, got, c.want)
			}
		}
	}
}

// TestTrafficAlerts: a feature slower than the threshold, a model whose
// failures a fallback hides from the client, calls refused before any
// feature, and a quiet model below the minimum of calls that stays quiet.
func TestTrafficAlerts(t *testing.T) {
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	th := config.Alerts{MinCalls: 4, P95: config.Duration(time.Second)}.WithDefaults()
	var traces []*trace.Trace
	for i := range 5 {
		traces = append(traces, &trace.Trace{Start: now.Add(-time.Duration(i) * time.Second), Feature: "slow", Model: "b", Provider: "p", Status: "ok", Duration: 2500,
			Attempts: []trace.Attempt{{Model: "a", Provider: "p", Duration: 10, Status: "http_500"}, {Model: "b", Provider: "p", Duration: 2400, Status: "ok"}}},
			&trace.Trace{Start: now, Status: "error", HTTPStatus: 401, ErrorCode: "invalid_api_key", Duration: 1})
	}
	traces = append(traces, &trace.Trace{Start: now, Feature: "rare", Model: "c", Provider: "p2", Status: "error", HTTPStatus: 502, ErrorCode: "upstream_error",
		Attempts: []trace.Attempt{{Model: "c", Provider: "p2", Status: "http_500"}}})
	h := computeHealth("n1", now, time.Minute, traces, map[string]string{"a": "p", "b": "p", "c": "p2"}, func(string) string { return api.BreakerClosed })
	got := map[string]api.Alert{}
	for _, a := range trafficAlerts(th, h, traces) {
		got[a.ID] = a
	}
	want := map[string]string{
		"latency_p95/feature/slow": "traces?feature=slow&sort=duration",
		"error_rate/model/a":       "traces?error_kind=http_500&model=a",
		"latency_p95/model/b":      "traces?model=b&sort=duration",
		"error_rate/provider/p":    "traces?error_kind=http_500&q=p", // half its attempts failed
		"latency_p95/provider/p":   "traces?q=p&sort=duration",
		"refused_requests/gateway": "traces?error_kind=invalid_api_key&status=error",
	}
	for id, l := range want {
		if a, ok := got[id]; !ok || a.Link != l {
			t.Errorf("%s: %+v, want link %s", id, a, l)
		}
	}
	if len(got) != len(want) {
		t.Errorf("alerts %v, want only %v", keys(got), want)
	}
	if a := got["error_rate/model/a"]; a.Severity != api.SeverityCritical || a.Numbers[0].Value != 1 {
		t.Errorf("model a fails every attempt: %+v", a)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzSummaryDiff feeds arbitrary summaries to the audit's summary parser:
// it never panics, two equal summaries differ in nothing, and each field
// it reports differs.
func FuzzSummaryDiff(f *testing.F) {
	f.Add("production=v1 canary=v2@10%", "production=v1")
	f.Add("ci role=operator", "ci role=operator revoked")
	f.Add("= =x x= a==b", "sha256:00 k=v")
	f.Fuzz(func(t *testing.T, before, after string) {
		if d := summaryDiff(before, before); len(d) != 0 {
			t.Fatalf("%q against itself: %+v", before, d)
		}
		for _, c := range summaryDiff(before, after) {
			if c.Before == c.After {
				t.Fatalf("%q -> %q reports an unchanged field %+v", before, after, c)
			}
		}
	})
}

// TestDivergedStateAlerts: members of one build at the same state index
// must hold the same state; the alert names who holds which, at the lowest
// index where they part. Members at other indexes, of another build, or
// unreachable are not compared.
func TestDivergedStateAlerts(t *testing.T) {
	const a, b = "sha256:aaaaaaaaaaaaaaaaaaaa", "sha256:bbbbbbbbbbbbbbbbbbbb"
	member := func(id, build string, index uint64, hash string) cluster.Member {
		spend := "5be1"
		if hash == b {
			spend = "77aa"
		}
		return cluster.Member{ID: id, Status: &cluster.Status{Build: build, StateIndex: index, StateHash: hash,
			StateSections: map[string]string{"config": "c0f1", "spend": spend}}}
	}
	tests := []struct {
		name    string
		members []cluster.Member
		want    string // the summary, empty for no alert
	}{
		{"agree", []cluster.Member{member("n1", "v1", 442, a), member("n2", "v1", 442, a), member("n3", "v1", 443, b)}, ""},
		{"one parts", []cluster.Member{member("n1", "v1", 442, a), member("n2", "v1", 442, a), member("n3", "v1", 442, b)},
			"members hold different states at index 442: n1, n2 sha256:aaaaaaaaaaaa; n3 sha256:bbbbbbbbbbbb (they differ in spend)"},
		{"another build", []cluster.Member{member("n1", "v1", 442, a), member("n2", "v2", 442, b)}, ""},
		{"unreachable", []cluster.Member{member("n1", "v1", 442, a), {ID: "n2", Error: "connection refused"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := divergedAlerts(tt.members)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Fatalf("alerts %+v, want none", got)
			case tt.want != "" && (len(got) != 1 || got[0].Summary != tt.want || got[0].Severity != api.SeverityCritical || got[0].Kind != api.AlertStateDiverged):
				t.Fatalf("alerts %+v, want one critical: %s", got, tt.want)
			}
		})
	}
}
