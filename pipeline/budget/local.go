package budget

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gantry/config"
)

// Defaults of a Local ledger.
const (
	DefaultHoldTTL       = 10 * time.Minute
	DefaultDoneRetention = time.Hour
	DefaultMaxDone       = 1 << 20
	DefaultMaxHolds      = 1 << 20
	DefaultReapInterval  = time.Second
)

// ErrFull: the ledger holds its maximum number of open reservations.
var ErrFull = fmt.Errorf("%w: too many open reservations", ErrInvalid)

// Options configure a Local ledger. Zero values take the defaults.
type Options struct {
	// Clock is the wall clock; tests inject their own.
	Clock func() time.Time
	// HoldTTL is the deadline of a reservation that names none.
	HoldTTL time.Duration
	// DoneRetention is how long ended request ids are remembered, so a
	// retried Settle or Release is recognised.
	DoneRetention time.Duration
	// MaxDone and MaxHolds bound memory; so does MaxUsers, the counters
	// of per-user budgets (see users.go for what happens at the bound).
	MaxDone  int
	MaxHolds int
	MaxUsers int
	// ReapInterval is how often Run reaps expired holds.
	ReapInterval time.Duration
	// OnAlert receives alerts after the ledger's lock is released. It must
	// not block for long; hand the alert to a queue.
	OnAlert func(Alert)
}

// Local is an in-memory Ledger for one agent. All state sits behind one
// mutex: admission across several budgets must be atomic, and the critical
// sections are a few map lookups and additions.
type Local struct {
	opts Options

	mu       sync.Mutex
	counters map[string]*counter
	holds    map[string]*hold
	done     endedSet[*ended] // released and reaped ids, for a late settle
	seen     seenSet          // settled ids
	// users counts the counters of end users; forgotten holds, per
	// budget, the spend of the users whose counters were let go.
	users     int
	forgot    uint64
	forgotten map[string]*forgotten

	reaped atomic.Uint64

	// journal, when set by tests, sees every decision in lock order.
	journal func(journalEntry)
}

var _ Ledger = (*Local)(nil)

// Amounts are kept in nano-dollars so sums are exact.
const nanos = 1e9

func toNanosCeil(usd float64) int64  { return int64(math.Ceil(usd * nanos)) }
func toNanosRound(usd float64) int64 { return int64(math.Round(usd * nanos)) }
func toUSD(n int64) float64          { return float64(n) / nanos }

type counter struct {
	budget   string
	user     string // the end user of a per-user budget, else empty
	period   string
	start    time.Time
	spent    int64
	reserved int64
	base     int64 // what a returning user's spend started from
	// alerts already sent in this period
	softSent, exceededSent bool
}

type hold struct {
	scopes   []Scope
	amount   int64
	deadline time.Time
}

const (
	endSettled = iota
	endReleased
	endReaped
)

type ended struct {
	state  int
	scopes []Scope
}

type journalEntry struct {
	op        string // reserve, settle, release, reap
	requestID string
	scopes    []Scope // reserve only
	amount    int64   // reserved amount (reserve) or actual (settle)
	admitted  bool
	late      bool // settle after release or reap
}

// NewLocal returns an empty in-memory ledger. Call Run in a goroutine the
// caller owns to reap expired reservations.
func NewLocal(opts Options) *Local {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.HoldTTL <= 0 {
		opts.HoldTTL = DefaultHoldTTL
	}
	if opts.DoneRetention <= 0 {
		opts.DoneRetention = DefaultDoneRetention
	}
	if opts.MaxDone <= 0 {
		opts.MaxDone = DefaultMaxDone
	}
	if opts.MaxHolds <= 0 {
		opts.MaxHolds = DefaultMaxHolds
	}
	if opts.ReapInterval <= 0 {
		opts.ReapInterval = DefaultReapInterval
	}
	if opts.MaxUsers <= 0 {
		opts.MaxUsers = DefaultMaxUsers
	}
	return &Local{
		opts:      opts,
		counters:  map[string]*counter{},
		holds:     map[string]*hold{},
		forgotten: map[string]*forgotten{},
	}
}

// counter returns the counter of s, rolled over to the period containing
// now. Reserved amounts survive a rollover: those requests are still in
// flight and settle into the new period.
func (l *Local) counter(s Scope, now time.Time) *counter {
	start := periodStart(s.Budget.Period, now)
	c := l.counters[s.Key]
	if c == nil {
		c = &counter{budget: s.Budget.Name, user: s.User, period: s.Budget.Period, start: start}
		if s.User != "" {
			// Admission made room first; a late settle may go past the
			// bound by one, and the next new user makes room again.
			c.spent = l.restore(s.Budget.Name, s.User, c.period, start)
			c.base = c.spent
			l.users++
		}
		l.counters[s.Key] = c
	}
	c.budget = s.Budget.Name
	if c.period != s.Budget.Period || !c.start.Equal(start) {
		c.period, c.start = s.Budget.Period, start
		c.spent, c.base = 0, 0
		c.softSent, c.exceededSent = false, false
	}
	return c
}

