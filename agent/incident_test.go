package agent

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gantry/api"
	"gantry/config"
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
