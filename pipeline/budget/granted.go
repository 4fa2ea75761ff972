package budget

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"gantry/config"
)

// Wallet holds the grants an agent received of budgets enforced across a
// cluster (cluster/spend.Wallet). Its methods never wait on the network.
type Wallet interface {
	// Reserve takes amount from budget's grant, or reports false.
	Reserve(budget string, amount float64) bool
	// Settle ends a reservation of reserved that cost actual; the actual
	// spend goes into the next batch committed to the cluster.
	Settle(budget string, reserved, actual float64)
	// Return gives back a reservation that spent nothing.
	Return(budget string, amount float64)
}

// Granted is the Ledger of an agent in a cluster. It composes a Local
// ledger, which keeps every local guarantee (atomic admission, idempotent
// settle, actions, alerts, the configured limit as an upper bound on this
// agent) with a Wallet: a scope the cluster tracks admits a call only if
// the wallet's grant of that budget covers the call's worst case. Settle
// moves the actual spend into the wallet's next batch; Release and the
// reaper give the rest back. See DESIGN.md for the bound this gives.
type Granted struct {
	local   *Local
	wallet  Wallet
	tracked func(Scope) bool

	// mu serialises admission, so a call is never refused because of
	// another call's grant reservation that is being rolled back.
	mu     sync.Mutex
	holds  map[string]*grantHold
	done   endedSet[*grantEnded] // released and reaped ids, for a late settle
	demand map[string]float64    // per budget, the largest worst case asked for
}

var _ Ledger = (*Granted)(nil)

type grantHold struct {
	held     []string // tracked budgets whose grant holds amount
	unheld   []string // alert and downgrade budgets admitted beyond the grant
	amount   float64
	deadline time.Time
}

type grantEnded struct {
	budgets []string // budgets a late Settle still charges; nil once settled
}

// NewGranted returns a ledger enforcing tracked scopes against w's grants
// and every scope against local. tracked reports whether the cluster keeps
// a scope's budget; the others (per-user budgets, key caps) are local only.
// Call Run instead of local.Run.
func NewGranted(local *Local, w Wallet, tracked func(Scope) bool) *Granted {
	return &Granted{local: local, wallet: w, tracked: tracked,
		holds: map[string]*grantHold{}, demand: map[string]float64{}}
}

// GrantShortError is a refusal because this agent holds no grant covering
// the call, though the budget may have money left elsewhere in the cluster.
// It unwraps to an ExceededError, so callers treat it as one.
type GrantShortError struct {
	Exceeded *ExceededError
}

func (e *GrantShortError) Error() string {
	return fmt.Sprintf("budget %q: this agent's grant does not cover %.6f USD", e.Exceeded.Budget, e.Exceeded.AmountUSD)
}

func (e *GrantShortError) Unwrap() error { return e.Exceeded }

// Reserve implements Ledger.
func (g *Granted) Reserve(ctx context.Context, r Reservation) (Hold, error) {
	if err := r.check(ctx); err != nil {
		return Hold{}, err
	}
	scopes := dedupe(r.Scopes)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.holds[r.RequestID] != nil || g.done.has(r.RequestID) || g.local.settled(r.RequestID) {
		return Hold{}, fmt.Errorf("%w: %s", ErrDuplicate, r.RequestID)
	}
	h := &grantHold{amount: r.AmountUSD}
	rollback := func() {
		for _, b := range h.held {
			g.wallet.Return(b, h.amount)
		}
	}
	var downgrade *DowngradeError
	for _, s := range scopes {
		if !g.tracked(s) {
			continue
		}
		name := s.Budget.Name
		g.demand[name] = max(g.demand[name], r.AmountUSD)
		if g.wallet.Reserve(name, r.AmountUSD) {
			h.held = append(h.held, name)
			continue
		}
		switch s.Budget.BudgetAction() {
		case config.BudgetAlert:
			h.unheld = append(h.unheld, name)
		case config.BudgetDowngrade:
			if !r.Downgraded && downgrade == nil {
				downgrade = &DowngradeError{Budget: name, Route: s.Budget.DowngradeRoute}
			}
			h.unheld = append(h.unheld, name)
		default:
			rollback()
			return Hold{}, &GrantShortError{Exceeded: &ExceededError{Budget: name, Scope: s.Key,
				LimitUSD: s.Budget.LimitUSD, AmountUSD: r.AmountUSD}}
		}
	}
	if downgrade != nil {
		rollback()
		return Hold{}, downgrade
	}
	r.Scopes = scopes
	hold, err := g.local.Reserve(ctx, r)
	if err != nil {
		rollback()
		return Hold{}, err
	}
	for _, b := range h.unheld {
		if s := scopeOf(scopes, b); s.Budget.BudgetAction() == config.BudgetAlert && !contains(hold.Alerts, b) {
			hold.Alerts = append(hold.Alerts, b)
		}
	}
	h.deadline = r.Deadline
	if h.deadline.IsZero() {
		h.deadline = g.local.opts.Clock().Add(g.local.opts.HoldTTL)
	}
	g.holds[r.RequestID] = h
	return hold, nil
}

