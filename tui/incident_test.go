package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/pipeline/trace"
)

func fixtureAlerts() api.Alerts {
	return api.Alerts{Node: "cluster", Time: clock, Alerts: []api.Alert{
		{ID: "member_down/member/agent-3", Kind: api.AlertMemberDown, Severity: api.SeverityWarning, Since: clock.Add(-4 * time.Minute),
			Subject: "member/agent-3", Summary: "agent-3 has not answered the leader for 4m", Link: "members", Node: "agent-1"},
		{ID: "breaker_open/model/sim-flaky", Kind: api.AlertBreakerOpen, Severity: api.SeverityCritical, Since: clock.Add(-90 * time.Second),
			Subject: "model/sim-flaky", Summary: "sim-flaky: circuit open after 5 failures (http_500)",
			Numbers: []api.AlertNumber{{Name: "error_rate", Value: 0.92, Unit: "ratio", Threshold: 0.05}, {Name: "calls", Value: 130, Unit: "count"}},
			Link:    "traces?model=sim-flaky&status=error", Node: "agent-1,agent-2"},
		{ID: "canary_fail/feature/support-answer", Kind: api.AlertCanaryFail, Severity: api.SeverityCritical, Since: clock.Add(-40 * time.Second),
			Subject: "feature/support-answer", Summary: "support-answer canary v3: error rate 41% against 1.3% in production",
			Numbers: []api.AlertNumber{{Name: "canary_error_rate", Value: 0.41, Unit: "ratio"}, {Name: "production_error_rate", Value: 0.013, Unit: "ratio"}},
			Link:    "releases?feature=support-answer", Node: "agent-1"},
		{ID: "budget_soft/budget/monthly", Kind: api.AlertBudgetSoft, Severity: api.SeverityWarning, Since: clock.Add(-3 * time.Hour),
			Subject: "budget/monthly", Summary: "monthly: 82% of $500 spent, runs out in 3d at $4.10/h",
			Numbers: []api.AlertNumber{{Name: "used", Value: 0.82, Unit: "ratio", Threshold: 0.8}, {Name: "burn", Value: 4.1, Unit: "usd/h"}},
			Link:    "budgets", Node: "agent-1"},
	}}
}

func fixtureHealth() api.Health {
	hs := func(calls, att, errs int64, kinds map[string]int64, p50, p95, ttft float64, retries, fb int64) api.HealthStats {
		rate := 0.0
		if att > 0 {
			rate = float64(errs) / float64(att)
		}
		return api.HealthStats{Calls: calls, Attempts: att, Errors: errs, ErrorRate: rate, ErrorsByKind: kinds, P50: p50, P95: p95, TTFTP95: ttft, Retries: retries, Fallbacks: fb}
	}
	return api.Health{Node: "cluster", Time: clock.Add(-time.Second), WindowSeconds: 300,
		Totals: api.HealthStats{Calls: 12450, Errors: 1830, ErrorRate: 0.147, ErrorsByKind: map[string]int64{"invalid_api_key": 1500, "upstream_error": 310, "rate_limited": 20}, P95: 2400, Retries: 640, Fallbacks: 118},
		Models: []api.ModelHealth{
			{Model: "claude-haiku", Provider: "anthropic", Breaker: api.BreakerClosed, HealthStats: hs(3100, 3150, 50, map[string]int64{"http_529": 50}, 380, 900, 210, 50, 0)},
			{Model: "sim-flaky", Provider: "sim-unreliable", Breaker: api.BreakerOpen, HealthStats: hs(900, 1400, 1290, map[string]int64{"http_500": 1100, "timeout": 150, "circuit_open": 40}, 700, 4100, 0, 500, 118)},
			{Model: "gpt-4o-mini", Provider: "openai", Breaker: api.BreakerHalfOpen, HealthStats: hs(6950, 7040, 90, map[string]int64{"http_429": 80, "connect": 10}, 520, 2400, 340, 90, 0)},
		},
		Providers: []api.ProviderHealth{
			{Provider: "anthropic", HealthStats: hs(3100, 3150, 50, map[string]int64{"http_529": 50}, 380, 900, 210, 50, 0)},
			{Provider: "openai", HealthStats: hs(6950, 7040, 90, map[string]int64{"http_429": 80, "connect": 10}, 520, 2400, 340, 90, 0)},
			{Provider: "sim-unreliable", HealthStats: hs(900, 1400, 1290, map[string]int64{"http_500": 1100, "timeout": 150}, 700, 4100, 0, 500, 118)},
		},
	}
}

