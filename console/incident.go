package console

import (
	"context"
	"net/http"
	"sort"

	"gantry/api"
)

// Alerts are what the agent sees wrong now, worst first.
func (c *Client) Alerts(ctx context.Context) (api.Alerts, error) {
	var out api.Alerts
	err := c.do(ctx, http.MethodGet, api.PathAlerts, nil, &out)
	return out, err
}

// ModelHealth is the agent's calls by model and provider, breakers included.
func (c *Client) ModelHealth(ctx context.Context) (api.Health, error) {
	var out api.Health
	err := c.do(ctx, http.MethodGet, api.PathHealth, nil, &out)
	return out, err
}

// CostsByRelease is what this agent's calls and good answers cost, by
// release, over the last day.
func (c *Client) CostsByRelease(ctx context.Context) ([]api.CostRow, error) {
	var out api.Costs
	err := c.do(ctx, http.MethodGet, api.PathCosts+"?by=release", nil, &out)
	return out.Rows, err
}

// Audit is one page of the cluster's audit log, newest first.
func (c *Client) Audit(ctx context.Context, q api.AuditQuery) (api.AuditList, error) {
	var out api.AuditList
	path := api.PathAudit
	if v := q.Values().Encode(); v != "" {
		path += "?" + v
	}
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// MergeAlerts combines the alerts of several agents. Agents see the same
// cluster-wide conditions (a member down, a canary failing) and each its
// own (its breakers, its disk): an alert seen by several is shown once,
// since the first saw it, at its worst severity, naming every agent that
// raised it.
func MergeAlerts(lists []api.Alerts) api.Alerts {
	var out api.Alerts
	byID := map[string]int{}
	for _, l := range lists {
		if l.Time.After(out.Time) {
			out.Time = l.Time
		}
		for _, a := range l.Alerts {
			i, ok := byID[a.ID]
			if !ok {
				byID[a.ID] = len(out.Alerts)
				out.Alerts = append(out.Alerts, a)
				continue
			}
			cur := &out.Alerts[i]
			since, nodes := cur.Since, cur.Node
			if a.Since.Before(since) {
				since = a.Since
			}
			if api.SeverityRank(a.Severity) < api.SeverityRank(cur.Severity) {
				*cur = a // the worse account, with its numbers
			}
			cur.Since, cur.Node = since, nodes
			if a.Node != "" && !containsWord(nodes, a.Node) {
				cur.Node += "," + a.Node
			}
		}
	}
	if len(lists) == 1 {
		out.Node = lists[0].Node
	} else {
		out.Node = "cluster"
	}
	api.SortAlerts(out.Alerts)
	return out
}

func containsWord(list, w string) bool {
	for i := 0; i < len(list); {
		j := i
		for j < len(list) && list[j] != ',' {
			j++
		}
		if list[i:j] == w {
			return true
		}
		i = j + 1
	}
	return false
}

// MergeHealth combines the health of several agents: counts add up; a
// percentile cannot be merged from percentiles, so the slowest agent's is
// shown; a model's breaker is the worst any agent reports: one agent with
// an open circuit is what the operator needs to see.
func MergeHealth(hs []api.Health) api.Health {
	if len(hs) == 1 {
		return hs[0]
	}
	out := api.Health{Node: "cluster"}
	models := map[string]*api.ModelHealth{}
	providers := map[string]*api.ProviderHealth{}
	for _, h := range hs {
		if h.Time.After(out.Time) {
			out.Time = h.Time
		}
		out.WindowSeconds = max(out.WindowSeconds, h.WindowSeconds)
		out.Totals = addHealth(out.Totals, h.Totals, true)
		for _, m := range h.Models {
			cur, ok := models[m.Model]
			if !ok {
				c := m
				c.ErrorsByKind = copyKinds(m.ErrorsByKind)
				models[m.Model] = &c
				continue
			}
			cur.HealthStats = addHealth(cur.HealthStats, m.HealthStats, false)
			if breakerRank(m.Breaker) > breakerRank(cur.Breaker) {
				cur.Breaker = m.Breaker
			}
		}
		for _, p := range h.Providers {
			cur, ok := providers[p.Provider]
			if !ok {
				c := p
				c.ErrorsByKind = copyKinds(p.ErrorsByKind)
				providers[p.Provider] = &c
				continue
			}
			cur.HealthStats = addHealth(cur.HealthStats, p.HealthStats, false)
		}
	}
	for _, m := range models {
		out.Models = append(out.Models, *m)
	}
	sort.Slice(out.Models, func(i, j int) bool { return out.Models[i].Model < out.Models[j].Model })
	for _, p := range providers {
		out.Providers = append(out.Providers, *p)
	}
	sort.Slice(out.Providers, func(i, j int) bool { return out.Providers[i].Provider < out.Providers[j].Provider })
	return out
}

func breakerRank(s string) int {
	switch s {
	case api.BreakerOpen:
		return 2
	case api.BreakerHalfOpen:
		return 1
	}
	return 0
}

func copyKinds(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// addHealth adds b to a. The error rate is recomputed from the sums: per
// attempt for models and providers, per call for the totals.
func addHealth(a, b api.HealthStats, perCall bool) api.HealthStats {
	a.Calls += b.Calls
	a.Attempts += b.Attempts
	a.Errors += b.Errors
	if a.ErrorsByKind == nil && len(b.ErrorsByKind) > 0 {
		a.ErrorsByKind = map[string]int64{}
	}
	for k, v := range b.ErrorsByKind {
		a.ErrorsByKind[k] += v
	}
	a.P50, a.P95 = max(a.P50, b.P50), max(a.P95, b.P95)
	a.TTFTP50, a.TTFTP95 = max(a.TTFTP50, b.TTFTP50), max(a.TTFTP95, b.TTFTP95)
	a.Retries += b.Retries
	a.Fallbacks += b.Fallbacks
	switch {
	case !perCall && a.Attempts > 0:
		a.ErrorRate = float64(a.Errors) / float64(a.Attempts)
	case a.Calls > 0:
		a.ErrorRate = float64(a.Errors) / float64(a.Calls)
	default:
		a.ErrorRate = 0
	}
	return a
}
