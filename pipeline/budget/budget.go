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
	var out []Scope
	for _, b := range cfg.Budgets {
		switch b.Scope {
		case config.ScopeGlobal:
			out = append(out, Scope{Key: b.Name, Budget: b})
		case config.ScopeTeam:
			if s.Team != "" && b.Match == s.Team {
				out = append(out, Scope{Key: b.Name, Budget: b})
			}
		case config.ScopeKey:
			if s.Key != "" && b.Match == s.Key {
				out = append(out, Scope{Key: b.Name, Budget: b})
			}
		case config.ScopeFeature:
			if s.Feature != "" && b.Match == s.Feature {
				out = append(out, Scope{Key: b.Name, Budget: b})
			}
		case config.ScopeUser:
			if s.User != "" {
				out = append(out, Scope{Key: b.Name + "/user:" + s.User, Budget: b, User: s.User})
			}
		}
	}
	if s.Key != "" {
		for _, k := range cfg.Keys {
			if k.Name == s.Key && k.MaxBudgetUSD > 0 {
				out = append(out, Scope{Key: "key-cap:" + k.Name, Budget: config.Budget{
					Name: "key:" + k.Name, Scope: config.ScopeKey, Match: k.Name,
					Period: config.PeriodTotal, LimitUSD: k.MaxBudgetUSD, Action: config.BudgetBlock,
				}})
				break
			}
		}
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