func fixtureAudit() api.AuditList {
	return api.AuditList{Entries: []api.AuditEntry{
		{Seq: 44, Index: 1043, Time: clock.Add(-30 * time.Second), Actor: "token:oncall (ssh:ana SHA256:x1y2)", Command: "move_label", Target: "feature/support-answer",
			Before: "production=v2 canary=v3@10%", After: "production=v2", Reason: "canary errors 41%", RequestID: "req-7f3a",
			Diff: []api.AuditChange{{Field: "labels.canary", Before: "3", After: ""}, {Field: "labels.canary_weight", Before: "10", After: ""}}},
		{Seq: 43, Index: 1031, Time: clock.Add(-20 * time.Minute), Actor: "token:ci", Command: "apply_config", Target: "route/default",
			Before: "default sha256:1a2b3c4d5e6f", After: "default sha256:6f5e4d3c2b1a",
			Diff: []api.AuditChange{{Field: "retry.attempts", Before: "2", After: "3"}, {Field: "breaker.failures", Before: "5", After: "3"}}},
		{Seq: 42, Index: 1002, Time: clock.Add(-2 * time.Hour), Actor: "token:bob (local:bob)", Command: "move_label", Target: "feature/support-answer",
			Before: "production=v2", After: "production=v2 canary=v3@10%", Reason: "try haiku",
			Diff: []api.AuditChange{{Field: "labels.canary", After: "3"}, {Field: "labels.canary_weight", After: "10"}}},
		{Seq: 41, Index: 990, Time: clock.Add(-3 * time.Hour), Actor: "token:admin", Command: "put_key", Target: "key/mobile-app",
			After: "mobile-app sha256:0a0b0c0d0e0f"},
	}}
}

// incident is the loaded console with alerts, health and the audit log.
func incident(t testing.TB, readOnly bool, w, h int) *App {
	t.Helper()
	a := loaded(t, readOnly, w, h)
	ov := fixtureOverview()
	ov.NoFeature = api.Stats{Requests: 1500, Errors: 1500}
	ov.Totals = api.Stats{Requests: 13800, Errors: 1742, ValidationFailures: 310, FeedbackUp: 160, FeedbackDown: 98, P50: 480, P95: 2400, CostUSD: 5.14, InputTokens: 12300 * 400, OutputTokens: 12300 * 90}
	ov.ErrorRate = 0.126
	send(t, a, OverviewMsg(ov))
	send(t, a, AlertsMsg(fixtureAlerts()))
	send(t, a, HealthMsg(fixtureHealth()))
	send(t, a, AuditMsg{List: fixtureAudit()})
	return a
}

// TestGoldenWaiting: the new views before their first data say so.
func TestGoldenWaiting(t *testing.T) {
	keys := DefaultKeyMap()
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		for _, v := range []struct {
			name string
		}{{"health"}, {"alerts"}, {"audit"}} {
			a := loaded(t, false, size.w, size.h)
			b := map[string]key.Binding{"health": keys.Health, "alerts": keys.Alerts, "audit": keys.Audit}[v.name]
			press(t, a, b)
			got := a.View()
			checkScreen(t, got, size.w, size.h)
			if !strings.Contains(strings.ToLower(got), "waiting") {
				t.Fatalf("%s before data does not say it waits:\n%s", v.name, got)
			}
			golden(t, v.name+"-waiting-"+itoa(size.w)+"x"+itoa(size.h), got)
		}
	}
}