// Settle implements Ledger. A Settle after Release or the reaper charges
// the actual cost to the budgets' next batch all the same.
func (g *Granted) Settle(requestID string, actualUSD float64) error {
	if !(actualUSD > 0) {
		actualUSD = 0
	}
	actualUSD = math.Min(actualUSD, config.MaxBudgetUSD)
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.local.Settle(requestID, actualUSD)
	if h := g.holds[requestID]; h != nil {
		delete(g.holds, requestID)
		for _, b := range h.held {
			g.wallet.Settle(b, h.amount, actualUSD)
		}
		for _, b := range h.unheld {
			g.wallet.Settle(b, 0, actualUSD)
		}
		g.markDone(requestID, nil, g.local.opts.Clock())
		return err
	}
	if d := g.done.get(requestID); d != nil {
		for _, b := range d.budgets {
			g.wallet.Settle(b, 0, actualUSD)
		}
		d.budgets = nil
	}
	return err
}

// Release implements Ledger.
func (g *Granted) Release(requestID string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.local.Release(requestID)
	if h := g.holds[requestID]; h != nil {
		g.release(requestID, h, g.local.opts.Clock())
	}
	return err
}

func (g *Granted) release(id string, h *grantHold, now time.Time) {
	delete(g.holds, id)
	for _, b := range h.held {
		g.wallet.Return(b, h.amount)
	}
	g.markDone(id, append(h.held, h.unheld...), now)
}

func (g *Granted) markDone(id string, budgets []string, now time.Time) {
	if budgets == nil {
		// Settled: nothing is left to charge late, and the local ledger,
		// which settled it too, remembers the id for Reserve.
		return
	}
	g.done.add(id, &grantEnded{budgets: budgets}, now, g.local.opts.MaxDone)
}

// Reap frees reservations whose deadline passed, in the local ledger and
// in the wallet, and forgets ended request ids older than the retention.
// It returns how many reservations the local ledger freed.
func (g *Granted) Reap(now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.local.Reap(now)
	for id, h := range g.holds {
		if now.After(h.deadline) {
			g.release(id, h, now)
		}
	}
	cutoff := now.Add(-g.local.opts.DoneRetention)
	g.done.forget(cutoff)
	return n
}

// Run reaps expired reservations every ReapInterval of the local ledger
// until ctx is done.
func (g *Granted) Run(ctx context.Context) {
	every(ctx, g.local.opts.ReapInterval, func() { g.Reap(g.local.opts.Clock()) })
}

// Demand is the largest worst case a call asked of budget, so grants can
// be sized to cover at least one call.
// Ended returns the request ids the grant side remembers as ended, in
// front of the local ledger's (Stats), and the bytes they take: only those
// released or reaped, which a late settle still charges.
func (g *Granted) Ended() (ids, bytes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	exact, _ := g.done.size()
	return exact, endedExactBytes * exact
}

func (g *Granted) Demand(budget string) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.demand[budget]
}

// OpenHolds counts reservations holding grant; the local ledger's Stats
// count all of them.
func (g *Granted) OpenHolds() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.holds)
}

func scopeOf(scopes []Scope, budget string) Scope {
	for _, s := range scopes {
		if s.Budget.Name == budget {
			return s
		}
	}
	return Scope{}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
