package api

import (
	"net/url"
	"sort"
	"time"
)

// The incident endpoints: what is wrong now, and how each provider and
// model is doing.
//
//	GET /admin/v1/alerts   Alerts, worst first
//	GET /admin/v1/health   Health (query: window, seconds 10..3600, default 300)
const (
	PathAlerts = Prefix + "/alerts"
	PathHealth = Prefix + "/health"
)

// Severities of an alert, worst first.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// SeverityRank orders severities: 0 is the worst; unknown ones sort last.
func SeverityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 0
	case SeverityWarning:
		return 1
	case SeverityInfo:
		return 2
	}
	return 3
}

// Kinds of alert: what condition raised it.
const (
	AlertBudgetSoft      = "budget_soft"      // spend crossed the budget's soft threshold
	AlertBudgetExhausts  = "budget_exhausts"  // at the current burn the budget runs out before its period ends
	AlertBreakerOpen     = "breaker_open"     // a model's circuit breaker is open or half-open
	AlertConfigBehind    = "config_behind"    // an agent serves an older configuration than the cluster's
	AlertMemberDown      = "member_down"      // a member is unreachable or not following the leader
	AlertNoLeader        = "no_leader"        // the cluster has no leader: writes are refused
	AlertStateDiverged   = "state_diverged"   // members of one build hold different states at the same index
	AlertDisk            = "disk"             // the disk watchdog found the data directory short of space
	AlertCanaryFail      = "canary_fail"      // a canary's analysis found a regression
	AlertErrorRate       = "error_rate"       // a feature's, model's or provider's error rate is above its threshold
	AlertLatency         = "latency_p95"      // a feature's, model's or provider's p95 latency is above its threshold
	AlertRefusedRequests = "refused_requests" // many calls are refused before any feature (bad keys, limits)
)

// Alert is one condition that needs an operator's eye. ID is stable while
// the condition lasts (kind and subject), so a client can tell a new alert
// from one it has seen; Since is when this agent first saw it.
type Alert struct {
	ID       string    `json:"id"` // e.g. breaker_open/model/gpt-4o
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"` // critical, warning or info
	Since    time.Time `json:"since"`
	// Subject is what the alert is about: model/NAME, provider/NAME,
	// feature/NAME, budget/NAME, member/ID, release/ID, or node/ID.
	Subject string `json:"subject"`
	// Summary is one line for a human, e.g. "gpt-4o: circuit open after 5
	// failures (http_500)".
	Summary string `json:"summary"`
	// Numbers are the figures behind the alert, in display order.
	Numbers []AlertNumber `json:"numbers,omitempty"`
	// Link is the console view that explains the alert, with its filter
	// as a query: "traces?model=gpt-4o&status=error", "budgets",
	// "members", "releases?feature=support-answer", "health".
	Link string `json:"link"`
	// Node is the agent that raised it.
	Node string `json:"node"`
}

// AlertNumber is one figure behind an alert, e.g. {error_rate 0.42 ratio
// threshold 0.05}.
type AlertNumber struct {
	Name      string  `json:"name"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit,omitempty"` // ratio, ms, usd, usd/h, s, count, bytes
	Threshold float64 `json:"threshold,omitempty"`
}

// Alerts answers PathAlerts: every alert the agent sees now, worst first.
type Alerts struct {
	Node   string    `json:"node"`
	Time   time.Time `json:"time"`
	Alerts []Alert   `json:"alerts"`
}

// Count returns how many alerts have each severity.
func (a Alerts) Count() map[string]int {
	out := map[string]int{}
	for _, x := range a.Alerts {
		out[x.Severity]++
	}
	return out
}

// SortAlerts orders alerts worst first: by severity, then the longest
// standing, then by id so equal alerts keep one order.
func SortAlerts(as []Alert) {
	sort.SliceStable(as, func(i, j int) bool {
		a, b := as[i], as[j]
		if ra, rb := SeverityRank(a.Severity), SeverityRank(b.Severity); ra != rb {
			return ra < rb
		}
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		return a.ID < b.ID
	})
}

// ViewLink is a console link: a view name and its filter.
func ViewLink(view string, filter url.Values) string {
	if len(filter) == 0 {
		return view
	}
	return view + "?" + filter.Encode()
}

// Breaker states of a model's circuit, as Health reports them.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// HealthStats are the calls to a model or provider over the window.
// Attempts counts every upstream call, retries included; Errors those that
// failed, by kind (http_500, timeout, connect, circuit_open, …, or for
// Totals the error code the client got).
type HealthStats struct {
	Calls        int64            `json:"calls"`
	Attempts     int64            `json:"attempts"`
	Errors       int64            `json:"errors"`
	ErrorRate    float64          `json:"error_rate"` // Errors per attempt (per call in Totals), 0..1
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`
	P50          float64          `json:"p50_ms"`
	P95          float64          `json:"p95_ms"`
	TTFTP50      float64          `json:"ttft_p50_ms,omitempty"` // streams only
	TTFTP95      float64          `json:"ttft_p95_ms,omitempty"`
	Retries      int64            `json:"retries"`   // attempts after the first on the same model
	Fallbacks    int64            `json:"fallbacks"` // calls that moved on to another model
}

// ModelHealth is one model's health and its circuit breaker.
type ModelHealth struct {
	Model    string `json:"model"`
	Provider string `json:"provider"`
	Breaker  string `json:"breaker"` // closed, half-open or open
	HealthStats
}

// ProviderHealth is one provider's health over all its models.
type ProviderHealth struct {
	Provider string `json:"provider"`
	HealthStats
}

// Health answers PathHealth: this agent's calls over the window by model
// and provider. Totals count every call, including those refused before a
// feature or model was known (a bad key, a rate limit), so they match the
// overview's error rate.
type Health struct {
	Node          string           `json:"node"`
	Time          time.Time        `json:"time"`
	WindowSeconds int              `json:"window_s"`
	Totals        HealthStats      `json:"totals"`
	Models        []ModelHealth    `json:"models"`
	Providers     []ProviderHealth `json:"providers"`
}