func TestGoldenIncidentViews(t *testing.T) {
	keys := DefaultKeyMap()
	cases := []struct {
		name  string
		setup func(t *testing.T, a *App)
	}{
		{"overview-alerts", func(t *testing.T, a *App) {}},
		{"alerts", func(t *testing.T, a *App) { press(t, a, keys.Alerts) }},
		{"alerts-none", func(t *testing.T, a *App) {
			send(t, a, AlertsMsg(api.Alerts{Node: "cluster", Time: clock}))
			press(t, a, keys.Alerts)
		}},
		{"health", func(t *testing.T, a *App) { press(t, a, keys.Health) }},
		{"audit", func(t *testing.T, a *App) { press(t, a, keys.Audit) }},
		{"audit-filtered", func(t *testing.T, a *App) {
			press(t, a, keys.Audit)
			press(t, a, keys.Filter)
			typeText(t, a, "kind:move_label actor:bob")
			press(t, a, keys.Open)
		}},
		{"traces-by-duration", func(t *testing.T, a *App) {
			press(t, a, keys.Traces)
			press(t, a, keys.Sort)
			press(t, a, keys.Filter)
			typeText(t, a, "dur:>1s cost:<=0.0012")
			press(t, a, keys.Open)
		}},
		{"traces-from-alert", func(t *testing.T, a *App) {
			press(t, a, keys.Alerts)
			press(t, a, keys.Open) // the worst: the open breaker
		}},
		{"confirm-rollback-from-alert", func(t *testing.T, a *App) {
			press(t, a, keys.Alerts)
			press(t, a, keys.Down)
			press(t, a, keys.Rollback)
		}},
		{"audit-error", func(t *testing.T, a *App) {
			send(t, a, AuditMsg{Err: errors.New("GET /admin/v1/audit: 403 forbidden: the token's role may not read the audit log")})
			press(t, a, keys.Audit)
		}},
		{"overview-not-updated", func(t *testing.T, a *App) {
			send(t, a, OverviewErrMsg{Err: errors.New("agent http://127.0.0.1:7400 refused the admin token (401): check --token or GANTRY_TOKEN")})
		}},
		{"trace-refused-caller", func(t *testing.T, a *App) {
			press(t, a, keys.Traces)
			press(t, a, keys.Open)
			send(t, a, TraceMsg{Trace: &trace.Trace{ID: "0af7651916cd43dd8448eb211c80319c", Start: clock.Add(-5 * time.Second), Duration: 1.2,
				Node: "agent-2", Entry: "chat", Status: "error", HTTPStatus: 401, ErrorCode: "invalid_api_key", Error: "the key is not known",
				KeyFP: "9f8e7d6c5b4a", ClientAddr: "203.0.113.7:51544", UserAgent: "OpenAI/Python 1.54.0"}})
		}},
		{"help-traces", func(t *testing.T, a *App) {
			press(t, a, keys.Traces)
			press(t, a, keys.Help)
		}},
	}
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		for _, c := range cases {
			name := c.name + "-" + itoa(size.w) + "x" + itoa(size.h)
			t.Run(name, func(t *testing.T) {
				a := incident(t, false, size.w, size.h)
				c.setup(t, a)
				got := a.View()
				checkScreen(t, got, size.w, size.h)
				golden(t, name, got)
			})
		}
	}
}

// TestAlertLeadsToModelTraces: enter on the open breaker's alert shows the
// traces of that model that failed, and asks the agents for older ones.
func TestAlertLeadsToModelTraces(t *testing.T) {
	a := incident(t, false, 120, 40)
	k := a.Keys()
	press(t, a, k.Alerts)
	out := press(t, a, k.Open)
	if a.Current() != ViewTraces || a.traces.filterText != "model:sim-flaky status:error" {
		t.Fatalf("view %s with filter %q, want traces with model:sim-flaky status:error", a.Current(), a.traces.filterText)
	}
	q := only[TraceSearchRequest](t, out)
	if q.Model != "sim-flaky" || q.Status != "error" || q.Limit == 0 {
		t.Fatalf("search %+v, want the model's errors", q)
	}
	for i := range a.traces.shown {
		if s := a.traces.at(i).s; s.Model != "sim-flaky" || s.Status == "ok" {
			t.Fatalf("row %+v shown under the alert's filter", s)
		}
	}
}

