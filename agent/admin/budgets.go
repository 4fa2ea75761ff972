package admin

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/spend"
	"gantry/config"
	"gantry/pipeline/budget"
	"gantry/pipeline/trace"
)

// maxUserRows is how many end users of a per-user budget the endpoint
// lists: the ones who spent most.
const maxUserRows = 50

// BudgetWindow is the span of recent traces that burn rates and spend
// breakdowns are computed from.
const BudgetWindow = 30 * time.Minute

// budgets serves GET /admin/v1/budgets: every budget with what has been
// spent and is held (by the whole cluster for a budget it shares, else by
// this agent's ledger), its burn rate over the last half hour (of the
// cluster's committed spend for a shared budget, once this agent has
// watched it for a minute; else of this agent's traffic), when spend
// reaches the limit at that rate, and spend by feature, team, key and
// model.
func (a *API) budgets(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	cfg := a.served(w)
	if cfg == nil {
		return
	}
	recent := a.Traces.Search(trace.Query{Since: now.Add(-BudgetWindow), Limit: 1 << 20})
	out := api.Budgets{Time: now.UTC(), WindowSeconds: int(BudgetWindow / time.Second), Budgets: a.budgetRows(cfg, recent, now)}
	out.Spend = spendBy(recent)
	httpio.JSON(w, http.StatusOK, out)
}

// budgetRows are the budgets of cfg with their spend, burn and forecast;
// a per-user budget has a row for each of its top spenders, each with its
// own burn and forecast.
func (a *API) budgetRows(cfg *config.Config, recent []trace.Summary, now time.Time) []api.Budget {
	out := []api.Budget{}
	users := map[string][]budget.Usage{}
	top, _ := a.Ledger.Top(maxUserRows)
	for _, u := range top {
		users[u.Budget] = append(users[u.Budget], u)
	}
	for _, b := range cfg.Budgets {
		var usages []budget.Usage
		if b.Scope == config.ScopeUser {
			usages = users[b.Name] // one counter per end user
		} else {
			usages = []budget.Usage{a.Ledger.Usage(budget.Scope{Key: b.Name, Budget: b})}
		}
		for _, u := range usages {
			ab := api.Budget{Name: b.Name, Scope: b.Scope, Match: b.Match, Period: b.Period, Action: b.Action,
				LimitUSD: b.LimitUSD, SpentUSD: u.SpentUSD, ReservedUSD: u.ReservedUSD, PeriodEnd: budget.PeriodEnd(b.Period, now)}
			if b.Scope == config.ScopeUser {
				ab.Match = strings.TrimPrefix(u.Scope, b.Name+"/user:")
			}
			// A budget the cluster shares is spent and held by all agents:
			// what they committed, and the grants they hold.
			if cl := a.clusterLedger(b, now); cl != nil {
				ab.Cluster = cl
				ab.SpentUSD, ab.ReservedUSD = cl.SpentUSD, 0
				for _, g := range cl.Grants {
					ab.ReservedUSD += max(0, g.GrantedUSD-g.UsedUSD)
				}
			}
			series := costSeries(recent, now, func(t trace.Summary) bool { return inScope(b, ab.Match, t) })
			for _, c := range series {
				ab.BurnPerHour += c
			}
			ab.BurnPerHour *= float64(time.Hour) / float64(BudgetWindow)
			ab.CostSeries = series
			if ab.Cluster != nil && a.Burn != nil {
				if r, ok := a.Burn(b.Name, spend.PeriodKey(b, now)); ok {
					ab.BurnPerHour, ab.Cluster.BurnPerHour = r, r
				}
			}
			if left := b.LimitUSD - ab.SpentUSD; ab.BurnPerHour > 0 {
				at := now.Add(time.Duration(max(left, 0) / ab.BurnPerHour * float64(time.Hour)))
				if ab.PeriodEnd.IsZero() || at.Before(ab.PeriodEnd) {
					ab.Exhausts = &at
				}
			}
			out = append(out, ab)
		}
	}
	return out
}

// inScope reports whether a call counts against a budget; match is the
// row's team, key, feature or, for a per-user budget, end user.
func inScope(b config.Budget, match string, t trace.Summary) bool {
	switch b.Scope {
	case config.ScopeTeam:
		return t.Team == match
	case config.ScopeKey:
		return t.Key == match
	case config.ScopeFeature:
		return t.Feature == match
	case config.ScopeUser:
		return t.User == match
	}
	return true
}

// costSeries is the spend of each minute of the window, oldest first.
func costSeries(recent []trace.Summary, now time.Time, match func(trace.Summary) bool) []float64 {
	n := int(BudgetWindow / time.Minute)
	series := make([]float64, n)
	for _, t := range recent {
		if !match(t) {
			continue
		}
		i := n - 1 - int(now.Sub(t.Start)/time.Minute)
		if i >= 0 && i < n {
			series[i] += t.CostUSD
		}
	}
	return series
}

// spendBy breaks the window's spend down by feature, team, key and model.
func spendBy(recent []trace.Summary) []api.Spend {
	type dimKey struct{ dim, name string }
	agg := map[dimKey]*api.Spend{}
	add := func(dim, name string, t trace.Summary) {
		if name == "" {
			// Calls with no feature (a plain model call, a refused
			// one), key or model still cost and count: each dimension
			// adds up to the whole window.
			name = api.SpendNone
		}
		k := dimKey{dim, name}
		sp := agg[k]
		if sp == nil {
			sp = &api.Spend{Dimension: dim, Name: name}
			agg[k] = sp
		}
		sp.Requests++
		sp.Tokens += int64(t.InputTokens + t.OutputTokens)
		sp.CostUSD += t.CostUSD
		if t.PriceUnknown {
			sp.Unpriced++
		}
	}
	for _, t := range recent {
		add("feature", t.Feature, t)
		add("team", t.Team, t)
		add("key", t.Key, t)
		add("model", t.Model, t)
	}
	out := make([]api.Spend, 0, len(agg))
	for _, sp := range agg {
		out = append(out, *sp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dimension != out[j].Dimension {
			return out[i].Dimension < out[j].Dimension
		}
		return out[i].CostUSD > out[j].CostUSD
	})
	return out
}

// clusterLedger is b's cluster-wide ledger, or nil when this agent
// enforces b alone.
func (a *API) clusterLedger(b config.Budget, now time.Time) *api.BudgetLedger {
	if a.Burn == nil || a.Cluster == nil || !spend.Tracked(b) {
		return nil
	}
	l := a.Cluster.State().Spend
	out := &api.BudgetLedger{AvailableUSD: l.Available(b, now)}
	acct, ok := l.Accounts[b.Name]
	if !ok || acct.Period != spend.PeriodKey(b, now) {
		return out
	}
	out.SpentUSD = acct.Spent
	for agent, g := range acct.Grants {
		out.Grants = append(out.Grants, api.BudgetGrant{Agent: agent, GrantedUSD: g.Granted, UsedUSD: g.Used})
	}
	sort.Slice(out.Grants, func(i, j int) bool { return out.Grants[i].Agent < out.Grants[j].Agent })
	return out
}
