// Package api holds the JSON types of Gantry's admin API, in one place, so
// the agent that serves them and the console that reads them cannot drift
// apart. The types are plain data; the endpoints they belong to are:
//
//	GET  /admin/v1/traces                      TraceList (query: TraceQuery; trace_id lists one W3C trace's calls)
//	GET  /admin/v1/traces/{id}                 trace.Trace: id is a call's id, or a W3C trace id only one call has
//	GET  /admin/v1/feed                        text/event-stream; each event's data: is one trace.Summary
//	GET  /admin/v1/overview                    Overview
//	GET  /admin/v1/members                     Members
//	GET  /admin/v1/features                    Features
//	GET  /admin/v1/features/{name}/releases    Feature
//	GET  /admin/v1/features/{name}/diff?a=&b=  Diff
//	GET  /admin/v1/releases/stats              ClusterStats (query: window, feature, consistent)
//	POST /admin/v1/features/{name}/labels      LabelMove -> LabelMoveResult
//	GET  /admin/v1/budgets                     Budgets
//	GET  /admin/v1/models                      Models
//	GET  /admin/v1/audit                       AuditList (query: AuditQuery)
//	GET  /admin/v1/alerts                      Alerts
//	GET  /admin/v1/health                      Health (query: window)
//
// Every error, whatever the endpoint, is an ErrorResponse:
// {"error":{"code":"...","message":"..."}}.
package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gantry/config"
	"gantry/pipeline/trace"
)

// Prefix is where the admin API lives on an agent's HTTP address.
const Prefix = "/admin/v1"

// Paths of the admin API, for servers to route and clients to call.
const (
	PathTraces   = Prefix + "/traces"
	PathFeed     = Prefix + "/feed"
	PathOverview = Prefix + "/overview"
	PathMembers  = Prefix + "/members"
	PathFeatures = Prefix + "/features"
	PathBudgets  = Prefix + "/budgets"
	PathAudit    = Prefix + "/audit"
)

// TracePath is the path of one trace.
func TracePath(id string) string { return PathTraces + "/" + url.PathEscape(id) }

// ReleasesPath is the path of a feature with its releases and labels.
func ReleasesPath(feature string) string {
	return PathFeatures + "/" + url.PathEscape(feature) + "/releases"
}

// DiffPath is the path of the diff between two releases of a feature.
func DiffPath(feature string, a, b int) string {
	return PathFeatures + "/" + url.PathEscape(feature) + "/diff?a=" + strconv.Itoa(a) + "&b=" + strconv.Itoa(b)
}

// LabelsPath is where label moves of a feature are posted.
func LabelsPath(feature string) string {
	return PathFeatures + "/" + url.PathEscape(feature) + "/labels"
}

// ErrorResponse is the one error shape of the admin API.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error is the body of an ErrorResponse. It is also a Go error, so a client
// can return it as is and callers can branch on Code with errors.As.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// Error codes. Clients branch on these, never on messages.
const (
	CodeBadRequest   = "bad_request"   // 400: a parameter or body is malformed
	CodeUnauthorized = "unauthorized"  // 401: no or unknown admin token
	CodeForbidden    = "forbidden"     // 403: the token's role does not allow it
	CodeNotFound     = "not_found"     // 404: no such trace, feature or release
	CodeConflict     = "conflict"      // 409: the label moved since the caller looked
	CodeStale        = "stale"         // 412: the configuration changed since the caller read it (If-Match)
	CodeUnavailable  = "unavailable"   // 503: no leader, or the agent is shutting down
	CodeInternal     = "internal"      // 500: a bug; the message says where
	CodeTimeout      = "timeout"       // 504: the leader did not answer in time
	CodeInvalidState = "invalid_state" // 422: e.g. promoting the release already in production
)