// TestAlertRollsBackCanary: r on the canary's alert opens the dialog that
// ends the canary, Cancel first; confirmed, it sends the rollback. On an
// alert that is not a canary's, and read-only, nothing opens.
func TestAlertRollsBackCanary(t *testing.T) {
	a := incident(t, false, 120, 40)
	k := a.Keys()
	press(t, a, k.Alerts)
	press(t, a, k.Rollback) // the breaker's alert
	if a.dialog != nil || !strings.Contains(a.Status(), "not about a canary") {
		t.Fatalf("r on the breaker's alert: dialog %v, status %q", a.dialog != nil, a.Status())
	}
	press(t, a, k.Down)
	press(t, a, k.Rollback)
	if a.dialog == nil || !strings.Contains(a.View(), "End the canary v3 of support-answer? Production stays.") {
		t.Fatalf("no rollback dialog for the canary:\n%s", a.View())
	}
	press(t, a, k.NextField)
	out := press(t, a, k.Confirm)
	req := only[ActionRequest](t, out)
	if req.Kind != KindRollback || req.Feature != "support-answer" || req.From != 3 || req.To != 0 {
		t.Fatalf("request %+v, want the rollback ending canary v3", req)
	}

	ro := incident(t, true, 120, 40)
	press(t, ro, k.Alerts)
	press(t, ro, k.Down)
	none[tea.Msg](t, press(t, ro, k.Rollback))
	if ro.dialog != nil || !strings.Contains(ro.Status(), "read-only") {
		t.Fatalf("read-only console: dialog %v, status %q", ro.dialog != nil, ro.Status())
	}
}

// TestCanaryEndedMeanwhile: when the canary ended before r, the rollback
// does not move production back instead.
func TestCanaryEndedMeanwhile(t *testing.T) {
	a := incident(t, false, 120, 40)
	fs := fixtureFeatures()
	fs[0].Labels.Canary, fs[0].Labels.CanaryWeight = 0, 0
	withRollback(&fs[0])
	send(t, a, FeaturesMsg(fs))
	press(t, a, a.Keys().Alerts)
	press(t, a, a.Keys().Down)
	press(t, a, a.Keys().Rollback)
	if a.dialog != nil || !strings.Contains(a.Status(), "no live canary") {
		t.Fatalf("dialog %v, status %q, want no dialog and why", a.dialog != nil, a.Status())
	}
}

// TestBellOnNewCritical: the bell rings once for a critical alert that was
// not there, not on every poll, not for warnings, and only when asked for.
func TestBellOnNewCritical(t *testing.T) {
	bells := func(out []tea.Msg) int {
		n := 0
		for _, m := range out {
			if _, ok := m.(BellRequest); ok {
				n++
			}
		}
		return n
	}
	app := func(bell bool) *App {
		a := newTestApp(t, false)
		a.bell = bell
		return a
	}
	l := fixtureAlerts()
	warnOnly := api.Alerts{Alerts: []api.Alert{l.Alerts[0]}}
	a := app(true)
	if n := bells(send(t, a, AlertsMsg(warnOnly))); n != 0 {
		t.Fatalf("%d bells on the first list", n)
	}
	if n := bells(send(t, a, AlertsMsg(l))); n != 1 {
		t.Fatalf("%d bells when two critical alerts appear, want 1", n)
	}
	if n := bells(send(t, a, AlertsMsg(l))); n != 0 {
		t.Fatalf("%d bells for the same alerts again", n)
	}
	if n := bells(send(t, app(false), AlertsMsg(warnOnly))) + bells(send(t, a, AlertsMsg(warnOnly))); n != 0 {
		t.Fatalf("%d bells without a new critical alert", n)
	}
	b := app(false)
	send(t, b, AlertsMsg(warnOnly))
	if n := bells(send(t, b, AlertsMsg(l))); n != 0 {
		t.Fatalf("%d bells with the bell off", n)
	}
}

