package agent

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/cluster/spend"
	"gantry/config"
	"gantry/pipeline/budget"
)

func TestGrantTracked(t *testing.T) {
	cfg := &config.Config{
		Budgets: []config.Budget{
			{Name: "all", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 10},
			{Name: "dev-team", Scope: config.ScopeTeam, Match: "dev", Period: config.PeriodDay, LimitUSD: 5},
			{Name: "each-user", Scope: config.ScopeUser, Period: config.PeriodDay, LimitUSD: 1},
		},
		Keys: []config.Key{{Name: "k1", Team: "dev", MaxBudgetUSD: 3}},
	}
	got := map[string]bool{}
	for _, s := range budget.ScopesFor(cfg, budget.Subject{Team: "dev", Key: "k1", User: "ann"}) {
		got[s.Key] = grantTracked(s)
	}
	want := map[string]bool{"all": true, "dev-team": true, "each-user/user:ann": false, "key-cap:k1": false}
	if len(got) != len(want) {
		t.Fatalf("scopes %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("scope %s tracked = %v, want %v", k, got[k], w)
		}
	}
}

func TestSpendSliceCoversTheLargestCall(t *testing.T) {
	w := spend.NewWallet("a1", 0)
	sp := &spendSide{ledger: budget.NewGranted(budget.NewLocal(budget.Options{}), w, grantTracked), wallet: w}
	b := config.Budget{Name: "all", Scope: config.ScopeGlobal, Period: config.PeriodTotal, LimitUSD: 10}
	tests := []struct {
		name   string
		demand float64 // worst case of a call refused for want of grant
		want   float64
	}{
		{"no calls yet: a twentieth", 0, 0.5},
		{"small calls: a twentieth", 0.1, 0.5},
		{"large call: two of it", 1, 2},
		{"call beyond the limit: the limit", 7, 10},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.demand > 0 {
				_, err := sp.ledger.Reserve(context.Background(), budget.Reservation{RequestID: "r" + string(rune('a'+i)),
					Scopes: []budget.Scope{{Key: b.Name, Budget: b}}, AmountUSD: tc.demand})
				if err == nil {
					t.Fatal("admitted without a grant")
				}
			}
			if got := sp.slice(b); got != tc.want {
				t.Fatalf("slice %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSpendGrantGauge(t *testing.T) {
	w := spend.NewWallet("a1", 0)
	w.Credit("all", "total", 2.5)
	sp := &spendSide{wallet: w, grant: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g"}, []string{"budget"})}
	sp.observe([]config.Budget{
		{Name: "all", Scope: config.ScopeGlobal},
		{Name: "none-yet", Scope: config.ScopeTeam, Match: "dev"},
		{Name: "each-user", Scope: config.ScopeUser},
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(sp.grant)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if len(got) != 2 || got["all"] != 2.5 || got["none-yet"] != 0 {
		t.Fatalf("grant gauge %v, want all 2.5 and none-yet 0, no per-user budget", got)
	}
}