// TraceQuery filters the trace list. Zero fields do not filter.
type TraceQuery struct {
	// TraceID lists the calls of one W3C trace; a call's own id is its
	// trace.Summary.ID.
	TraceID string `json:"trace_id,omitempty"`
	Feature string `json:"feature,omitempty"`
	Release string `json:"release,omitempty"` // release id, e.g. support-answer@v2
	Status  string `json:"status,omitempty"`  // ok or error
	Model   string `json:"model,omitempty"`   // the model that answered or any model the call tried
	Node    string `json:"node,omitempty"`
	User    string `json:"user,omitempty"`   // end user id as the caller sent it
	KeyFP   string `json:"key_fp,omitempty"` // key fingerprint: trace.Summary.KeyFP
	// ErrorKind matches the error code the client got (invalid_api_key,
	// upstream_error, …) or the failure of any attempt (http_500,
	// timeout, connect, circuit_open, …).
	ErrorKind string `json:"error_kind,omitempty"`
	// Text matches, case-insensitively, a substring of any field a trace
	// shows: ids, feature, release, label, models, provider, route, user,
	// key, team, key fingerprint, client address, user agent, node,
	// journey, error code, error message and attempt errors.
	Text string `json:"q,omitempty"`
	// Duration and cost ranges, inclusive; zero leaves that end open.
	MinDuration time.Duration `json:"min_duration,omitempty"`
	MaxDuration time.Duration `json:"max_duration,omitempty"`
	MinCost     float64       `json:"min_cost,omitempty"` // USD
	MaxCost     float64       `json:"max_cost,omitempty"`
	// Sort orders the page: SortTime (default, newest first), SortDuration
	// (slowest first) or SortCost (dearest first).
	Sort   string    `json:"sort,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
	Limit  int       `json:"limit,omitempty"`
	Cursor string    `json:"cursor,omitempty"` // TraceList.Next of the previous page
}

// Orders of the trace list.
const (
	SortTime     = trace.SortTime
	SortDuration = trace.SortDuration
	SortCost     = trace.SortCost
)

// MaxTraceLimit bounds one page of the trace list.
const MaxTraceLimit = 1000

// MaxQueryParamLen bounds each text parameter of the trace list.
const MaxQueryParamLen = 256

// isTraceID reports whether s is a W3C trace id: 32 lowercase hex digits.
func isTraceID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Values encodes the query as URL parameters.
func (q TraceQuery) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("trace_id", q.TraceID)
	set("feature", q.Feature)
	set("release", q.Release)
	set("status", q.Status)
	set("model", q.Model)
	set("node", q.Node)
	set("user", q.User)
	set("key_fp", q.KeyFP)
	set("error_kind", q.ErrorKind)
	set("q", q.Text)
	set("sort", q.Sort)
	set("cursor", q.Cursor)
	if q.MinDuration > 0 {
		v.Set("min_duration", q.MinDuration.String())
	}
	if q.MaxDuration > 0 {
		v.Set("max_duration", q.MaxDuration.String())
	}
	if q.MinCost > 0 {
		v.Set("min_cost", strconv.FormatFloat(q.MinCost, 'g', -1, 64))
	}
	if q.MaxCost > 0 {
		v.Set("max_cost", strconv.FormatFloat(q.MaxCost, 'g', -1, 64))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// MaxCostFilter bounds the cost range of a trace query, in USD.
const MaxCostFilter = 1e6

// ParseTraceQuery decodes URL parameters; the error names the bad one.
func ParseTraceQuery(v url.Values) (TraceQuery, error) {
	q := TraceQuery{
		TraceID:   v.Get("trace_id"),
		Feature:   v.Get("feature"),
		Release:   v.Get("release"),
		Status:    v.Get("status"),
		Model:     v.Get("model"),
		Node:      v.Get("node"),
		User:      v.Get("user"),
		KeyFP:     v.Get("key_fp"),
		ErrorKind: v.Get("error_kind"),
		Text:      v.Get("q"),
		Sort:      v.Get("sort"),
		Cursor:    v.Get("cursor"),
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return TraceQuery{}, fmt.Errorf("%s: want RFC 3339, got %.64q", p.name, s)
		}
		*p.dst = t
	}
	for _, p := range []struct {
		name string
		dst  *time.Duration
	}{{"min_duration", &q.MinDuration}, {"max_duration", &q.MaxDuration}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return TraceQuery{}, fmt.Errorf("%s: want a duration such as 250ms or 2s, got %.64q", p.name, s)
		}
		*p.dst = d
	}
	for _, p := range []struct {
		name string
		dst  *float64
	}{{"min_cost", &q.MinCost}, {"max_cost", &q.MaxCost}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f >= 0 && f <= MaxCostFilter) {
			return TraceQuery{}, fmt.Errorf("%s: want USD from 0 to %g, got %.64q", p.name, float64(MaxCostFilter), s)
		}
		*p.dst = f
	}
	if q.MaxDuration > 0 && q.MinDuration > q.MaxDuration {
		return TraceQuery{}, fmt.Errorf("min_duration %s is above max_duration %s", q.MinDuration, q.MaxDuration)
	}
	if q.MaxCost > 0 && q.MinCost > q.MaxCost {
		return TraceQuery{}, fmt.Errorf("min_cost %g is above max_cost %g", q.MinCost, q.MaxCost)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxTraceLimit {
			return TraceQuery{}, fmt.Errorf("limit: want 1..%d, got %.64q", MaxTraceLimit, s)
		}
		q.Limit = n
	}
	if q.Status != "" && q.Status != "ok" && q.Status != "error" {
		return TraceQuery{}, fmt.Errorf("status: want ok or error, got %.64q", q.Status)
	}
	switch q.Sort {
	case "", SortTime, SortDuration, SortCost:
	default:
		return TraceQuery{}, fmt.Errorf("sort: want %s, %s or %s, got %.64q", SortTime, SortDuration, SortCost, q.Sort)
	}
	if q.TraceID != "" && !isTraceID(q.TraceID) {
		return TraceQuery{}, fmt.Errorf("trace_id: want 32 lowercase hex digits, got %.64q", q.TraceID)
	}
	for _, p := range []struct{ name, v string }{{"feature", q.Feature}, {"release", q.Release}, {"model", q.Model}, {"node", q.Node},
		{"user", q.User}, {"key_fp", q.KeyFP}, {"error_kind", q.ErrorKind}, {"q", q.Text}, {"cursor", q.Cursor}} {
		if len(p.v) > MaxQueryParamLen {
			return TraceQuery{}, fmt.Errorf("%s: longer than %d bytes", p.name, MaxQueryParamLen)
		}
	}
	return q, nil
}

// SortTraces orders summaries as the query's Sort asks, ties newest first,
// so a client merging the pages of several agents orders them as each
// agent did.
func SortTraces(sums []trace.Summary, by string) { trace.SortSummaries(sums, by) }

// TraceList is one page of the trace list, newest first. Next is empty on
// the last page.
type TraceList struct {
	Traces []trace.Summary `json:"traces"`
	Next   string          `json:"next,omitempty"`
}

// The live feed (PathFeed) is server-sent events: each event's data line
// is one trace.Summary as JSON, and comment lines (": keepalive") keep idle
// connections open. A reader too slow to keep up loses the oldest
// summaries; it never slows the gateway.

// Stats are counts and percentiles over the overview's window.
type Stats struct {
	Requests           int64        `json:"requests"`
	Errors             int64        `json:"errors"`
	ValidationFailures int64        `json:"validation_failures"`
	FeedbackUp         int64        `json:"feedback_up"`
	FeedbackDown       int64        `json:"feedback_down"`
	P50                trace.Millis `json:"p50_ms"`
	P95                trace.Millis `json:"p95_ms"`
	CostUSD            float64      `json:"cost_usd"`
	InputTokens        int64        `json:"input_tokens"`
	OutputTokens       int64        `json:"output_tokens"`
}

// ErrorRate is errors per request, 0 when there were none.
func (s Stats) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// FeatureStats are the stats of one feature.
type FeatureStats struct {
	Feature string `json:"feature"`
	Stats
}

// ReleaseStats are the stats of one release; Label is the label that pointed
// at it when the window ended, if any.
type ReleaseStats struct {
	Feature string `json:"feature"`
	Release string `json:"release"` // release id, e.g. support-answer@v2
	Version int    `json:"version"`
	Label   string `json:"label,omitempty"`
	Stats
}

// Overview is the state of the traffic over a recent window.
type Overview struct {
	Node           string       `json:"node"` // agent that computed it
	Time           time.Time    `json:"time"`
	WindowSeconds  int          `json:"window_s"`
	RequestsPerSec float64      `json:"requests_per_s"`
	ErrorRate      float64      `json:"error_rate"` // 0..1
	P50            trace.Millis `json:"p50_ms"`
	P95            trace.Millis `json:"p95_ms"`
	CostPerMinute  float64      `json:"cost_per_minute_usd"`
	// CostSeries is the cost of each of the last minutes, oldest first.
	CostSeries []float64 `json:"cost_series_usd,omitempty"`
	// Totals count every call of the window; NoFeature the calls no
	// feature served (plain model calls, and calls refused before a
	// feature was known, such as a bad key), so the feature rows and
	// NoFeature add up to Totals.
	Totals    Stats          `json:"totals"`
	NoFeature Stats          `json:"no_feature"`
	Features  []FeatureStats `json:"features,omitempty"`
	Releases  []ReleaseStats `json:"releases,omitempty"`
}

// Raft roles of a member.
const (
	RoleLeader    = "leader"
	RoleFollower  = "follower"
	RoleCandidate = "candidate"
	RoleUnknown   = "unknown"
)

// Member is one agent of the cluster as the serving agent sees it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Role     string `json:"role"`
	Voter    bool   `json:"voter"`
	Healthy  bool   `json:"healthy"`
	// LastContact is when the leader last heard from the member; zero for
	// the leader itself and when unknown.
	LastContact  time.Time `json:"last_contact,omitzero"`
	LastIndex    uint64    `json:"last_index"`
	AppliedIndex uint64    `json:"applied_index"`
	// ServingIndex is the state index the member's gateway serves.
	ServingIndex uint64 `json:"serving_index"`
	Error        string `json:"error,omitempty"` // why it is unhealthy
}

// Members is the cluster's membership.
type Members struct {
	Leader  string   `json:"leader"` // member id, empty without quorum
	Term    uint64   `json:"term"`
	Members []Member `json:"members"`
}

// Release is one release of a feature as the admin API shows it.
type Release struct {
	Version   int       `json:"version"`
	ID        string    `json:"id"`   // e.g. support-answer@v3
	Hash      string    `json:"hash"` // config.Release.Hash
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
	Note      string    `json:"note,omitempty"`
	// Spec is the release itself; list endpoints may leave it out.
	Spec *config.Release `json:"spec,omitempty"`
	// Gate is where the release stands against its feature's promotion
	// gate, when the feature has one (its verdict without case lists).
	Gate *Gate `json:"gate,omitempty"`
}

// LabelChange is one move of a label: who moved it, from and to which
// version, when and why.
type LabelChange = config.LabelChange

// Feature is a feature with its releases, labels and label history.
type Feature struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Labels      config.Labels `json:"labels"`
	Releases    []Release     `json:"releases"`
	// History holds the newest label moves, oldest first.
	History []LabelChange `json:"history,omitempty"`
	// Rollback is what `release rollback` would do now, as the state
	// machine works it out: end the live canary, or move production back.
	// Nil with RollbackRefused saying why when there is nothing to undo.
	Rollback        *LabelStep `json:"rollback,omitempty"`
	RollbackRefused string     `json:"rollback_refused,omitempty"`
	// Eval is the feature's evaluation dataset and gate; CanaryAnalysis
	// the analysis of its live (or last) canary.
	Eval           *config.EvalPolicy `json:"eval,omitempty"`
	CanaryAnalysis *Canary            `json:"canary_analysis,omitempty"`
}

// LabelStep is what a label move does: the label it changes, from and to
// which version (to 0 ends a canary).
type LabelStep struct {
	Label string `json:"label"`
	From  int    `json:"from"`
	To    int    `json:"to"`
}

// LabelsOf returns the labels that point at version, production first.
func (f Feature) LabelsOf(version int) []string {
	var out []string
	if f.Labels.Production == version && version != 0 {
		out = append(out, config.LabelProduction)
	}
	if f.Labels.Canary == version && version != 0 {
		out = append(out, config.LabelCanary)
	}
	return out
}

// Release returns the release with the given version.
func (f Feature) Release(version int) (Release, bool) {
	for _, r := range f.Releases {
		if r.Version == version {
			return r, true
		}
	}
	return Release{}, false
}

// Features is the feature list.
type Features struct {
	Features []Feature `json:"features"`
}

// Diff ops of a DiffLine.
const (
	DiffSame   = " "
	DiffAdd    = "+"
	DiffRemove = "-"
)

// DiffLine is one line of a field's diff.
type DiffLine struct {
	Op   string `json:"op"` // " ", "+" or "-"
	Text string `json:"text"`
}

// FieldDiff is one field that differs between two releases, e.g. "system",
// "params.temperature" or "route", with its lines.
type FieldDiff struct {
	Field string     `json:"field"`
	Lines []DiffLine `json:"lines"`
}

// Counts returns how many lines the field adds and removes.
func (f FieldDiff) Counts() (added, removed int) {
	for _, l := range f.Lines {
		switch l.Op {
		case DiffAdd:
			added++
		case DiffRemove:
			removed++
		}
	}
	return added, removed
}

// Diff is what changes from release A to release B of a feature.
type Diff struct {
	Feature string      `json:"feature"`
	A       int         `json:"a"`
	B       int         `json:"b"`
	AHash   string      `json:"a_hash"`
	BHash   string      `json:"b_hash"`
	Fields  []FieldDiff `json:"fields"`
}

// Summary is a one-line account of the diff, e.g.
// "2 fields changed: system +2 -1, route +1 -1".
func (d Diff) Summary() string {
	if len(d.Fields) == 0 {
		return "no changes"
	}
	s := fmt.Sprintf("%d field", len(d.Fields))
	if len(d.Fields) != 1 {
		s += "s"
	}
	s += " changed:"
	for i, f := range d.Fields {
		if i > 0 {
			s += ","
		}
		a, r := f.Counts()
		s += fmt.Sprintf(" %s +%d -%d", f.Field, a, r)
	}
	return s
}

// LabelMove asks to move a label of a feature; Action is one of the moves
// config.PlanMove defines. From is the version the label the move changes
// points at as the caller saw it; the agent answers CodeConflict when it
// points elsewhere by now, so two operators never undo each other blindly.
// From 0 skips that check.
type LabelMove struct {
	Feature string `json:"feature"`
	Action  string `json:"action"`
	From    int    `json:"from,omitempty"`
	To      int    `json:"to,omitempty"`     // promote and canary: the version
	Weight  int    `json:"weight,omitempty"` // canary: percent, 1..100
	Reason  string `json:"reason,omitempty"`
	// Force promotes past the feature's evaluation gate; it needs a
	// reason, which the audit log keeps.
	Force bool `json:"force,omitempty"`
}

// Check reports what is wrong with a move before it is sent.
func (m LabelMove) Check() error {
	switch {
	case m.Feature == "":
		return fmt.Errorf("feature is required")
	case m.To < 0 || m.From < 0:
		return fmt.Errorf("versions are positive numbers")
	case len(m.Reason) > MaxReasonLen:
		return fmt.Errorf("reason: longer than %d bytes", MaxReasonLen)
	case m.Force && m.Action != config.MovePromote:
		return fmt.Errorf("force applies to promote only: other moves are never gated")
	}
	switch m.Action {
	case config.MovePromote:
		if m.To == 0 || m.Weight != 0 {
			return fmt.Errorf("promote takes a version and no weight")
		}
		if m.Force && strings.TrimSpace(m.Reason) == "" {
			return fmt.Errorf("forcing a promotion past the evaluation gate needs a reason")
		}
	case config.MoveCanary:
		if m.To == 0 || m.Weight < 1 || m.Weight > config.MaxCanaryWeight {
			return fmt.Errorf("canary takes a version and a weight of 1..%d percent; abort ends a canary", config.MaxCanaryWeight)
		}
	case config.MoveAbort, config.MoveRollback:
		if m.To != 0 || m.Weight != 0 {
			return fmt.Errorf("%s takes no version or weight", m.Action)
		}
	default:
		return fmt.Errorf("action: want %s, %s, %s or %s, got %q", config.MovePromote, config.MoveCanary, config.MoveAbort, config.MoveRollback, m.Action)
	}
	return nil
}

// LabelMoveResult is the label after the move and the log index that
// recorded it.
type LabelMoveResult struct {
	Feature string        `json:"feature"`
	Labels  config.Labels `json:"labels"`
	Change  LabelChange   `json:"change"`
	Index   uint64        `json:"index"`
}

// Budget is a budget with its spend in the current period.
type Budget struct {
	Name        string  `json:"name"`
	Scope       string  `json:"scope"`           // global, team, key, feature or user
	Match       string  `json:"match,omitempty"` // the team, key or feature
	Period      string  `json:"period"`          // day, month or total
	Action      string  `json:"action,omitempty"`
	LimitUSD    float64 `json:"limit_usd"`
	SpentUSD    float64 `json:"spent_usd"`    // by the whole cluster when it shares the budget
	ReservedUSD float64 `json:"reserved_usd"` // held by calls in flight, or by agents' grants in a cluster
	// BurnPerHour is the spend rate over the last half hour: the cluster's
	// when Cluster.BurnPerHour is set, else the answering agent's traffic.
	BurnPerHour float64 `json:"burn_per_hour_usd"`
	// PeriodEnd is when the period rolls over; zero for total budgets.
	PeriodEnd time.Time `json:"period_end,omitzero"`
	// Exhausts is when spend reaches the limit at the current burn rate;
	// nil when that is not before the period ends.
	Exhausts *time.Time `json:"exhausts,omitempty"`
	// CostSeries is the spend of each of the last minutes, oldest first.
	CostSeries []float64 `json:"cost_series_usd,omitempty"`
	// Cluster is the budget's ledger shared by the agents of a cluster,
	// as this agent last applied it; nil for a lone agent and for budgets
	// each agent enforces alone (per end user).
	Cluster *BudgetLedger `json:"cluster,omitempty"`
}

// BudgetLedger is a budget's cluster-wide spend this period: what every
// agent committed, what can still be granted, and the grant each holds.
type BudgetLedger struct {
	SpentUSD     float64 `json:"spent_usd"`
	AvailableUSD float64 `json:"available_usd"`
	// BurnPerHour is how fast committed spend grew over the last half
	// hour, as the answering agent watched it; 0 until it has watched for
	// a minute.
	BurnPerHour float64       `json:"burn_per_hour_usd,omitempty"`
	Grants      []BudgetGrant `json:"grants,omitempty"`
}

// BudgetGrant is what one agent was granted of a budget and has committed
// against it.
type BudgetGrant struct {
	Agent      string  `json:"agent"`
	GrantedUSD float64 `json:"granted_usd"`
	UsedUSD    float64 `json:"used_usd"`
}

// Used is the fraction of the limit spent or reserved.
func (b Budget) Used() float64 {
	if b.LimitUSD <= 0 {
		return 0
	}
	return (b.SpentUSD + b.ReservedUSD) / b.LimitUSD
}

// Spend dimensions.
const (
	DimFeature = "feature"
	DimTeam    = "team"
	DimKey     = "key"
	DimModel   = "model"
)

// SpendNone names the row of calls without the dimension's value: no
// feature, team, key or model (a call refused before one was known), so
// each dimension's rows add up to the window's whole spend.
const SpendNone = "(none)"

// Spend is the spend of one feature, team, key or model over the window.
type Spend struct {
	Dimension string  `json:"dimension"`
	Name      string  `json:"name"`
	Requests  int64   `json:"requests"`
	Tokens    int64   `json:"tokens"`
	CostUSD   float64 `json:"cost_usd"`
	// Unpriced counts the requests to models of unknown price: their
	// cost is not in CostUSD, which is then a lower bound.
	Unpriced int64 `json:"unpriced,omitempty"`
}

// Budgets is the budgets endpoint: every budget and the window's spend.
type Budgets struct {
	Time          time.Time `json:"time"`
	WindowSeconds int       `json:"window_s"`
	Budgets       []Budget  `json:"budgets"`
	Spend         []Spend   `json:"spend,omitempty"`
}

// AuditEntry is one accepted change of the cluster's state. Before and
// After sum the target up (a name and digest, or a short value); Diff
// lists the fields the change set, with secrets left out.
type AuditEntry struct {
	Seq       uint64        `json:"seq"`
	Index     uint64        `json:"index"`
	Time      time.Time     `json:"time"`
	Actor     string        `json:"actor"`
	RequestID string        `json:"request_id,omitempty"`
	Command   string        `json:"command"` // the kind of change, e.g. move_label
	Target    string        `json:"target"`  // the object changed, e.g. feature/support-answer
	Before    string        `json:"before,omitempty"`
	After     string        `json:"after,omitempty"`
	Diff      []AuditChange `json:"diff,omitempty"`
	Reason    string        `json:"reason,omitempty"`
}

// AuditChange is one field a change set: its path (e.g. labels.canary,
// params.temperature) and its values before and after, as JSON; an empty
// side means the field was absent.
type AuditChange struct {
	Field  string `json:"field"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// AuditList is one page of the audit log, newest first.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
	Next    string       `json:"next,omitempty"`
}