// TestYankTraceID: y copies the selected trace's whole id.
func TestYankTraceID(t *testing.T) {
	a := incident(t, false, 120, 40)
	press(t, a, a.Keys().Traces)
	sel := selectedTrace(t, a)
	out := press(t, a, a.Keys().Yank)
	if y := only[YankRequest](t, out); y.Text != sel.ID {
		t.Fatalf("yanked %q, want %q", y.Text, sel.ID)
	}
	if !strings.Contains(a.Status(), "copied trace id "+sel.ID) {
		t.Fatalf("status %q", a.Status())
	}
}

// TestTraceSort: s orders by duration, then cost, then time, largest
// first, and the cursor stays on the row it was on.
func TestTraceSort(t *testing.T) {
	a := incident(t, false, 120, 40)
	k := a.Keys()
	press(t, a, k.Traces)
	press(t, a, k.Down)
	sel := selectedTrace(t, a).ID
	for _, by := range []string{api.SortDuration, api.SortCost, api.SortTime} {
		press(t, a, k.Sort)
		if a.traces.sortBy != by {
			t.Fatalf("sort %s, want %s", a.traces.sortBy, by)
		}
		if got := selectedTrace(t, a).ID; got != sel {
			t.Fatalf("sorted by %s the cursor moved from %s to %s", by, sel, got)
		}
		for i := 1; i < len(a.traces.shown); i++ {
			p, c := a.traces.at(i-1).s, a.traces.at(i).s
			var bad bool
			switch by {
			case api.SortDuration:
				bad = p.Duration < c.Duration
			case api.SortCost:
				bad = p.CostUSD < c.CostUSD
			default:
				bad = p.Start.Before(c.Start)
			}
			if bad {
				t.Fatalf("by %s, row %d (%v %v %v) before row %d (%v %v %v)", by, i-1, p.Duration, p.CostUSD, p.Start, i, c.Duration, c.CostUSD, c.Start)
			}
		}
	}
	// Rows that arrive while sorted land in their place.
	press(t, a, k.Sort)
	slow := summaries(1, clock)[0]
	slow.ID, slow.Duration = "slowest-of-all", 99_000
	send(t, a, TracesMsg{slow})
	if got := a.traces.at(1).s.ID; got != "slowest-of-all" && a.traces.at(0).s.ID != "slowest-of-all" {
		t.Fatalf("the slowest trace is not at the top: %s", got)
	}
}

func TestTraceFilterFields(t *testing.T) {
	s := trace.Summary{ID: "abc123", Feature: "support-answer", Model: "sim-flaky", Provider: "sim-unreliable", User: "u-17", Team: "web",
		Key: "mobile", KeyFP: "9f8e7d6c", Client: "10.1.2.3", Status: "error", HTTPStatus: 502, ErrorCode: "upstream_error",
		Duration: 2500, CostUSD: 0.004, Failed: "sim-down:http_503"}
	cases := []struct {
		filter string
		match  bool
	}{
		{"dur:>2s", true}, {"dur:>=2500ms", true}, {"dur:<2s", false}, {"dur:1s..3s", true}, {"dur:3s..4s", false},
		{"cost:>0.001", true}, {"cost:<$0.001", false}, {"cost:0.004..0.004", true},
		{"user:u-17", true}, {"user:u-18", false}, {"fp:9f8e", true}, {"fp:8e", false}, {"key:9f8e7d", true}, {"key:mobile", true},
		{"kind:upstream", true}, {"kind:timeout", false}, {"status:502", true}, {"status:err", true}, {"status:ok", false},
		{"provider:unreliable", true}, {"client:10.1.2", true}, {"team:web", true},
		{"10.1.2.3", true}, {"u-17", true}, {"9f8e7d6c", true}, {"nowhere", false},
		{"model:sim-flaky status:error dur:>1s", true}, {"slow:3s", false},
		// A fallback answered: the failed attempt still finds the call.
		{"model:sim-down", true}, {"kind:http_503", true}, {"http_503", true}, {"kind:http_500", false},
	}
	for _, c := range cases {
		f, err := parseTraceFilter(c.filter)
		if err != nil {
			t.Fatalf("%q: %v", c.filter, err)
		}
		if got := f.match(&s); got != c.match {
			t.Fatalf("%q matches %v, want %v", c.filter, got, c.match)
		}
	}
	for _, c := range []struct{ filter, want string }{
		{"dur:fast", "dur:fast: want >X"},
		{"dur:>fast", "want a duration"},
		{"cost:>lots", "want dollars"},
		{"cost:2..1", "the range is empty"},
		{"colour:red", `unknown field "colour"`},
		{strings.Repeat("x ", 17), "at most 16 terms"},
		{strings.Repeat("x", 300), "at most 256 characters"},
	} {
		if _, err := parseTraceFilter(c.filter); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%.40q: error %v, want %q", c.filter, err, c.want)
		}
	}
}

