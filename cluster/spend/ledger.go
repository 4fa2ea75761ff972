// Package spend keeps budgets bounded across the cluster without putting
// Raft on the request path.
//
// The leader grants each agent slices of a budget's remaining amount; an
// agent serves requests only against what it holds a grant for (reserving the
// worst-case cost of each call), and commits what it actually spent in
// batches. The replicated Ledger records, per budget and period, the spend
// committed and each agent's grant; a grant is never larger than the limit
// minus committed spend minus every other outstanding grant, so the sum of
// what all agents can spend stays within the limit even while some of them
// cannot reach the leader. An agent cut off from the leader keeps spending
// its grant and then blocks; it never spends beyond it.
//
// Batches are idempotent by (agent, sequence): an agent retries a batch with
// the same sequence until it is acknowledged, and the ledger ignores any
// sequence it has already seen.
//
// The Ledger is immutable like the rest of the replicated state: Grant and
// Commit return a new Ledger. Wallet is the agent-side half and does no I/O.
package spend

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"gantry/config"
)

// Bounds of the ledger.
const (
	// MaxAgents bounds the agents the ledger tracks batch sequences for.
	MaxAgents = 1024
	// MaxGrantsPerBudget bounds the agents holding a grant of one budget.
	MaxGrantsPerBudget = 256
	// MaxItems bounds one batch.
	MaxItems = 1000
)

// ErrInvalid marks a grant or batch that cannot be applied.
var ErrInvalid = errors.New("invalid spend")

// Ledger is the replicated record of budget spend.
type Ledger struct {
	// Accounts by budget name.
	Accounts map[string]Account `json:"accounts,omitempty"`
	// Seqs holds each agent's last committed batch sequence.
	Seqs map[string]uint64 `json:"seqs,omitempty"`
}

// Account is one budget's spend in its current period.
type Account struct {
	Period string           `json:"period"`
	Spent  float64          `json:"spent"`
	Grants map[string]Grant `json:"grants,omitempty"`
}

// Grant is what an agent may spend of a budget this period, and what it
// committed against it.
type Grant struct {
	Granted float64 `json:"granted"`
	Used    float64 `json:"used"`
}

// Outstanding is what the agent may still spend.
func (g Grant) Outstanding() float64 { return max(0, g.Granted-g.Used) }

// Item is the spend of one budget in a batch.
type Item struct {
	Budget string  `json:"budget"`
	Amount float64 `json:"amount"`
}

// Tracked reports whether the ledger keeps b. Budgets of each end user are
// too many to replicate; agents enforce them locally.
func Tracked(b config.Budget) bool { return b.Scope != config.ScopeUser }

// PeriodKey names the period of b that t falls in; spend resets when it
// changes. Day and month roll over at midnight UTC.
func PeriodKey(b config.Budget, t time.Time) string {
	t = t.UTC()
	switch b.Period {
	case config.PeriodDay:
		return t.Format("2006-01-02")
	case config.PeriodMonth:
		return t.Format("2006-01")
	}
	return "total"
}

// account returns b's account, reset when the period turned.
func (l Ledger) account(b config.Budget, now time.Time) Account {
	key := PeriodKey(b, now)
	a, ok := l.Accounts[b.Name]
	if !ok || a.Period != key {
		return Account{Period: key}
	}
	return a
}

// Available is what can still be granted of b at now.
func (l Ledger) Available(b config.Budget, now time.Time) float64 {
	a := l.account(b, now)
	out := b.LimitUSD - a.Spent
	// In a fixed order: floating-point subtraction depends on it, and
	// every replica must grant exactly the same amount.
	for _, agent := range slices.Sorted(maps.Keys(a.Grants)) {
		out -= a.Grants[agent].Outstanding()
	}
	return max(0, out)
}

func (l Ledger) with(name string, a Account) Ledger {
	accts := maps.Clone(l.Accounts)
	if accts == nil {
		accts = map[string]Account{}
	}
	accts[name] = a
	l.Accounts = accts
	return l
}

// Grant gives agent up to want more of b, as much as is available, and
// returns the new ledger and the amount granted (possibly 0).
func (l Ledger) Grant(b config.Budget, agent string, want float64, now time.Time) (Ledger, float64, error) {
	if !Tracked(b) {
		return l, 0, fmt.Errorf("%w: budget %s is enforced by each agent, not granted", ErrInvalid, b.Name)
	}
	if agent == "" || !finite(want) || want < 0 || want > config.MaxBudgetUSD {
		return l, 0, fmt.Errorf("%w: grant of %v to %q", ErrInvalid, want, agent)
	}
	a := l.account(b, now)
	granted := min(want, l.Available(b, now))
	g, held := a.Grants[agent]
	if !held && len(a.Grants) >= MaxGrantsPerBudget {
		return l, 0, fmt.Errorf("%w: budget %s already has %d agents holding grants", ErrInvalid, b.Name, MaxGrantsPerBudget)
	}
	g.Granted += granted
	a.Grants = maps.Clone(a.Grants)
	if a.Grants == nil {
		a.Grants = map[string]Grant{}
	}
	a.Grants[agent] = g
	return l.with(b.Name, a), granted, nil
}

