package agent

import (
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gantry/agent/admin"
	"gantry/api"
	"gantry/config"
	"gantry/pipeline"
)

// TestRefusedCallFindsItsCaller is an operator chasing a burst of 401s: the
// refused call's trace names the caller's address, user agent and the
// fingerprint of the key it presented, never the key, and the trace list
// finds it by that fingerprint, by error kind and by text.
func TestRefusedCallFindsItsCaller(t *testing.T) {
	a := startAgent(t, quietConfig())
	const wrong = "gk_not-a-key-we-know-0000"
	req, _ := http.NewRequest("POST", a.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"sim-small","messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", "Bearer "+wrong)
	req.Header.Set("User-Agent", "billing-batch/2.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	tr := a.waitTrace(resp.Header.Get("X-Request-Id"))
	fp := config.KeyFingerprint(wrong)
	if tr.KeyFP != fp || tr.UserAgent != "billing-batch/2.1" || !strings.HasPrefix(tr.ClientAddr, "127.0.0.1:") {
		t.Fatalf("refused trace: key_fp %q user_agent %q client %q; want %q, billing-batch/2.1, 127.0.0.1:*", tr.KeyFP, tr.UserAgent, tr.ClientAddr, fp)
	}
	if strings.Contains(tr.KeyFP, wrong) || tr.Key != "" {
		t.Fatalf("trace holds the key: %+v", tr)
	}
	// A served call carries its key's fingerprint too, the one the key
	// list shows.
	ok := a.post("/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"x"}]}`)
	ok.Body.Close()
	if got := a.waitTrace(ok.Header.Get("X-Request-Id")).KeyFP; got != config.KeyFingerprint(devKey) {
		t.Fatalf("served call's key_fp %q, want %q", got, config.KeyFingerprint(devKey))
	}
	for _, q := range []url.Values{{"key_fp": {fp}}, {"error_kind": {"invalid_api_key"}}, {"q": {"billing-batch"}}} {
		list := decode[api.TraceList](t, a.admin(api.PathTraces+"?"+q.Encode()))
		if len(list.Traces) != 1 || list.Traces[0].ID != tr.ID || list.Traces[0].KeyFP != fp {
			t.Fatalf("search %v: %+v, want the refused call", q, list.Traces)
		}
	}
}

// TestPerUserBudgetBurnsAtItsOwnRate: a user who spent little must not
// "run out in 4h" because others spend fast; each row burns at its own
// user's rate.
func TestPerUserBudgetBurnsAtItsOwnRate(t *testing.T) {
	cfg := quietConfig()
	cfg.Budgets = append(cfg.Budgets, config.Budget{Name: "each-user", Scope: config.ScopeUser, Period: config.PeriodDay, LimitUSD: 5})
	a := startAgent(t, cfg)
	call := func(user string) {
		resp := a.post("/v1/chat/completions", `{"model":"sim-large","user":"`+user+`","messages":[{"role":"user","content":"hello there"}]}`)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call for %s: status %d", user, resp.StatusCode)
		}
		a.waitTrace(resp.Header.Get("X-Request-Id"))
	}
	for range 3 {
		call("alice")
	}
	call("bob")
	out := decode[api.Budgets](t, a.admin(api.PathBudgets))
	rows := map[string]api.Budget{}
	for _, b := range out.Budgets {
		if b.Name == "each-user" {
			rows[b.Match] = b
		}
	}
	alice, bob := rows["alice"], rows["bob"]
	if alice.SpentUSD <= 0 || bob.SpentUSD <= 0 {
		t.Fatalf("rows %+v: want spend for alice and bob", rows)
	}
	// Spend over a 30 minute window, per hour: twice what each spent.
	for _, r := range []api.Budget{alice, bob} {
		if want := 2 * r.SpentUSD; !closeTo(r.BurnPerHour, want) {
			t.Errorf("%s burns $%v/h, want $%v/h: twice the $%v that user spent in the half hour", r.Match, r.BurnPerHour, want, r.SpentUSD)
		}
	}
	if !(alice.BurnPerHour > 2*bob.BurnPerHour) {
		t.Errorf("alice burns $%v/h and bob $%v/h: want alice's three calls to burn faster than bob's one", alice.BurnPerHour, bob.BurnPerHour)
	}
}

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9+1e-6*math.Abs(b) }

