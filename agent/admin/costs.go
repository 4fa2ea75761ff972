package admin

import (
	"net/http"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/pipeline/costs"
)

// getCosts serves GET /admin/v1/costs: this agent's calls of the window
// grouped by feature, release, model or team, with the cost of a call, of a
// validated answer, of an answer without negative feedback and, from the
// cluster's evaluation runs, of a passing case.
func (a *API) getCosts(w http.ResponseWriter, r *http.Request) {
	if a.Costs == nil {
		httpio.APIError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "this agent keeps no cost table")
		return
	}
	q := r.URL.Query()
	by := q.Get("by")
	if by == "" {
		by = costs.ByFeature
	}
	window := costs.Retention
	if v := q.Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			badRequest(w, "window: want a duration such as 1h or 24h, got %q", v)
			return
		}
		window = d
	}
	groups, err := a.Costs.Sum(by, window)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	now := time.Now()
	passing := a.passingCases(r, by, now.Add(-window))
	out := api.Costs{Node: a.NodeID, Time: now.UTC(), By: by, WindowSeconds: int(window / time.Second), Rows: []api.CostRow{}}
	for _, g := range groups {
		row := api.CostRow{Group: g.Name, Calls: g.Calls, CostUSD: g.CostUSD, Answered: g.Answered, Validated: g.Validated, NegativeFeedback: g.NegativeFeedback,
			CascadeCalls: g.CascadeCalls, Escalated: g.Escalated, CostWithoutEscalationUSD: g.BaseCostUSD,
			TokensSaved: g.TokensSaved, SemanticHits: g.SemanticHits,
		}
		row.SetRates()
		if p, ok := passing[g.Name]; ok {
			row.CostPerPassingCaseUSD = costs.Per(p.cost, p.passed)
		}
		out.Rows = append(out.Rows, row)
	}
	httpio.JSON(w, http.StatusOK, out)
}

type passed struct {
	cost   float64
	passed int64
}

// passingCases is the cost and passing cases of the latest evaluation run
// of each release recorded since, grouped by release or feature; nothing
// for other dimensions or without a cluster.
func (a *API) passingCases(r *http.Request, by string, since time.Time) map[string]passed {
	out := map[string]passed{}
	if a.Cluster == nil || (by != costs.ByRelease && by != costs.ByFeature) {
		return out
	}
	st, err := a.readState(r)
	if err != nil {
		return out
	}
	return passingByGroup(st.Eval.Runs, by, since)
}

// passingByGroup sums the cost and passing cases of the latest run of each
// release recorded since, by release or by feature.
func passingByGroup(runs map[string][]state.RunRecord, by string, since time.Time) map[string]passed {
	out := map[string]passed{}
	for f, runs := range runs {
		latest := map[int]int{} // release version -> index into runs
		for i, rec := range runs {
			if rec.Time.Before(since) {
				continue
			}
			if j, ok := latest[rec.Summary.Release]; !ok || runs[j].Index < rec.Index {
				latest[rec.Summary.Release] = i
			}
		}
		for v, i := range latest {
			s := runs[i].Summary
			name := f
			if by == costs.ByRelease {
				name = config.ReleaseID(f, v)
			}
			p := out[name]
			p.cost += s.CostUSD
			p.passed += int64(s.Passed)
			out[name] = p
		}
	}
	return out
}
