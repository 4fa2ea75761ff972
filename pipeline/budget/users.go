package budget

import (
	"cmp"
	"errors"
	"hash/maphash"
	"slices"
	"time"
)

// Per-user budgets keep a counter per end user, and the end user is a name
// the caller chooses. A Local ledger keeps at most MaxUsers of them. When
// it is full, a new user's counter takes the place of some users without a
// reservation in flight, and their spend this period folds into a
// conservative aggregate of their budget (forgotten): a count-min sketch
// that may overstate a user's spend, never understate it. A user who comes
// back starts from the sketch's estimate, so being forgotten never buys a
// user more budget; the price is that a returning user, or a new one whose
// hashes collide with heavy spenders, may be refused somewhat early. When
// every counter has a reservation in flight there is no one to forget, and
// a new user is refused with ErrUsersFull.

// DefaultMaxUsers bounds the per-user counters of a Local ledger.
const DefaultMaxUsers = 100_000

// ErrUsersFull: the ledger tracks its maximum of end users and each of them
// has a reservation in flight.
var ErrUsersFull = errors.New("budget ledger tracks as many end users as it can")

// Sketch dimensions: 4 rows of 16,384 counters, 512 KiB per per-user budget
// that ever forgot a user. With forgotten spend F in a period, an estimate
// exceeds the truth by at most e·F/16,384 (about F/6,000) with probability
// 1 − e⁻⁴ (98%), and never falls below it.
const (
	sketchDepth = 4
	sketchWidth = 1 << 14
)

// forgotten is the spend of users a budget's counters let go, this period.
type forgotten struct {
	period string
	start  time.Time
	seed   maphash.Seed
	rows   [sketchDepth][sketchWidth]int64
}

func newForgotten(period string, start time.Time) *forgotten {
	return &forgotten{period: period, start: start, seed: maphash.MakeSeed()}
}

// slots are the user's counter in each row (Kirsch–Mitzenmacher: two
// halves of one hash make all four indexes).
func (f *forgotten) slots(user string) [sketchDepth]uint32 {
	h := maphash.String(f.seed, user)
	h1, h2 := uint32(h), uint32(h>>32)|1
	var out [sketchDepth]uint32
	for i := range out {
		out[i] = (h1 + uint32(i)*h2) % sketchWidth
	}
	return out
}

// estimate is at least what user spent before it was forgotten.
func (f *forgotten) estimate(user string) int64 {
	est := int64(-1)
	for i, s := range f.slots(user) {
		if v := f.rows[i][s]; est < 0 || v < est {
			est = v
		}
	}
	return est
}

// add folds amount of user's spend in, raising each slot only as far as
// the new estimate needs (conservative update keeps estimates tighter).
func (f *forgotten) add(user string, amount int64) {
	if amount <= 0 {
		return
	}
	slots := f.slots(user)
	want := f.estimate(user) + amount
	for i, s := range slots {
		f.rows[i][s] = max(f.rows[i][s], want)
	}
}

// restore is what a user's new counter starts from: the spend the budget
// forgot of that user this period.
func (l *Local) restore(budget, user, period string, start time.Time) int64 {
	f := l.forgotten[budget]
	if f == nil || f.period != period || !f.start.Equal(start) {
		return 0
	}
	return f.estimate(user)
}

// makeRoom lets go of users without a reservation in flight until a new one
// fits, a sixteenth of the bound at a time so the work spreads over many
// new users. Go's map order picks whom. It reports false when no one can
// go.
func (l *Local) makeRoom(now time.Time) bool {
	if l.users < l.opts.MaxUsers {
		return true
	}
	want := max(1, l.opts.MaxUsers/16)
	for key, c := range l.counters {
		if want == 0 {
			break
		}
		if c.user == "" || c.reserved != 0 {
			continue
		}
		l.forget(key, c, now)
		want--
	}
	return l.users < l.opts.MaxUsers
}

// forget drops a user's counter and folds what it spent this period into
// its budget's aggregate.
func (l *Local) forget(key string, c *counter, now time.Time) {
	delete(l.counters, key)
	l.users--
	l.forgot++
	start := periodStart(c.period, now)
	if !c.start.Equal(start) {
		return // a past period's spend counts no more
	}
	f := l.forgotten[c.budget]
	if f == nil || f.period != c.period || !f.start.Equal(start) {
		f = newForgotten(c.period, start)
		l.forgotten[c.budget] = f
	}
	// The counter started from the estimate; only what it added is new.
	f.add(c.user, c.spent-c.base)
}

// dropStaleForgotten frees aggregates of past periods.
func (l *Local) dropStaleForgotten(now time.Time) {
	for b, f := range l.forgotten {
		if f.period != "" && !f.start.Equal(periodStart(f.period, now)) {
			delete(l.forgotten, b)
		}
	}
}

// Top lists the counters of budgets that are not per user, and of each
// per-user budget the n users who spent most, sorted by scope key; users
// is how many counters of end users the ledger holds in all. An admin view
// of a budget with a hundred thousand users wants the heaviest, not all.
func (l *Local) Top(n int) (out []Usage, users int) {
	byBudget := map[string][]Usage{}
	l.mu.Lock()
	for k, c := range l.counters {
		u := Usage{Scope: k, Budget: c.budget, PeriodStart: c.start, SpentUSD: toUSD(c.spent), ReservedUSD: toUSD(c.reserved)}
		if c.user == "" {
			out = append(out, u)
		} else {
			byBudget[c.budget] = append(byBudget[c.budget], u)
		}
	}
	users = l.users
	l.mu.Unlock()
	for _, us := range byBudget {
		slices.SortFunc(us, func(a, b Usage) int {
			return cmp.Or(cmp.Compare(b.SpentUSD+b.ReservedUSD, a.SpentUSD+a.ReservedUSD), cmp.Compare(a.Scope, b.Scope))
		})
		out = append(out, us[:min(n, len(us))]...)
	}
	slices.SortFunc(out, func(a, b Usage) int { return cmp.Compare(a.Scope, b.Scope) })
	return out, users
}