// TestFailingModelRaisesAlerts is the first minute of an incident: a model
// starts failing every call; GET /admin/v1/alerts then names its open
// circuit first, critical, with a link to its failed traces, and /metrics
// counts the critical alerts.
func TestFailingModelRaisesAlerts(t *testing.T) {
	cfg := quietConfig()
	for i := range cfg.Providers {
		if cfg.Providers[i].Name == "sim-unreliable" {
			cfg.Providers[i].Sim = &config.SimSettings{ErrorRate: 1, LatencyP50: config.Duration(time.Millisecond), LatencyP99: config.Duration(2 * time.Millisecond), Seed: 3}
		}
	}
	cfg.Alerts = config.Alerts{MinCalls: 3}
	a := startAgent(t, cfg)
	before := decode[api.Alerts](t, a.admin(api.PathAlerts))
	if len(before.Alerts) != 0 {
		t.Fatalf("alerts before any traffic: %+v", before.Alerts)
	}
	for i := 0; i < 20 && a.s.gw.Breaker("sim-unreliable") != pipeline.Open; i++ {
		resp := a.post("/v1/chat/completions", `{"model":"sim-unreliable","messages":[{"role":"user","content":"hi"}]}`)
		resp.Body.Close()
		if resp.StatusCode < 500 {
			t.Fatalf("call %d to a model failing every call: status %d", i, resp.StatusCode)
		}
		a.waitTrace(resp.Header.Get("X-Request-Id"))
	}
	if a.s.gw.Breaker("sim-unreliable") != pipeline.Open {
		t.Fatal("the breaker never opened")
	}
	time.Sleep(admin.AlertInterval) // past the cached look
	got := decode[api.Alerts](t, a.admin(api.PathAlerts))
	if len(got.Alerts) == 0 {
		t.Fatal("no alerts while a model's circuit is open")
	}
	first := got.Alerts[0]
	if first.ID != "breaker_open/model/sim-unreliable" || first.Severity != api.SeverityCritical || first.Node != "test" || first.Since.IsZero() {
		t.Fatalf("worst alert %+v, want the open circuit of sim-unreliable, critical", first)
	}
	// Nothing falls back from this model: its failed calls are errors.
	view, filter, _ := strings.Cut(first.Link, "?")
	if view != "traces" || filter != "model=sim-unreliable&status=error" {
		t.Fatalf("link %q, want the failed calls of sim-unreliable", first.Link)
	}
	// The link's filter finds the failed calls.
	list := decode[api.TraceList](t, a.admin(api.PathTraces+"?"+filter))
	if len(list.Traces) < 3 {
		t.Fatalf("the alert's link finds %d traces", len(list.Traces))
	}
	var rate *api.Alert
	for i := range got.Alerts {
		if got.Alerts[i].ID == "error_rate/model/sim-unreliable" {
			rate = &got.Alerts[i]
		}
	}
	if rate == nil || rate.Severity != api.SeverityCritical || rate.Numbers[0].Value != 1 || rate.Numbers[0].Threshold != config.DefaultAlertErrorRate {
		t.Fatalf("error rate alert %+v in %+v", rate, got.Alerts)
	}
	// The start holds while the alert lasts.
	time.Sleep(admin.AlertInterval)
	again := decode[api.Alerts](t, a.admin(api.PathAlerts))
	if len(again.Alerts) == 0 || again.Alerts[0].ID != first.ID || !again.Alerts[0].Since.Equal(first.Since) {
		t.Fatalf("second look %+v, want %s since %s", again.Alerts, first.ID, first.Since)
	}
	resp := a.admin("/metrics")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `gantry_alerts{severity="critical"} `) || strings.Contains(string(body), `gantry_alerts{severity="critical"} 0`) {
		t.Fatalf("metrics do not count the critical alerts:\n%s", grepLines(string(body), "gantry_alerts"))
	}
	health := decode[api.Health](t, a.admin(api.PathHealth))
	for _, m := range health.Models {
		if m.Model == "sim-unreliable" && (m.Breaker != api.BreakerOpen || m.ErrorRate != 1) {
			t.Fatalf("health of sim-unreliable: %+v", m)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
