package agent

import (
	"io"
	"strings"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
)

func TestRateLimitHeadersAndRefusal(t *testing.T) {
	cfg := quietConfig()
	a := startAgent(t, cfg)
	cfg = quietConfig()
	cfg.Keys = append(cfg.Keys, config.Key{Name: "dev", Team: "dev", Hash: config.HashKey(devKey), RateLimit: &config.RateLimit{RPM: 2}})
	if err := a.s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"1", "0"} {
		resp := a.post("/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}`)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-limit-requests") != "2" || resp.Header.Get("x-ratelimit-remaining-requests") != want {
			t.Fatalf("call %d: status %d, limit %q remaining %q; want 200, 2, %s", i, resp.StatusCode,
				resp.Header.Get("x-ratelimit-limit-requests"), resp.Header.Get("x-ratelimit-remaining-requests"), want)
		}
	}
	resp := a.post("/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "rate_limited") {
		t.Fatalf("third call: %d Retry-After %q %s; want a 429 rate_limited with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}

func TestBudgetRefusesAndReports(t *testing.T) {
	cfg := quietConfig()
	// A call on sim-large capped at 20 output tokens costs about $0.0002,
	// and its worst case is about as much: the budget affords two.
	cfg.Budgets = []config.Budget{{Name: "team-dev", Scope: config.ScopeTeam, Match: "dev", Period: config.PeriodDay, LimitUSD: 0.0005}}
	a := startAgent(t, cfg)
	codes := []int{}
	for i := 0; i < 4; i++ {
		resp := a.post("/v1/chat/completions", `{"model":"sim-large","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[len(codes)-1] != 429 {
		t.Fatalf("statuses %v: want the first served and later ones refused", codes)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.s.store.Stats().Count < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // traces are recorded asynchronously
	}
	got := decode[api.Budgets](t, a.admin("/admin/v1/budgets"))
	if len(got.Budgets) != 1 {
		t.Fatalf("budgets %+v", got.Budgets)
	}
	b := got.Budgets[0]
	if b.Name != "team-dev" || b.SpentUSD <= 0 || b.SpentUSD > b.LimitUSD || b.ReservedUSD != 0 || b.PeriodEnd.IsZero() {
		t.Fatalf("budget view %+v: want spend within the limit, nothing reserved, a period end", b)
	}
	found := false
	for _, sp := range got.Spend {
		found = found || (sp.Dimension == "team" && sp.Name == "dev" && sp.CostUSD > 0)
	}
	if !found {
		t.Fatalf("spend by team lacks dev: %+v", got.Spend)
	}
}