// Commit records agent's batch seq. A seq at or below the agent's last one
// was committed before: the ledger is returned unchanged with dup set.
// Spend of budgets the configuration no longer has, or that are not
// tracked, is dropped.
func (l Ledger) Commit(agent string, seq uint64, items []Item, budgets func(string) (config.Budget, bool), now time.Time) (next Ledger, dup bool, err error) {
	if agent == "" || seq == 0 {
		return l, false, fmt.Errorf("%w: batch needs an agent and a sequence from 1", ErrInvalid)
	}
	if len(items) > MaxItems {
		return l, false, fmt.Errorf("%w: %d items, more than %d", ErrInvalid, len(items), MaxItems)
	}
	last, known := l.Seqs[agent]
	if seq <= last {
		return l, true, nil
	}
	if !known && len(l.Seqs) >= MaxAgents {
		return l, false, fmt.Errorf("%w: more than %d agents report spend", ErrInvalid, MaxAgents)
	}
	for _, it := range items {
		if !finite(it.Amount) || it.Amount < 0 || it.Amount > config.MaxBudgetUSD {
			return l, false, fmt.Errorf("%w: amount %v for budget %s", ErrInvalid, it.Amount, it.Budget)
		}
	}
	next = l
	for _, it := range items {
		b, ok := budgets(it.Budget)
		if !ok || !Tracked(b) || it.Amount == 0 {
			continue
		}
		a := next.account(b, now)
		a.Spent += it.Amount
		g := a.Grants[agent]
		g.Used += it.Amount
		a.Grants = maps.Clone(a.Grants)
		if a.Grants == nil {
			a.Grants = map[string]Grant{}
		}
		a.Grants[agent] = g
		next = next.with(b.Name, a)
	}
	seqs := maps.Clone(next.Seqs)
	if seqs == nil {
		seqs = map[string]uint64{}
	}
	seqs[agent] = seq
	next.Seqs = seqs
	return next, false, nil
}

// ReturnGrants drops what agent still holds of every budget: an agent that
// leaves gives back its grants, so the others can be granted them. What it
// spent stays spent.
func (l Ledger) ReturnGrants(agent string) Ledger {
	var accts map[string]Account // a copy, made at the first change
	for name, a := range l.Accounts {
		if _, ok := a.Grants[agent]; !ok {
			continue
		}
		if accts == nil {
			accts = maps.Clone(l.Accounts)
		}
		a.Grants = maps.Clone(a.Grants)
		delete(a.Grants, agent)
		accts[name] = a
	}
	if accts != nil {
		l.Accounts = accts
	}
	return l
}

// Prune drops accounts of budgets the configuration no longer has.
func (l Ledger) Prune(exists func(string) bool) Ledger {
	var gone []string
	for name := range l.Accounts {
		if !exists(name) {
			gone = append(gone, name)
		}
	}
	if len(gone) == 0 {
		return l
	}
	accts := maps.Clone(l.Accounts)
	for _, name := range gone {
		delete(accts, name)
	}
	l.Accounts = accts
	return l
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Check reports whether a decoded ledger keeps the bounds its readers rely
// on: how many accounts, grants and agents, and amounts that are finite
// and not negative, so Available and the burn rates never meet a NaN.
func (l Ledger) Check() error {
	if len(l.Accounts) > config.MaxItems || len(l.Seqs) > MaxAgents {
		return fmt.Errorf("%w: %d accounts and %d agents, bounds %d and %d", ErrInvalid, len(l.Accounts), len(l.Seqs), config.MaxItems, MaxAgents)
	}
	amount := func(v float64) bool { return finite(v) && v >= 0 }
	for name, a := range l.Accounts {
		if len(a.Grants) > MaxGrantsPerBudget {
			return fmt.Errorf("%w: budget %s has %d grants, more than %d", ErrInvalid, name, len(a.Grants), MaxGrantsPerBudget)
		}
		if !amount(a.Spent) {
			return fmt.Errorf("%w: budget %s spent %v", ErrInvalid, name, a.Spent)
		}
		for agent, g := range a.Grants {
			if !amount(g.Granted) || !amount(g.Used) {
				return fmt.Errorf("%w: budget %s grant of %s: %v granted, %v used", ErrInvalid, name, agent, g.Granted, g.Used)
			}
		}
	}
	return nil
}