// TestAuditFilterAsks: the audit filter narrows the page shown at once and
// asks the agents for kind and object when typing ends.
func TestAuditFilterAsks(t *testing.T) {
	a := incident(t, false, 120, 40)
	k := a.Keys()
	if q := only[AuditRequest](t, press(t, a, k.Audit)); q.Kind != "" || q.Limit == 0 {
		t.Fatalf("opening the audit view asked %+v", q)
	}
	press(t, a, k.Filter)
	typeText(t, a, "kind:move_label object:support actor:ssh:ana")
	if n := len(a.audit.shown); n != 1 || a.audit.shown[0].Seq != 44 {
		t.Fatalf("%d entries shown, want the one rollback by ana", n)
	}
	q := only[AuditRequest](t, press(t, a, k.Open))
	if q.Kind != "move_label" || q.Object != "support" || q.Actor != "" || q.Limit != api.MaxAuditLimit {
		t.Fatalf("asked %+v, want kind and object, actor matched here over the largest page", q)
	}
	if s := a.View(); !strings.Contains(s, "- labels.canary: 3") || !strings.Contains(s, "- labels.canary_weight: 10") || !strings.Contains(s, "why: canary errors 41%") {
		t.Fatalf("the selected entry's diff is not shown:\n%s", s)
	}
}

// TestHealthRowLeadsToTraces: enter on a model shows its traces.
func TestHealthRowLeadsToTraces(t *testing.T) {
	a := incident(t, false, 120, 40)
	press(t, a, a.Keys().Health)
	if m := a.health.models()[0]; m.Model != "sim-flaky" {
		t.Fatalf("first model %s, want the open breaker first", m.Model)
	}
	out := press(t, a, a.Keys().Open)
	if a.Current() != ViewTraces || a.traces.filterText != "model:sim-flaky" {
		t.Fatalf("view %s filter %q", a.Current(), a.traces.filterText)
	}
	only[TraceSearchRequest](t, out)
}

func FuzzParseTraceFilter(f *testing.F) {
	for _, s := range []string{"model:x status:err", "dur:>2s cost:<$0.01", "dur:1s..2s", "slow:1m fp:ab", ":", "cost:..", strings.Repeat("a:b ", 20)} {
		f.Add(s)
	}
	s := trace.Summary{ID: "x", Feature: "f", Duration: 1000, CostUSD: 0.5, Status: "error"}
	f.Fuzz(func(t *testing.T, text string) {
		flt, err := parseTraceFilter(text)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error with no message")
			}
			return
		}
		if len(flt.terms) > maxFilterTerms {
			t.Fatalf("%d terms accepted", len(flt.terms))
		}
		flt.match(&s)
		q := flt.query()
		if q.MinDuration < 0 || q.MaxDuration < 0 || q.MinCost < 0 || q.MaxCost < 0 {
			t.Fatalf("negative range in %+v", q)
		}
	})
}

