// Package budget enforces spend budgets. A request reserves its worst-case
// cost against every budget that matches it before the provider call, and
// settles the actual cost afterwards; admission checks spent + reserved +
// this request against each limit in one atomic step, so concurrent requests
// cannot overspend. The Ledger interface is small so that a cluster-backed
// ledger can replace the local one.
package budget

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gantry/config"
)

// Ledger admits, settles and releases reservations.
//
// Reserve either reserves AmountUSD on every scope or on none. Settle and
// Release end a reservation; both are idempotent by request id, so a retried
// call never counts twice. A Settle after the reservation was released or
// reaped still records the spend, because the money was spent.
type Ledger interface {
	Reserve(ctx context.Context, r Reservation) (Hold, error)
	Settle(requestID string, actualUSD float64) error
	Release(requestID string) error
}

// Reservation asks to hold AmountUSD against Scopes for one request.
type Reservation struct {
	RequestID string
	Scopes    []Scope
	AmountUSD float64
	// Deadline is when the reaper frees the hold if the request has not
	// ended it; zero means the ledger's default hold time.
	Deadline time.Time
	// Downgraded is set when the caller already switched to a budget's
	// downgrade route; downgrade budgets then admit the request.
	Downgraded bool
}

// check refuses a reservation every ledger refuses: one for a request
// already gone, without a request id, or for an amount out of range.
func (r Reservation) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.RequestID == "" {
		return fmt.Errorf("%w: empty request id", ErrInvalid)
	}
	if !(r.AmountUSD >= 0) || r.AmountUSD > config.MaxBudgetUSD {
		return fmt.Errorf("%w: %v USD", ErrAmount, r.AmountUSD)
	}
	return nil
}

// Scope is one budget applied to one subject: Key identifies the counter
// (the budget name, and the end user for per-user budgets) and Budget
// carries the limits from the current configuration, so a configuration
// change applies on the next request.
type Scope struct {
	Key    string
	Budget config.Budget
	// User is the end user of a per-user budget: a name the caller chose,
	// whose counters the ledger bounds (see users.go).
	User string
}

// Hold is an admitted reservation.
type Hold struct {
	RequestID string
	// Alerts names alert budgets this request goes beyond; it was admitted.
	Alerts []string
}

// Sentinel errors callers branch on.
var (
	// ErrExceeded: a block budget refuses the request. See ExceededError.
	ErrExceeded = errors.New("budget exceeded")
	// ErrDowngrade: a downgrade budget asks for its cheaper route. See
	// DowngradeError.
	ErrDowngrade = errors.New("budget asks for a downgrade")
	// ErrDuplicate: the request id already has a reservation.
	ErrDuplicate = errors.New("request already has a reservation")
	// ErrUnknown: no reservation with that request id.
	ErrUnknown = errors.New("no reservation for request")
	// ErrInvalid: a malformed reservation (empty id, negative amount).
	ErrInvalid = errors.New("invalid reservation")
	// ErrAmount: the amount is negative, NaN or above config.MaxBudgetUSD.
	ErrAmount = fmt.Errorf("%w: amount out of range", ErrInvalid)
)

// ExceededError is a refusal by a block budget with the ledger's state at
// the moment of the decision.
type ExceededError struct {
	Budget      string
	Scope       string // counter key
	LimitUSD    float64
	SpentUSD    float64
	ReservedUSD float64
	AmountUSD   float64
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("budget %q exceeded: spent %.6f + reserved %.6f + request %.6f > limit %.6f USD",
		e.Budget, e.SpentUSD, e.ReservedUSD, e.AmountUSD, e.LimitUSD)
}

func (e *ExceededError) Unwrap() error { return ErrExceeded }

// DowngradeError tells the caller to use Route and reserve again with
// Reservation.Downgraded set. Nothing was reserved.
type DowngradeError struct {
	Budget string
	Route  string
}

func (e *DowngradeError) Error() string {
	return fmt.Sprintf("budget %q is spent; downgrade to route %q", e.Budget, e.Route)
}

func (e *DowngradeError) Unwrap() error { return ErrDowngrade }

// Alert kinds.
const (
	AlertSoft     = "soft_threshold" // spend crossed the soft threshold
	AlertExceeded = "exceeded"       // an alert budget was exceeded
)

// Alert is sent at most once per kind, budget subject and period.
type Alert struct {
	Kind     string
	Budget   string
	Scope    string
	Period   time.Time // start of the budget period
	LimitUSD float64
	SpentUSD float64
}

