package admin

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/eval/canary"
	"gantry/pipeline/trace"
)

// Alert timings.
const (
	// AlertInterval is how often an agent looks for alerts unasked.
	AlertInterval = 2 * time.Second
	// alertFresh: GET /admin/v1/alerts answers from the last look when it
	// is this recent, so consoles polling every agent share looks.
	alertFresh = time.Second
	// diskStallMemory is how long a stalled log write keeps its alert.
	diskStallMemory = 10 * time.Minute
	// canaryMemory is how long a canary rolled back for a regression keeps
	// its (informational) alert.
	canaryMemory = time.Hour
	// soonExhausts makes a budget's forecast critical: it runs out within
	// this much.
	soonExhausts = time.Hour
	// criticalErrorRate makes an error rate alert critical.
	criticalErrorRate = 0.5
)

// alertGrace is how long a condition that an election or a restart
// causes in passing must last before it alerts.
var alertGrace = map[string]time.Duration{
	api.AlertNoLeader:   5 * time.Second,
	api.AlertMemberDown: 3 * time.Second,
}

// AlertBook keeps the alerts an agent found at its last look and when each
// began, so an alert's Since holds while it lasts, and publishes their
// count by severity as gantry_alerts{severity}. It is the agent's, shared
// by every admin API value built over it.
type AlertBook struct {
	mu    sync.Mutex
	since map[string]time.Time
	last  api.Alerts
	at    time.Time
	gauge *prometheus.GaugeVec
}

// NewAlertBook returns an empty book whose gauge is registered with reg.
func NewAlertBook(reg prometheus.Registerer) *AlertBook {
	b := &AlertBook{since: map[string]time.Time{}, gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "gantry", Name: "alerts",
		Help: "Alerts this agent sees now, by severity (critical, warning, info)."}, []string{"severity"})}
	for _, s := range []string{api.SeverityCritical, api.SeverityWarning, api.SeverityInfo} {
		b.gauge.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(b.gauge)
	}
	return b
}

// record takes the alerts of a look at now: an alert seen before keeps its
// start, a new one starts now, and one no longer seen is forgotten.
func (b *AlertBook) record(now time.Time, node string, found []api.Alert) api.Alerts {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := make(map[string]time.Time, len(found))
	counts := map[string]int{}
	shown := make([]api.Alert, 0, len(found))
	for _, al := range found {
		al.Node = node
		since, ok := b.since[al.ID]
		if !ok {
			since = now.UTC()
		}
		// A condition that says when it began (a canary's decision)
		// began then, not when this agent first looked.
		if !al.Since.IsZero() && al.Since.Before(since) {
			since = al.Since.UTC()
		}
		al.Since, next[al.ID] = since, since
		if now.Sub(since) < alertGrace[al.Kind] {
			continue // not yet: it may pass by itself
		}
		counts[al.Severity]++
		shown = append(shown, al)
	}
	b.since = next
	api.SortAlerts(shown)
	b.last, b.at = api.Alerts{Node: node, Time: now.UTC(), Alerts: shown}, now
	for _, s := range []string{api.SeverityCritical, api.SeverityWarning, api.SeverityInfo} {
		b.gauge.WithLabelValues(s).Set(float64(counts[s]))
	}
	return b.last
}

// recent is the last look when it is younger than alertFresh.
func (b *AlertBook) recent(now time.Time) (api.Alerts, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, !b.at.IsZero() && now.Sub(b.at) < alertFresh
}