func FuzzParseAuditFilter(f *testing.F) {
	for _, s := range []string{"actor:token:alice kind:move_label", "object:key/ x", "kind:", "who:a o:b k:c"} {
		f.Add(s)
	}
	e := fixtureAudit().Entries[0]
	f.Fuzz(func(t *testing.T, text string) {
		flt, err := parseAuditFilter(text)
		if err != nil {
			return
		}
		if len(flt.words) > maxFilterTerms {
			t.Fatalf("%d words accepted", len(flt.words))
		}
		flt.match(&e)
	})
}

func TestFollowLinks(t *testing.T) {
	for _, c := range []struct {
		link   string
		view   ViewID
		filter string
	}{
		{"traces?model=sim-flaky&status=error", ViewTraces, "model:sim-flaky status:error"},
		{"traces?feature=support-answer&min_duration=2s&error_kind=timeout", ViewTraces, "feature:support-answer kind:timeout dur:>=2s"},
		{"budgets", ViewCosts, ""},
		{"members", ViewCluster, ""},
		{"health?model=gpt-4o-mini", ViewHealth, ""},
		{"releases?feature=support-answer", ViewReleases, ""},
		{"audit?kind=move_label", ViewAudit, ""},
	} {
		a := incident(t, false, 120, 40)
		send(t, a, linkMsg{Link: c.link})
		if a.Current() != c.view {
			t.Fatalf("%s: view %s, want %s", c.link, a.Current(), c.view)
		}
		if c.view == ViewTraces && a.traces.filterText != c.filter {
			t.Fatalf("%s: filter %q, want %q", c.link, a.traces.filterText, c.filter)
		}
	}
	a := incident(t, false, 120, 40)
	send(t, a, linkMsg{Link: "dashboards?x=1"})
	if a.Current() != ViewOverview || !strings.Contains(a.Status(), "no view for") {
		t.Fatalf("unknown link: view %s status %q", a.Current(), a.Status())
	}
}

// TestOverviewRollsBackCanary: r on the overview's feature opens the
// dialog ending its canary: three keys from the overview to the rollback.
func TestOverviewRollsBackCanary(t *testing.T) {
	a := incident(t, false, 80, 24)
	k := a.Keys()
	press(t, a, k.Rollback)
	if a.dialog == nil || !strings.Contains(a.View(), "End the canary v3 of support-answer?") {
		t.Fatalf("no rollback dialog from the overview:\n%s", a.View())
	}
	press(t, a, k.NextField)
	req := only[ActionRequest](t, press(t, a, k.Confirm))
	if req.Kind != KindRollback || req.Feature != "support-answer" || req.From != 3 {
		t.Fatalf("request %+v", req)
	}
}

// TestAuditFollowsNewest: at the top the cursor is on the newest change as
// changes arrive; moved down, it stays on its entry.
func TestAuditFollowsNewest(t *testing.T) {
	a := incident(t, false, 120, 40)
	k := a.Keys()
	press(t, a, k.Audit)
	l := fixtureAudit()
	newer := api.AuditEntry{Seq: 45, Index: 1050, Time: clock, Actor: "token:oncall (local:ana)", Command: "move_label", Target: "labels/support-answer"}
	l.Entries = append([]api.AuditEntry{newer}, l.Entries...)
	send(t, a, AuditMsg{List: l})
	if got := a.audit.shown[a.audit.cur.cursor].Seq; got != 45 {
		t.Fatalf("cursor on %d, want the newest, 45", got)
	}
	press(t, a, k.Down)
	newest := newer
	newest.Seq = 46
	l.Entries = append([]api.AuditEntry{newest}, l.Entries...)
	send(t, a, AuditMsg{List: l})
	if got := a.audit.shown[a.audit.cur.cursor].Seq; got != 44 {
		t.Fatalf("cursor on %d, want 44, where it was moved", got)
	}
}

