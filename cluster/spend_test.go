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