// RunAlerts looks for alerts every AlertInterval until ctx ends, so the
// gauge and the alerts' start times follow conditions nobody asks about.
func (a *API) RunAlerts(ctx context.Context) {
	t := time.NewTicker(AlertInterval)
	defer t.Stop()
	for {
		a.RefreshAlerts(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefreshAlerts looks for alerts now and records them in the book.
func (a *API) RefreshAlerts(ctx context.Context) api.Alerts {
	now := time.Now()
	return a.AlertBook.record(now, a.NodeID, a.findAlerts(ctx, now))
}

// getAlerts serves GET /admin/v1/alerts: the alerts of the last look,
// looking again when it is older than alertFresh.
func (a *API) getAlerts(w http.ResponseWriter, r *http.Request) {
	out, ok := a.AlertBook.recent(time.Now())
	if !ok {
		out = a.RefreshAlerts(r.Context())
	}
	if out.Alerts == nil {
		out.Alerts = []api.Alert{}
	}
	httpio.JSON(w, http.StatusOK, out)
}

// findAlerts computes every alert this agent sees at now from what it
// already knows: its budgets, breakers and traffic, and the cluster's
// members, disk and canaries.
func (a *API) findAlerts(ctx context.Context, now time.Time) []api.Alert {
	var out []api.Alert
	var cfg *config.Config
	if snap := a.Gateway.Snapshot(); snap != nil {
		cfg = snap.Config
	}
	if cfg != nil {
		th := cfg.Alerts.WithDefaults()
		if len(cfg.Budgets) > 0 {
			recent := a.Traces.Search(trace.Query{Since: now.Add(-BudgetWindow), Limit: 1 << 20})
			out = append(out, budgetAlerts(cfg, a.budgetRows(cfg, recent, now), now)...)
		}
		traces := a.Traces.Recent(now.Add(-th.Window.D()), a.TraceMaxCount)
		h := computeHealth(a.NodeID, now, th.Window.D(), traces, a.models(), a.breaker)
		out = append(out, breakerAlerts(h)...)
		out = append(out, trafficAlerts(th, h, traces)...)
	}
	if a.Cluster != nil {
		out = append(out, a.clusterAlerts(ctx, now)...)
	}
	return out
}

func alertID(kind, subject string) string { return kind + "/" + subject }

func link(view string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return api.ViewLink(view, q)
}

// budgetAlerts: a budget spent, past its soft threshold, or running out
// before its period ends at the current burn.
func budgetAlerts(cfg *config.Config, rows []api.Budget, now time.Time) []api.Alert {
	soft := map[string]float64{}
	for _, b := range cfg.Budgets {
		soft[b.Name] = b.SoftThreshold
	}
	var out []api.Alert
	for _, b := range rows {
		subject, who := "budget/"+b.Name, b.Name
		if b.Scope == config.ScopeUser {
			subject, who = subject+"/user:"+b.Match, b.Name+" for user "+b.Match
		}
		used := b.Used()
		nums := []api.AlertNumber{{Name: "spent", Value: b.SpentUSD, Unit: "usd"}, {Name: "limit", Value: b.LimitUSD, Unit: "usd"},
			{Name: "used", Value: used, Unit: "ratio", Threshold: soft[b.Name]}, {Name: "burn", Value: b.BurnPerHour, Unit: "usd/h"}}
		l := link("budgets", "name", b.Name)
		switch {
		case used >= 1:
			out = append(out, api.Alert{ID: alertID(api.AlertBudgetExhausts, subject), Kind: api.AlertBudgetExhausts, Severity: api.SeverityCritical,
				Subject: subject, Summary: fmt.Sprintf("budget %s is spent: $%.4f of $%.2f this %s", who, b.SpentUSD+b.ReservedUSD, b.LimitUSD, b.Period),
				Numbers: nums, Link: l})
			continue
		case b.Exhausts != nil:
			left := b.Exhausts.Sub(now)
			sev := api.SeverityWarning
			if left < soonExhausts {
				sev = api.SeverityCritical
			}
			when := ", before its " + b.Period + " ends"
			if b.PeriodEnd.IsZero() {
				when = "" // a total budget has no period to outlast
			}
			out = append(out, api.Alert{ID: alertID(api.AlertBudgetExhausts, subject), Kind: api.AlertBudgetExhausts, Severity: sev,
				Subject: subject, Summary: fmt.Sprintf("budget %s runs out in %s at $%.4f/h%s", who, left.Round(time.Minute), b.BurnPerHour, when),
				Numbers: append(nums, api.AlertNumber{Name: "exhausts_in", Value: left.Seconds(), Unit: "s"}), Link: l})
		}
		if s := soft[b.Name]; s > 0 && used >= s {
			out = append(out, api.Alert{ID: alertID(api.AlertBudgetSoft, subject), Kind: api.AlertBudgetSoft, Severity: api.SeverityWarning,
				Subject: subject, Summary: fmt.Sprintf("budget %s crossed its soft threshold: %.0f%% used, threshold %.0f%%", who, used*100, s*100),
				Numbers: nums, Link: l})
		}
	}
	return out
}

// breakerAlerts: a model whose circuit is open (critical) or probing
// (warning).
func breakerAlerts(h api.Health) []api.Alert {
	var out []api.Alert
	for _, m := range h.Models {
		sev := ""
		switch m.Breaker {
		case api.BreakerOpen:
			sev = api.SeverityCritical
		case api.BreakerHalfOpen:
			sev = api.SeverityWarning
		default:
			continue
		}
		subject := "model/" + m.Model
		filter := failedFilter(m.HealthStats, "model", m.Model)
		out = append(out, api.Alert{ID: alertID(api.AlertBreakerOpen, subject), Kind: api.AlertBreakerOpen, Severity: sev, Subject: subject,
			Summary: fmt.Sprintf("%s: circuit %s after %d failed attempts in %ds%s", m.Model, m.Breaker, m.Errors, h.WindowSeconds, topKinds(m.ErrorsByKind)),
			Numbers: []api.AlertNumber{{Name: "errors", Value: float64(m.Errors), Unit: "count"}, {Name: "error_rate", Value: m.ErrorRate, Unit: "ratio"},
				{Name: "fallbacks", Value: float64(m.Fallbacks), Unit: "count"}},
			Link: link("traces", filter...)})
	}
	return out
}

// failedFilter is the trace filter of the calls that failed on a model or
// provider: those the client saw fail (status=error) when nothing saved
// them, else, when fallbacks answered some, those whose attempts failed
// there by the commonest failure, which status=error would miss.
func failedFilter(h api.HealthStats, field, value string) []string {
	if h.Fallbacks == 0 {
		return []string{field, value, "status", "error"}
	}
	failed := map[string]int64{}
	for k, n := range h.ErrorsByKind {
		if k != "circuit_open" {
			failed[k] = n
		}
	}
	if top, _ := topKind(failed); top != "" {
		return []string{field, value, "error_kind", top}
	}
	return []string{field, value, "status", "error"}
}

// topKinds is " (http_500 12, timeout 3)": the commonest failures first.
func topKinds(kinds map[string]int64) string {
	if len(kinds) == 0 {
		return ""
	}
	type kc struct {
		k string
		n int64
	}
	var all []kc
	for k, n := range kinds {
		all = append(all, kc{k, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].k < all[j].k })
	var parts []string
	for _, x := range all[:min(len(all), 3)] {
		parts = append(parts, fmt.Sprintf("%s %d", x.k, x.n))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// trafficAlerts: the error rate or p95 latency of a feature, model or
// provider above the configured threshold, once it had enough calls; and
// calls refused before any feature at a rate above it.
func trafficAlerts(th config.Alerts, h api.Health, traces []*trace.Trace) []api.Alert {
	var out []api.Alert
	p95 := float64(th.P95.D()) / float64(time.Millisecond)
	check := func(subject, what string, n int64, errRate, p float64, kinds map[string]int64, errFilter, slowFilter []string) {
		if n < int64(th.MinCalls) {
			return
		}
		if errRate > th.ErrorRate {
			sev := api.SeverityWarning
			if errRate >= criticalErrorRate {
				sev = api.SeverityCritical
			}
			out = append(out, api.Alert{ID: alertID(api.AlertErrorRate, subject), Kind: api.AlertErrorRate, Severity: sev, Subject: subject,
				Summary: fmt.Sprintf("%s: %.0f%% errors over %ds, threshold %.0f%%%s", what, errRate*100, h.WindowSeconds, th.ErrorRate*100, topKinds(kinds)),
				Numbers: []api.AlertNumber{{Name: "error_rate", Value: errRate, Unit: "ratio", Threshold: th.ErrorRate}, {Name: "calls", Value: float64(n), Unit: "count"}},
				Link:    link("traces", errFilter...)})
		}
		if p > p95 {
			out = append(out, api.Alert{ID: alertID(api.AlertLatency, subject), Kind: api.AlertLatency, Severity: api.SeverityWarning, Subject: subject,
				Summary: fmt.Sprintf("%s: p95 latency %s over %ds, threshold %s", what, trace.Millis(p).D().Round(time.Millisecond), h.WindowSeconds, th.P95.D()),
				Numbers: []api.AlertNumber{{Name: "p95", Value: p, Unit: "ms", Threshold: p95}, {Name: "calls", Value: float64(n), Unit: "count"}},
				Link:    link("traces", append(slowFilter, "sort", api.SortDuration)...)})
		}
	}
	for _, m := range h.Models {
		check("model/"+m.Model, "model "+m.Model, m.Attempts, m.ErrorRate, m.P95, m.ErrorsByKind,
			failedFilter(m.HealthStats, "model", m.Model), []string{"model", m.Model})
	}
	for _, p := range h.Providers {
		check("provider/"+p.Provider, "provider "+p.Provider, p.Attempts, p.ErrorRate, p.P95, p.ErrorsByKind,
			failedFilter(p.HealthStats, "q", p.Provider), []string{"q", p.Provider})
	}
	features := map[string]*statsAcc{}
	var refused statsAcc
	refusedKinds := map[string]int64{}
	for _, t := range traces {
		s := t.Summary()
		if t.Feature == "" {
			if t.Model == "" && len(t.Attempts) == 0 { // refused before any model: a key, a limit, a bad request
				refused.add(&s)
				if k := t.ErrorKind(); k != "" {
					refusedKinds[k]++
				}
			}
			continue
		}
		acc(features, t.Feature).add(&s)
	}
	names := make([]string, 0, len(features))
	for name := range features {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := features[name].done()
		check("feature/"+name, "feature "+name, st.Requests, st.ErrorRate(), float64(st.P95), nil,
			[]string{"feature", name, "status", "error"}, []string{"feature", name})
	}
	if st := refused.done(); st.Requests >= int64(th.MinCalls) && st.ErrorRate() > th.ErrorRate {
		top, _ := topKind(refusedKinds)
		out = append(out, api.Alert{ID: alertID(api.AlertRefusedRequests, "gateway"), Kind: api.AlertRefusedRequests, Severity: api.SeverityWarning,
			Subject: "gateway", Summary: fmt.Sprintf("%d calls refused before reaching a feature or model in %ds%s", st.Errors, h.WindowSeconds, topKinds(refusedKinds)),
			Numbers: []api.AlertNumber{{Name: "refused", Value: float64(st.Errors), Unit: "count"}, {Name: "error_rate", Value: st.ErrorRate(), Unit: "ratio", Threshold: th.ErrorRate}},
			Link:    link("traces", "status", "error", "error_kind", top)})
	}
	return out
}

// topKind is the commonest kind.
func topKind(kinds map[string]int64) (string, int64) {
	best, n := "", int64(0)
	for k, c := range kinds {
		if c > n || c == n && k < best {
			best, n = k, c
		}
	}
	return best, n
}

// divergedAlerts finds members of one build that report the same state
// index with different state hashes: one of them applied a command
// differently, and the cluster no longer tells one truth. Members of
// different builds are not compared, since a newer build may encode the
// same state differently.
func divergedAlerts(ms []cluster.Member) []api.Alert {
	type point struct {
		build string
		index uint64
	}
	groups := map[point]map[string][]string{}          // hash -> member ids
	sections := map[point]map[string]map[string]bool{} // section -> its hashes
	for _, m := range ms {
		st := m.Status
		if st == nil || st.StateIndex == 0 {
			continue
		}
		p := point{st.Build, st.StateIndex}
		if groups[p] == nil {
			groups[p], sections[p] = map[string][]string{}, map[string]map[string]bool{}
		}
		groups[p][st.StateHash] = append(groups[p][st.StateHash], m.ID)
		for name, h := range st.StateSections {
			if sections[p][name] == nil {
				sections[p][name] = map[string]bool{}
			}
			sections[p][name][h] = true
		}
	}
	var out []api.Alert
	for _, p := range slices.SortedFunc(maps.Keys(groups), func(a, b point) int { return cmp.Compare(a.index, b.index) }) {
		hashes := groups[p]
		if len(hashes) < 2 {
			continue
		}
		var parts []string
		for _, h := range slices.Sorted(maps.Keys(hashes)) {
			parts = append(parts, strings.Join(hashes[h], ", ")+" "+shortHash(h))
		}
		var differ []string
		for _, name := range slices.Sorted(maps.Keys(sections[p])) {
			if len(sections[p][name]) > 1 {
				differ = append(differ, name)
			}
		}
		where := ""
		if len(differ) > 0 {
			where = " (they differ in " + strings.Join(differ, ", ") + ")"
		}
		out = append(out, api.Alert{ID: alertID(api.AlertStateDiverged, "cluster"), Kind: api.AlertStateDiverged, Severity: api.SeverityCritical, Subject: "cluster",
			Summary: fmt.Sprintf("members hold different states at index %d: %s%s", p.index, strings.Join(parts, "; "), where),
			Numbers: []api.AlertNumber{{Name: "state_index", Value: float64(p.index), Unit: "count"}, {Name: "states", Value: float64(len(hashes)), Unit: "count"}},
			Link:    "members"})
		break // one alert: the lowest index where they part
	}
	return out
}

func shortHash(h string) string {
	if len(h) > len("sha256:")+12 {
		return h[:len("sha256:")+12]
	}
	return h
}

// clusterAlerts: no leader, a member unreachable, halted or serving an
// older configuration, this agent's disk stalling, and canaries that
// regressed.
func (a *API) clusterAlerts(ctx context.Context, now time.Time) []api.Alert {
	var out []api.Alert
	if a.Cluster.Leader() == "" {
		out = append(out, api.Alert{ID: alertID(api.AlertNoLeader, "cluster"), Kind: api.AlertNoLeader, Severity: api.SeverityCritical, Subject: "cluster",
			Summary: "the cluster has no leader: configuration, label moves and spend commits wait; gateways keep serving", Link: "members"})
	}
	if ms, err := a.Cluster.Members(ctx); err == nil {
		out = append(out, divergedAlerts(ms)...)
		for _, m := range ms {
			subject := "member/" + m.ID
			sev := api.SeverityWarning
			if m.Voter {
				sev = api.SeverityCritical
			}
			switch st := m.Status; {
			case st == nil:
				out = append(out, api.Alert{ID: alertID(api.AlertMemberDown, subject), Kind: api.AlertMemberDown, Severity: sev, Subject: subject,
					Summary: fmt.Sprintf("member %s is unreachable: %s", m.ID, m.Error), Link: link("members", "id", m.ID)})
			case st.Halted != "":
				out = append(out, api.Alert{ID: alertID(api.AlertMemberDown, subject), Kind: api.AlertMemberDown, Severity: api.SeverityCritical, Subject: subject,
					Summary: fmt.Sprintf("member %s halted its state machine: %s", m.ID, st.Halted), Link: link("members", "id", m.ID)})
			case st.Unserved != "":
				out = append(out, api.Alert{ID: alertID(api.AlertConfigBehind, subject), Kind: api.AlertConfigBehind, Severity: api.SeverityWarning, Subject: subject,
					Summary: fmt.Sprintf("member %s serves an older configuration (state index %d, serving %d): %s", m.ID, st.StateIndex, st.ServingIndex, st.Unserved),
					Numbers: []api.AlertNumber{{Name: "state_index", Value: float64(st.StateIndex), Unit: "count"}, {Name: "serving_index", Value: float64(st.ServingIndex), Unit: "count"}},
					Link:    link("members", "id", m.ID)})
			}
		}
	}
	if s := a.Cluster.LastDiskStall(); s != nil && now.Sub(s.At) < diskStallMemory {
		subject := "node/" + a.NodeID
		out = append(out, api.Alert{ID: alertID(api.AlertDisk, subject), Kind: api.AlertDisk, Severity: api.SeverityWarning, Subject: subject,
			Summary: fmt.Sprintf("%s: a cluster log write took %s at %s", a.NodeID, s.Write.Round(time.Millisecond), s.At.UTC().Format(time.TimeOnly)),
			Numbers: []api.AlertNumber{{Name: "write", Value: s.Write.Seconds(), Unit: "s"}}, Since: s.At, Link: link("members", "id", a.NodeID)})
	}
	st := a.Cluster.State()
	for _, f := range st.Config.Features {
		c := apiCanary(st, f, now)
		d := c.Decision
		if d == nil {
			d = c.Now
		}
		if d == nil || d.Outcome != canary.Regression {
			continue
		}
		subject := "release/" + config.ReleaseID(f.Name, c.Canary)
		nums := []api.AlertNumber{{Name: "canary_requests", Value: float64(d.CanaryRequests), Unit: "count"}, {Name: "production_requests", Value: float64(d.ProductionRequests), Unit: "count"}}
		switch {
		case c.Live && c.Canary == f.Labels.Canary:
			out = append(out, api.Alert{ID: alertID(api.AlertCanaryFail, subject), Kind: api.AlertCanaryFail, Severity: api.SeverityCritical, Subject: subject,
				Summary: fmt.Sprintf("canary %s regressed against production v%d on %s: %s", config.ReleaseID(f.Name, c.Canary), c.Production, d.Metric, d.Reason),
				Numbers: nums, Since: c.Decided, Link: link("releases", "feature", f.Name)})
		case c.Action == state.CanaryRolledBack && now.Sub(c.Decided) < canaryMemory:
			out = append(out, api.Alert{ID: alertID(api.AlertCanaryFail, subject), Kind: api.AlertCanaryFail, Severity: api.SeverityInfo, Subject: subject,
				Summary: fmt.Sprintf("canary %s regressed on %s and was rolled back", config.ReleaseID(f.Name, c.Canary), d.Metric),
				Numbers: nums, Since: c.Decided, Link: link("releases", "feature", f.Name)})
		}
	}
	return out
}