// WorstCase is the most a call can cost: every counted input token at the
// input price plus the output cap at the output price.
func WorstCase(p config.Price, inputTokens, maxOutputTokens int) float64 {
	return p.Cost(inputTokens, 0, maxOutputTokens)
}

// Subject is who a request is for; the fields name config objects.
type Subject struct {
	Team, Key, Feature, User string
}

// ScopesFor returns the budgets of cfg that apply to s, plus the key's own
// lifetime cap when it has one.
func ScopesFor(cfg *config.Config, s Subject) []Scope {
	return NewIndex(cfg).For(s)
}

// Index holds a configuration's budgets by what they match, so a call finds
// its scopes with a few lookups whatever the number of budgets and keys.
type Index struct {
	global  []indexed
	team    map[string][]indexed
	key     map[string][]indexed
	feature map[string][]indexed
	user    []indexed // per-user budgets; the scope's key is completed per call
	caps    map[string]Scope
}

// indexed is a scope and its budget's place in the configuration: scopes
// come out in configuration order, as the ledger reports the first one a
// call goes beyond.
type indexed struct {
	at int
	Scope
}

// NewIndex indexes cfg's budgets and keys' caps.
func NewIndex(cfg *config.Config) *Index {
	ix := &Index{team: map[string][]indexed{}, key: map[string][]indexed{}, feature: map[string][]indexed{}, caps: map[string]Scope{}}
	for i, b := range cfg.Budgets {
		e := indexed{at: i, Scope: Scope{Key: b.Name, Budget: b}}
		switch b.Scope {
		case config.ScopeGlobal:
			ix.global = append(ix.global, e)
		case config.ScopeTeam:
			ix.team[b.Match] = append(ix.team[b.Match], e)
		case config.ScopeKey:
			ix.key[b.Match] = append(ix.key[b.Match], e)
		case config.ScopeFeature:
			ix.feature[b.Match] = append(ix.feature[b.Match], e)
		case config.ScopeUser:
			ix.user = append(ix.user, e)
		}
	}
	for _, k := range cfg.Keys {
		if _, dup := ix.caps[k.Name]; dup || k.MaxBudgetUSD <= 0 {
			continue
		}
		ix.caps[k.Name] = Scope{Key: "key-cap:" + k.Name, Budget: config.Budget{
			Name: "key:" + k.Name, Scope: config.ScopeKey, Match: k.Name,
			Period: config.PeriodTotal, LimitUSD: k.MaxBudgetUSD, Action: config.BudgetBlock,
		}}
	}
	return ix
}

// For returns the budgets that apply to s in configuration order, plus
// the key's own lifetime cap last when it has one.
func (ix *Index) For(s Subject) []Scope {
	var parts [5][]indexed
	parts[0] = ix.global
	if s.Team != "" {
		parts[1] = ix.team[s.Team]
	}
	if s.Key != "" {
		parts[2] = ix.key[s.Key]
	}
	if s.Feature != "" {
		parts[3] = ix.feature[s.Feature]
	}
	if s.User != "" {
		parts[4] = ix.user
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	keyCap, capped := Scope{}, false
	if s.Key != "" {
		keyCap, capped = ix.caps[s.Key]
	}
	if n == 0 && !capped {
		return nil
	}
	out := make([]Scope, 0, n+1)
	for len(out) < n { // merge the parts by configuration order
		pick := -1
		for i, p := range parts {
			if len(p) > 0 && (pick < 0 || p[0].at < parts[pick][0].at) {
				pick = i
			}
		}
		sc := parts[pick][0].Scope
		if pick == 4 {
			sc.Key, sc.User = sc.Budget.Name+"/user:"+s.User, s.User
		}
		out = append(out, sc)
		parts[pick] = parts[pick][1:]
	}
	if capped {
		out = append(out, keyCap)
	}
	return out
}

// periodStart is the start of the period that contains now, in UTC.
// PeriodEnd is when the period that holds now rolls over; zero for total.
func PeriodEnd(period string, now time.Time) time.Time {
	start := periodStart(period, now)
	switch period {
	case config.PeriodDay:
		return start.AddDate(0, 0, 1)
	case config.PeriodMonth:
		return start.AddDate(0, 1, 0)
	}
	return time.Time{}
}

func periodStart(period string, now time.Time) time.Time {
	now = now.UTC()
	switch period {
	case config.PeriodDay:
		return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	case config.PeriodMonth:
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	default:
		return time.Time{}
	}
}
