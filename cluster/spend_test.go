package cluster

import (
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/spend"
	"gantry/config"
)

// TestSpendAfterRestartIsGrantedAfresh restarts an agent's wallet (a new
// process): its first grant request must be a new grant, not the replay of
// the old process's first one, which the ledger would answer with the old
// amount without granting anything.
func TestSpendAfterRestartIsGrantedAfresh(t *testing.T) {
	nodes := startCluster(t, 1, 1)
	n := nodes[0]
	cfg := seedConfig()
	cfg.Budgets = []config.Budget{{Name: "total", Scope: config.ScopeGlobal, Period: config.PeriodTotal, LimitUSD: 10}}
	apply(t, n, env(t, command.ApplyConfig, command.Config{Config: cfg}))
	slice := func(config.Budget) float64 { return 4 }
	before := spend.NewWallet(n.ID(), 0)
	if err := n.SyncWallet(ctxT(t, 5*time.Second), before, slice); err != nil {
		t.Fatal(err)
	}
	after := spend.NewWallet(n.ID(), 0)
	if err := n.SyncWallet(ctxT(t, 5*time.Second), after, slice); err != nil {
		t.Fatal(err)
	}
	st, err := n.ConsistentState(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	granted := st.Spend.Accounts["total"].Grants[n.ID()].Granted
	if before.Balance("total")+after.Balance("total") != granted || granted != 8 {
		t.Fatalf("wallets hold %v + %v, ledger granted %v: want 4 + 4 = 8", before.Balance("total"), after.Balance("total"), granted)
	}
}

// TestSpentBudgetIsNotAskedAgain: once the ledger has nothing left of a
// budget, agents stop proposing grants for it (each would be a write to
// the log, at every top-up, until the period turns), and ask again as soon
// as another agent gives its grant back.
func TestSpentBudgetIsNotAskedAgain(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	cfg := seedConfig()
	cfg.Budgets = []config.Budget{{Name: "total", Scope: config.ScopeGlobal, Period: config.PeriodTotal, LimitUSD: 10}}
	apply(t, nodes[0], env(t, command.ApplyConfig, command.Config{Config: cfg}))
	all := func(config.Budget) float64 { return 10 }
	first, second := nodes[0], nodes[1]
	holder := spend.NewWallet(first.ID(), 0)
	if err := first.SyncWallet(ctxT(t, 5*time.Second), holder, all); err != nil || holder.Balance("total") != 10 {
		t.Fatalf("the first agent holds %v (%v), want the whole budget", holder.Balance("total"), err)
	}
	waitFor(t, 5*time.Second, "the grant replicated", func() bool { return second.State().Index == first.State().Index })
	index := first.State().Index
	mine := spend.NewWallet(second.ID(), 0)
	for range 3 {
		if err := second.SyncWallet(ctxT(t, 5*time.Second), mine, all); err != nil {
			t.Fatal(err)
		}
	}
	if got := first.State().Index; got != index || mine.Balance("total") != 0 {
		t.Fatalf("with nothing left to grant the state moved %d -> %d and the wallet holds %v", index, got, mine.Balance("total"))
	}
	if err := first.CloseWallet(ctxT(t, 5*time.Second), holder); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the returned grant replicated", func() bool { return second.State().Index == first.State().Index })
	if err := second.SyncWallet(ctxT(t, 5*time.Second), mine, all); err != nil || mine.Balance("total") != 10 {
		t.Fatalf("after the grant came back the wallet holds %v (%v), want 10", mine.Balance("total"), err)
	}
}