// Reserve implements Ledger.
func (l *Local) Reserve(ctx context.Context, r Reservation) (Hold, error) {
	if err := r.check(ctx); err != nil {
		return Hold{}, err
	}
	scopes := dedupe(r.Scopes)
	amount := toNanosCeil(r.AmountUSD)

	var alerts []Alert
	l.mu.Lock()
	hold, err := l.reserveLocked(r, scopes, amount, &alerts)
	if l.journal != nil {
		l.journal(journalEntry{op: "reserve", requestID: r.RequestID, scopes: scopes, amount: amount, admitted: err == nil})
	}
	l.mu.Unlock()
	l.emit(alerts)
	return hold, err
}

func (l *Local) reserveLocked(r Reservation, scopes []Scope, amount int64, alerts *[]Alert) (Hold, error) {
	if l.holds[r.RequestID] != nil || l.done.has(r.RequestID) || l.seen.has(r.RequestID) {
		return Hold{}, fmt.Errorf("%w: %s", ErrDuplicate, r.RequestID)
	}
	if len(l.holds) >= l.opts.MaxHolds {
		return Hold{}, ErrFull
	}
	now := l.opts.Clock()
	for _, s := range scopes {
		if s.User != "" && l.counters[s.Key] == nil && !l.makeRoom(now) {
			return Hold{}, ErrUsersFull
		}
	}
	var downgrade *DowngradeError
	var over []int
	for i, s := range scopes {
		c := l.counter(s, now)
		limit := toNanosRound(s.Budget.LimitUSD)
		if c.spent+c.reserved+amount <= limit {
			continue
		}
		switch s.Budget.BudgetAction() {
		case config.BudgetAlert:
			over = append(over, i)
		case config.BudgetDowngrade:
			if !r.Downgraded && downgrade == nil {
				downgrade = &DowngradeError{Budget: s.Budget.Name, Route: s.Budget.DowngradeRoute}
			}
		default:
			return Hold{}, &ExceededError{
				Budget: s.Budget.Name, Scope: s.Key, LimitUSD: toUSD(limit),
				SpentUSD: toUSD(c.spent), ReservedUSD: toUSD(c.reserved), AmountUSD: toUSD(amount),
			}
		}
	}
	if downgrade != nil {
		return Hold{}, downgrade
	}
	h := Hold{RequestID: r.RequestID}
	for _, i := range over {
		s := scopes[i]
		h.Alerts = append(h.Alerts, s.Budget.Name)
		c := l.counters[s.Key]
		if !c.exceededSent {
			c.exceededSent = true
			*alerts = append(*alerts, Alert{Kind: AlertExceeded, Budget: s.Budget.Name, Scope: s.Key,
				Period: c.start, LimitUSD: s.Budget.LimitUSD, SpentUSD: toUSD(c.spent)})
		}
	}
	for _, s := range scopes {
		l.counters[s.Key].reserved += amount
	}
	deadline := r.Deadline
	if deadline.IsZero() {
		deadline = now.Add(l.opts.HoldTTL)
	}
	l.holds[r.RequestID] = &hold{scopes: scopes, amount: amount, deadline: deadline}
	return h, nil
}

// Settle implements Ledger. A negative or NaN actual cost counts as zero.
func (l *Local) Settle(requestID string, actualUSD float64) error {
	if !(actualUSD > 0) {
		actualUSD = 0
	}
	actual := toNanosRound(math.Min(actualUSD, config.MaxBudgetUSD))
	var alerts []Alert
	l.mu.Lock()
	err := l.settleLocked(requestID, actual, &alerts)
	l.mu.Unlock()
	l.emit(alerts)
	return err
}

func (l *Local) settleLocked(id string, actual int64, alerts *[]Alert) error {
	now := l.opts.Clock()
	if h := l.holds[id]; h != nil {
		delete(l.holds, id)
		for _, s := range h.scopes {
			c := l.counter(s, now)
			c.reserved -= h.amount
			l.spend(s, c, actual, alerts)
		}
		l.markDone(id, endSettled, nil, now)
		if l.journal != nil {
			l.journal(journalEntry{op: "settle", requestID: id, amount: actual})
		}
		return nil
	}
	if d := l.done.get(id); d != nil {
		if d.state == endSettled {
			return nil
		}
		// Released or reaped earlier, but the call did cost money.
		for _, s := range d.scopes {
			l.spend(s, l.counter(s, now), actual, alerts)
		}
		d.state, d.scopes = endSettled, nil
		if l.journal != nil {
			l.journal(journalEntry{op: "settle", requestID: id, amount: actual, late: true})
		}
		return nil
	}
	if l.seen.has(id) {
		return nil // settled before (or a fingerprint's false positive: nothing is charged)
	}
	return fmt.Errorf("%w: %s", ErrUnknown, id)
}