// TestSearchOnlyWhatAgentsNarrow: enter on a filter asks the agents only
// when they can narrow by it; a filter they cannot use asks nothing.
func TestSearchOnlyWhatAgentsNarrow(t *testing.T) {
	a := incident(t, false, 120, 40)
	k := a.Keys()
	press(t, a, k.Traces)
	press(t, a, k.Filter)
	typeText(t, a, "fb:down")
	none[TraceSearchRequest](t, press(t, a, k.Open))
	press(t, a, k.Filter)
	typeText(t, a, " dur:>2s")
	q := only[TraceSearchRequest](t, press(t, a, k.Open))
	if q.MinDuration != 2*time.Second || q.Sort != api.SortTime {
		t.Fatalf("search %+v, want the duration bound", q)
	}
}

// FuzzFollowLink follows links as agents might send them: whatever the
// link, the console shows a known view, or says it has none, and the
// screen keeps its size.
func FuzzFollowLink(f *testing.F) {
	for _, s := range []string{"traces?model=m&status=error", "traces?sort=cost&min_cost=0.5&q=a+b", "releases?feature=x", "audit?actor=token:a&kind=k",
		"health?model=%zz", "budgets?name=x", "members?id=n1", "::", "traces?min_duration=-1s&max_cost=NaN", "\x1b[2Jtraces"} {
		f.Add(s)
	}
	a := incident(f, false, 80, 24)
	f.Fuzz(func(t *testing.T, link string) {
		if len(link) > 4096 {
			return
		}
		send(t, a, linkMsg{Link: link})
		checkScreen(t, a.View(), 80, 24)
		send(t, a, tea.KeyMsg{Type: tea.KeyEsc})
		send(t, a, tea.KeyMsg{Type: tea.KeyEsc})
	})
}

// TestHealthAskedOnce: the health view asks for model health the first
// time it opens, by key, by : or by a link, and not again.
func TestHealthAskedOnce(t *testing.T) {
	a := loaded(t, false, 120, 40)
	only[HealthRequest](t, press(t, a, a.Keys().Health))
	press(t, a, a.Keys().Overview)
	none[HealthRequest](t, press(t, a, a.Keys().Health))
	b := loaded(t, false, 120, 40)
	press(t, b, b.Keys().Command)
	typeText(t, b, "models")
	only[HealthRequest](t, press(t, b, b.Keys().Open))
}

// TestCostsAskedOnce: the costs view asks for cost tables the first time
// its last tab shows, and not again as the tab comes round.
func TestCostsAskedOnce(t *testing.T) {
	a := loaded(t, false, 120, 40)
	press(t, a, a.Keys().Costs)
	for range spendDims[1:] {
		none[CostsRequest](t, press(t, a, a.Keys().NextTab))
	}
	only[CostsRequest](t, press(t, a, a.Keys().NextTab))
	for range spendDims {
		none[CostsRequest](t, press(t, a, a.Keys().NextTab))
	}
	none[CostsRequest](t, press(t, a, a.Keys().NextTab))
	send(t, a, FetchErrMsg{What: "costs", Err: errors.New("agent n1: 401 bad token")})
	if v := a.View(); !strings.Contains(v, "no agent answered: agent n1: 401 bad token") {
		t.Fatalf("the costs view does not say why no agent answered:\n%s", v)
	}
}

// TestGoldenNotServed: agents that do not serve alerts or health (an older
// version) are said to, not waited on.
func TestGoldenNotServed(t *testing.T) {
	keys := DefaultKeyMap()
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		a := loaded(t, false, size.w, size.h)
		send(t, a, FetchErrMsg{What: "alerts", Err: errors.New("agent http://10.0.0.1:7400 does not serve /admin/v1/alerts (404): an older Gantry agent, or not a Gantry agent's HTTP address")})
		press(t, a, keys.Alerts)
		got := a.View()
		checkScreen(t, got, size.w, size.h)
		if strings.Contains(got, "Waiting") || !strings.Contains(got, "does not serve") {
			t.Fatalf("the alerts view waits or does not say why:\n%s", got)
		}
		golden(t, "alerts-not-served-"+itoa(size.w)+"x"+itoa(size.h), got)
	}
}
