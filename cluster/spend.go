package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/spend"
	"gantry/config"
)

// DefaultSlice is how much of a budget an agent asks for at a time: a
// twentieth of the limit, so a handful of agents share a budget without
// one of them holding most of it.
func DefaultSlice(b config.Budget) float64 { return b.LimitUSD / 20 }

// minGrantUSD is the least worth asking for: less pays for no call.
const minGrantUSD = 1e-9

// SyncWallet commits w's settled spend as one batch and tops up its grants:
// every budget the ledger tracks whose balance fell below half a slice gets
// a request for another slice. The agent calls it from a loop it owns, say
// once a second; it never runs on the request path. slice may be nil for
// DefaultSlice. Without a leader it returns an error wrapping ErrNoLeader
// and w keeps serving from what it holds.
func (n *Node) SyncWallet(ctx context.Context, w *spend.Wallet, slice func(config.Budget) float64) error {
	if slice == nil {
		slice = DefaultSlice
	}
	var errs []error
	// Batches kept from before a restart go first, all of them: one may
	// be final and give back grants, and must not take a grant made after
	// it. Then one batch of what settled since.
	for range w.Kept() + 1 {
		b, ok := w.NextBatch()
		if !ok {
			break
		}
		if err := n.commitBatch(ctx, w, b); err != nil {
			return err
		}
	}
	if w.Closed() {
		// The agent is leaving and gave its grants back.
		return errors.Join(errs...)
	}
	now := time.Now().UTC()
	st := n.State()
	for _, b := range st.Config.Budgets {
		if !spend.Tracked(b) {
			continue
		}
		w.Expire(b.Name, spend.PeriodKey(b, now))
		want := slice(b)
		if want <= 0 || w.Balance(b.Name) >= want/2 {
			continue
		}
		// A spent budget is not asked again until the replicated ledger
		// has something to give (a grant returned, a new period): each
		// request is a write to the cluster's log, at every top-up of every
		// agent, for as long as the budget stays spent.
		if st.Spend.Available(b, now) < minGrantUSD {
			continue
		}
		e, err := command.New(command.GrantSpend, command.Grant{Budget: b.Name, Agent: n.opts.NodeID, Amount: want})
		if err != nil {
			return err
		}
		e.RequestID = w.GrantRequestID(b.Name)
		e.Actor = "node:" + n.opts.NodeID
		e.Time = now
		res, err := n.Apply(ctx, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("grant of budget %s: %w", b.Name, err))
			continue
		}
		// The ledger's period is the one of the command's time, which a
		// retry keeps; now is that time.
		w.Credit(b.Name, spend.PeriodKey(b, now), res.Amount)
	}
	return errors.Join(errs...)
}

// CloseWallet closes w and commits everything it holds: the spend not yet
// committed, then the final batch that gives the agent's grants back to the
// budgets. An agent calls it when it leaves, after its last call ended.
func (n *Node) CloseWallet(ctx context.Context, w *spend.Wallet) error {
	w.Close()
	for {
		b, ok := w.NextBatch()
		if !ok {
			return nil
		}
		if err := n.commitBatch(ctx, w, b); err != nil {
			return err
		}
	}
}

func (n *Node) commitBatch(ctx context.Context, w *spend.Wallet, b spend.Batch) error {
	p := command.Spend{Batch: b}
	e, err := command.New(command.CommitSpend, p)
	if err != nil {
		return err
	}
	e.RequestID = fmt.Sprintf("spend:%s:%d", b.Agent, b.Seq)
	e.Actor = "node:" + n.opts.NodeID
	if _, err := n.Apply(ctx, e); err != nil {
		return fmt.Errorf("commit spend batch %d: %w", b.Seq, err)
	}
	w.Acked(b.Seq)
	return nil
}