// AuditQuery filters the audit log. Zero fields do not filter.
type AuditQuery struct {
	Actor string `json:"actor,omitempty"` // exactly, e.g. token:alice
	// Kind is the command, exactly (move_label, apply_config, put_key, …).
	Kind string `json:"kind,omitempty"`
	// Object matches a substring of the target, case-insensitively, e.g.
	// support-answer or key/.
	Object string `json:"object,omitempty"`
	Limit  int    `json:"limit,omitempty"`  // 1..MaxAuditLimit, default 100
	Cursor string `json:"cursor,omitempty"` // AuditList.Next of the previous page
}

// MaxAuditLimit bounds one page of the audit log.
const MaxAuditLimit = 1000

// Values encodes the query as URL parameters.
func (q AuditQuery) Values() url.Values {
	v := url.Values{}
	for _, p := range []struct{ k, s string }{{"actor", q.Actor}, {"kind", q.Kind}, {"object", q.Object}, {"cursor", q.Cursor}} {
		if p.s != "" {
			v.Set(p.k, p.s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// ParseAuditQuery decodes URL parameters; the error names the bad one.
func ParseAuditQuery(v url.Values) (AuditQuery, error) {
	q := AuditQuery{Actor: v.Get("actor"), Kind: v.Get("kind"), Object: v.Get("object"), Cursor: v.Get("cursor")}
	for _, p := range []struct{ name, v string }{{"actor", q.Actor}, {"kind", q.Kind}, {"object", q.Object}, {"cursor", q.Cursor}} {
		if len(p.v) > MaxQueryParamLen {
			return AuditQuery{}, fmt.Errorf("%s: longer than %d bytes", p.name, MaxQueryParamLen)
		}
	}
	if q.Cursor != "" {
		if n, err := strconv.ParseUint(q.Cursor, 10, 64); err != nil || n == 0 {
			return AuditQuery{}, fmt.Errorf("cursor: want the next value of the previous page, got %.64q", q.Cursor)
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAuditLimit {
			return AuditQuery{}, fmt.Errorf("limit: want 1..%d, got %.64q", MaxAuditLimit, s)
		}
		q.Limit = n
	}
	return q, nil
}
