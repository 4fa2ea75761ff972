package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/cluster"
	"gantry/cluster/spend"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/pipeline/budget"
)

// spendSyncInterval is how often an agent commits its settled spend and
// tops up its grants. It bounds how stale the cluster's record of spend is
// and how long a busy agent waits for a new slice.
const spendSyncInterval = 500 * time.Millisecond

// spendSide enforces budgets across the cluster: the gateway's ledger
// admits calls against this agent's grants, and a loop of the cluster side
// keeps the grants topped up and commits spend.
type spendSide struct {
	ledger *budget.Granted
	wallet *spend.Wallet
	// syncMu serialises syncs: two at once could send the same grant
	// request id and credit its one grant twice.
	syncMu sync.Mutex
	// grant is each tracked budget's balance after the last sync;
	// failures counts syncs that could not reach a leader or were refused.
	grant    *prometheus.GaugeVec
	failures prometheus.Counter
	// burn samples the cluster's committed spend of each tracked budget.
	burn burnMeter
	// synced is closed after the first sync that reached the cluster: from
	// then on the wallet holds what it was granted.
	synced     chan struct{}
	syncedOnce sync.Once
	unsentPath string
}

// unsentFile keeps spend an agent could not commit when it stopped; the
// next start sends it first.
const unsentFile = "spend-unsent.json"

// keep writes the wallet's uncommitted spend to the data dir.
func (sp *spendSide) keep(log *slog.Logger) {
	batches := sp.wallet.Unsent()
	if len(batches) == 0 {
		return
	}
	b, _ := json.Marshal(batches)
	if err := os.WriteFile(sp.unsentPath, b, 0o600); err != nil {
		log.Error("cannot keep the spend not yet committed; it is lost", "err", err, "batches", len(batches))
		return
	}
	log.Info("spend not yet committed kept for the next start", "file", sp.unsentPath, "batches", len(batches))
}

// requeueKept gives the wallet the spend a previous run kept.
func (sp *spendSide) requeueKept() error {
	b, err := os.ReadFile(sp.unsentPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var batches []spend.Batch
	if err := json.Unmarshal(b, &batches); err != nil {
		return fmt.Errorf("%s: %w", sp.unsentPath, err)
	}
	sp.wallet.Requeue(batches)
	return nil
}

// waitFirstSync waits, at most d, until the wallet has synced once.
func (sp *spendSide) waitFirstSync(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-sp.synced:
	case <-t.C:
	case <-ctx.Done():
	}
}

// grantTracked reports whether the cluster keeps scope s: budgets other than
// per-user ones, by their own name (a key's lifetime cap is not a
// configured budget and stays per agent).
func grantTracked(s budget.Scope) bool {
	return spend.Tracked(s.Budget) && s.Key == s.Budget.Name
}

// wireSpend puts the grant-backed ledger in front of the local one once
// the agent opens its cluster node, lone agents included: spend committed
// to the cluster's log outlives a restart, where a local ledger's would
// start from nothing.
func (s *Server) wireSpend() {
	w := spend.NewWallet(s.opts.NodeID, 0)
	s.spend = &spendSide{ledger: budget.NewGranted(s.ledger, w, grantTracked), wallet: w, synced: make(chan struct{}),
		unsentPath: filepath.Join(s.opts.DataDir, unsentFile),
		grant: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "gantry", Name: "budget_grant_usd",
			Help: "What this agent may still reserve of each budget enforced across the cluster."}, []string{"budget"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "gantry", Name: "budget_grant_sync_failures_total",
			Help: "Syncs of budget grants and spend that failed; the agent spends only what it holds meanwhile."}),
	}
	s.metrics.Registry().MustRegister(s.spend.grant, s.spend.failures)
	s.gwLedger.use(s.spend.ledger)
	if err := s.spend.requeueKept(); err != nil {
		s.log.Error("cannot read the spend kept by the last run; it is not committed", "err", err)
	}
}

// slice is how much of b to ask for at a time: the cluster's default, but
// at least two of the largest calls seen, so one slice always covers a
// call; never more than the limit.
func (sp *spendSide) slice(b config.Budget) float64 {
	return min(b.LimitUSD, max(cluster.DefaultSlice(b), 2*sp.ledger.Demand(b.Name)))
}

// sync commits settled spend and tops up grants once.
func (sp *spendSide) sync(ctx context.Context, node *cluster.Node) error {
	sp.syncMu.Lock()
	defer sp.syncMu.Unlock()
	err := node.SyncWallet(ctx, sp.wallet, sp.slice)
	if err != nil {
		sp.failures.Inc()
	} else {
		sp.syncedOnce.Do(func() {
			// What an earlier run kept is committed now.
			os.Remove(sp.unsentPath)
			close(sp.synced)
		})
	}
	st := node.State()
	sp.observe(st.Config.Budgets)
	sp.burn.observe(st, time.Now())
	return err
}

// observe sets the grant gauge of every tracked budget of budgets.
func (sp *spendSide) observe(budgets []config.Budget) {
	sp.grant.Reset()
	for _, b := range budgets {
		if spend.Tracked(b) {
			sp.grant.WithLabelValues(b.Name).Set(sp.wallet.Balance(b.Name))
		}
	}
}

// syncSpend keeps the wallet's grants topped up and commits its spend
// until ctx ends. Until the agent's last batch is read back from the
// cluster the wallet holds nothing and tracked budgets refuse.
func (r *replica) syncSpend(ctx context.Context) {
	sp, node := r.spend, r.Node
	r.runBatches(ctx, batchLoop{
		interval: spendSyncInterval,
		resume:   func(st *state.State) { sp.wallet.Resume(st.Spend.Seqs[r.nodeID]) },
		sync:     func(ctx context.Context) error { return sp.sync(ctx, node) },
		failing:  "cannot sync budget grants; spending only what this agent holds",
		healed:   "budget grants in sync again",
	})
}

// flushSpend commits what the agent spent and gives its grants back before
// it leaves the cluster, once no call is in flight. A grant it cannot give
// back lapses with the budget's period.
func (r *replica) flushSpend(ctx context.Context) {
	if r.spend == nil {
		return
	}
	r.spend.syncMu.Lock()
	defer r.spend.syncMu.Unlock()
	if err := r.CloseWallet(ctx, r.spend.wallet); err != nil {
		r.spend.keep(r.log)
		r.log.Warn("could not commit the last spend batch and return the grants before leaving", "err", err)
	}
}