func (l *Local) spend(s Scope, c *counter, actual int64, alerts *[]Alert) {
	c.spent += actual
	t := s.Budget.SoftThreshold
	if t > 0 && !c.softSent && float64(c.spent) >= t*float64(toNanosRound(s.Budget.LimitUSD)) {
		c.softSent = true
		*alerts = append(*alerts, Alert{Kind: AlertSoft, Budget: s.Budget.Name, Scope: s.Key,
			Period: c.start, LimitUSD: s.Budget.LimitUSD, SpentUSD: toUSD(c.spent)})
	}
}

// Release implements Ledger.
func (l *Local) Release(requestID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.holds[requestID]; h != nil {
		l.releaseLocked(requestID, h, endReleased, l.opts.Clock())
		return nil
	}
	if l.done.has(requestID) || l.seen.has(requestID) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnknown, requestID)
}

func (l *Local) releaseLocked(id string, h *hold, state int, now time.Time) {
	delete(l.holds, id)
	for _, s := range h.scopes {
		if c := l.counters[s.Key]; c != nil {
			c.reserved -= h.amount
		}
	}
	l.markDone(id, state, h.scopes, now)
	if l.journal != nil {
		op := "release"
		if state == endReaped {
			op = "reap"
		}
		l.journal(journalEntry{op: op, requestID: id})
	}
}

func (l *Local) markDone(id string, state int, scopes []Scope, now time.Time) {
	if state == endSettled {
		l.seen.add(id, now, l.opts.DoneRetention, l.opts.MaxDone)
		return
	}
	l.done.add(id, &ended{state: state, scopes: scopes}, now, l.opts.MaxDone)
}

// Reap frees reservations whose deadline has passed, forgets ended request
// ids older than the retention, and drops idle counters of past periods. It
// returns how many reservations it freed.
func (l *Local) Reap(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id, h := range l.holds {
		if now.After(h.deadline) {
			l.releaseLocked(id, h, endReaped, now)
			n++
		}
	}
	l.reaped.Add(uint64(n))
	cutoff := now.Add(-l.opts.DoneRetention)
	l.done.forget(cutoff)
	l.seen.forget(now, l.opts.DoneRetention)
	for key, c := range l.counters {
		if c.reserved == 0 && c.period != config.PeriodTotal && !c.start.Equal(periodStart(c.period, now)) {
			delete(l.counters, key)
			if c.user != "" {
				l.users--
			}
		}
	}
	l.dropStaleForgotten(now)
	return n
}

// Run reaps expired reservations every ReapInterval until ctx is done.
func (l *Local) Run(ctx context.Context) {
	every(ctx, l.opts.ReapInterval, func() { l.Reap(l.opts.Clock()) })
}

// every calls f every d until ctx is done.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// Stats are counters for metrics.
type Stats struct {
	OpenHolds int    // reservations not yet settled or released
	Reaped    uint64 // reservations freed by the reaper since start
	Users     int    // counters of end users of per-user budgets
	Forgotten uint64 // end users' counters let go at the bound since start
	// EndedIDs and EndedBytes are the request ids remembered as ended, so
	// a retry is recognised, and the bytes that takes.
	EndedIDs, EndedBytes int
}

// settled reports whether requestID's reservation was settled and is still
// remembered (see seenSet for the false-positive rule).
func (l *Local) settled(requestID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen.has(requestID)
}

// endedExactBytes is about what an exactly kept ended id costs: the map
// entry, the queue entry, the id and its scopes.
const endedExactBytes = 190

// Stats returns the current counters.
func (l *Local) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids, bytes := l.seen.size()
	exact, _ := l.done.size()
	return Stats{OpenHolds: len(l.holds), Reaped: l.reaped.Load(), Users: l.users, Forgotten: l.forgot,
		EndedIDs: ids + exact, EndedBytes: bytes + endedExactBytes*exact}
}

// Usage is the state of one budget counter.
type Usage struct {
	Scope       string
	Budget      string
	PeriodStart time.Time
	SpentUSD    float64
	ReservedUSD float64
}

// Usage returns the counter of scope key, rolled to the current period.
func (l *Local) Usage(s Scope) Usage {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counter(s, l.opts.Clock())
	return Usage{Scope: s.Key, Budget: s.Budget.Name, PeriodStart: c.start, SpentUSD: toUSD(c.spent), ReservedUSD: toUSD(c.reserved)}
}

// Snapshot lists every counter, sorted by scope key.
func (l *Local) Snapshot() []Usage {
	l.mu.Lock()
	out := make([]Usage, 0, len(l.counters))
	for k, c := range l.counters {
		out = append(out, Usage{Scope: k, Budget: c.budget, PeriodStart: c.start, SpentUSD: toUSD(c.spent), ReservedUSD: toUSD(c.reserved)})
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Scope < out[j].Scope })
	return out
}

func (l *Local) emit(alerts []Alert) {
	if l.opts.OnAlert == nil {
		return
	}
	for _, a := range alerts {
		l.opts.OnAlert(a)
	}
}

func dedupe(scopes []Scope) []Scope {
	if len(scopes) < 2 {
		return append([]Scope(nil), scopes...)
	}
	out := make([]Scope, 0, len(scopes))
	for _, s := range scopes {
		dup := false
		for _, o := range out {
			dup = dup || o.Key == s.Key
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}
