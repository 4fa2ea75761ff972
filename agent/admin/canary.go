package admin

import (
	"net/http"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/eval/canary"
)

// getCanary serves GET /admin/v1/features/{name}/canary.
func (a *API) getCanary(w http.ResponseWriter, r *http.Request) {
	st, f, ok := a.feature(w, r)
	if !ok {
		return
	}
	httpio.JSON(w, http.StatusOK, apiCanary(st, f, time.Now()))
}

// apiCanary is the analysis of f's canary: the decision the cluster
// recorded, and while undecided a look at the cluster's counters as of
// now. A look is a pure function of the replicated state, so any agent
// answers what the leader would see.
func apiCanary(st *state.State, f config.Feature, now time.Time) api.Canary {
	l := f.Labels
	out := api.Canary{Feature: f.Name, Live: l.Live(), Canary: l.Canary, Production: l.Production, Weight: l.CanaryWeight,
		Policy: f.Canary, OnRegression: f.Canary.Action()}
	rec, ok := st.Eval.Canaries[f.Name]
	if !ok {
		return out
	}
	if !out.Live {
		// The last canary's analysis, for what it decided.
		out.Canary, out.Production = rec.Canary, rec.Production
	} else if !rec.Matches(l) {
		return out // a new canary whose analysis has not begun yet
	}
	out.Analysed, out.Began = true, rec.Began
	out.Decision, out.Action, out.Decided = rec.Decision, rec.Action, rec.Decided
	if rec.Decision == nil && out.Live {
		pt := st.CanaryPoint(f.Name, l.Canary, l.Production, now)
		if _, d, err := canary.Step(state.CanaryPolicy(f.Canary), rec.State, pt); err == nil {
			out.Now = &d
		}
	}
	return out
}
