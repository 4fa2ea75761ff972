package agent

import (
	"math"
	"testing"
	"time"

	"gantry/agent/admin"
	"gantry/cluster/spend"
	"gantry/cluster/state"
	"gantry/config"
)

// The burn rate of a shared budget is how fast the cluster's committed
// spend grew over the last half hour; it is reported only after a minute
// of samples, starts over when the period rolls, and forgets budgets taken
// out of the configuration.
func TestBurnMeterFollowsCommittedSpend(t *testing.T) {
	day := config.Budget{Name: "daily", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 100}
	st := state.New()
	st.Config.Budgets = []config.Budget{day}
	at := func(now time.Time, spent float64) *state.State {
		st.Spend.Accounts = map[string]spend.Account{"daily": {Period: spend.PeriodKey(day, now), Spent: spent}}
		return st
	}
	var m burnMeter
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	period := spend.PeriodKey(day, start)

	// $0.10 a minute across the cluster is $6 an hour.
	for s := 0; s <= 50; s++ {
		now := start.Add(time.Duration(s) * time.Second)
		m.observe(at(now, float64(s)/600), now)
	}
	if _, ok := m.perHour("daily", period); ok {
		t.Fatal("a burn rate from less than a minute of samples")
	}
	for s := 51; s <= 45*60; s++ {
		now := start.Add(time.Duration(s) * time.Second)
		m.observe(at(now, float64(s)/600), now)
	}
	r, ok := m.perHour("daily", period)
	if !ok || math.Abs(r-6) > 1e-9 {
		t.Fatalf("burn %v (%v), want $6/h", r, ok)
	}
	if n := len(m.samples["daily"]); n > int(admin.BudgetWindow/burnSampleEvery)+1 {
		t.Fatalf("%d samples kept for a %s window", n, admin.BudgetWindow)
	}
	if oldest := m.samples["daily"][0].at; start.Add(45*time.Minute).Sub(oldest) > admin.BudgetWindow+burnSampleEvery {
		t.Fatalf("oldest sample from %s, older than the window", oldest)
	}

	// Spend that stopped 20 minutes ago burns a third as fast over the window.
	stopped := float64(45*60) / 600
	for s := 45*60 + 1; s <= 65*60; s++ {
		now := start.Add(time.Duration(s) * time.Second)
		m.observe(at(now, stopped), now)
	}
	if r, _ := m.perHour("daily", period); math.Abs(r-2) > 0.1 {
		t.Fatalf("burn %v after spend stopped for 20 of 30 minutes, want about $2/h", r)
	}

	// A new day starts the samples over.
	tomorrow := start.Add(24 * time.Hour)
	m.observe(at(tomorrow, 0), tomorrow)
	if _, ok := m.perHour("daily", spend.PeriodKey(day, tomorrow)); ok {
		t.Fatal("a burn rate carried over into a new period")
	}

	st.Config.Budgets = nil
	m.observe(st, tomorrow.Add(time.Minute))
	if len(m.samples) != 0 {
		t.Fatalf("samples kept for a budget no longer configured: %v", m.samples)
	}
}
