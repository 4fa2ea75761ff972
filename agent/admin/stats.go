package admin

import (
	"gantry/eval/sketch"

	"net/http"
	"slices"
	"strconv"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/stats"
	"gantry/config"
	"gantry/pipeline/trace"
)

// Bounds of GET /admin/v1/releases/stats?window=.
const (
	minStatsWindow = time.Minute
	maxStatsWindow = stats.WindowMinutes * time.Minute
)

// getReleaseStats serves GET /admin/v1/releases/stats: every release's
// traffic as the whole cluster committed it, from this agent's replicated
// state (?consistent=1 for a linearizable read), since it first served and
// over the last ?window= seconds (default 300, whole minutes), optionally
// of one ?feature=.
func (a *API) getReleaseStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	window, ok := windowParam(w, r, minStatsWindow, maxStatsWindow)
	if !ok {
		return
	}
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	feature := q.Get("feature")
	if _, ok := st.Feature(feature); feature != "" && !ok {
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, "no feature "+strconv.Quote(feature))
		return
	}
	now := time.Now()
	out := api.ClusterStats{Node: a.NodeID, Time: now.UTC(), Index: st.Index, WindowSeconds: int(window / time.Second),
		SyncSeconds: max(1, int(a.StatsInterval/time.Second)), Releases: []api.ClusterReleaseStats{}}
	ids := make([]string, 0, len(st.Stats.Releases))
	for id, rel := range st.Stats.Releases {
		if feature == "" || rel.Feature == feature {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		rel := st.Stats.Releases[id]
		label := ""
		if f, ok := st.Feature(rel.Feature); ok {
			label = labelOf(f.Labels, rel.Version)
		}
		wc, ws := rel.Window(now.Add(-window), now)
		out.Releases = append(out.Releases, api.ClusterReleaseStats{
			Feature: rel.Feature, Release: id, Version: rel.Version, Label: label,
			Total: apiStats(rel.Counters, rel.Latency), Window: apiStats(wc, ws), Updated: rel.Updated,
		})
	}
	httpio.JSON(w, http.StatusOK, out)
}

// labelOf names the label that points at version, as the overview does: a
// canary at weight 0 serves nothing and is not named.
func labelOf(l config.Labels, version int) string {
	switch {
	case l.Production == version:
		return config.LabelProduction
	case l.Canary == version && l.CanaryWeight > 0:
		return config.LabelCanary
	}
	return ""
}

func apiStats(c stats.Counters, lat sketch.Sketch) api.Stats {
	p := lat.Quantiles(0.5, 0.95)
	return api.Stats{
		Requests: c.Requests, Errors: c.Errors, ValidationFailures: c.ValidationFailures,
		FeedbackUp: c.FeedbackUp, FeedbackDown: c.FeedbackDown,
		P50: trace.Millis(p[0]), P95: trace.Millis(p[1]),
		CostUSD: c.CostUSD, InputTokens: c.InputTokens, OutputTokens: c.OutputTokens,
	}
}
