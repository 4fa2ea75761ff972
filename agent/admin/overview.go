package admin

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/config"
	"gantry/pipeline/trace"
)

// Overview bounds.
const (
	// DefaultOverviewWindow is the window of GET /admin/v1/overview
	// without ?window=.
	DefaultOverviewWindow = 5 * time.Minute
	// MaxOverviewWindow bounds ?window=.
	MaxOverviewWindow = time.Hour
	// CostSeriesMinutes is the length of the overview's per-minute cost
	// series, whatever the window.
	CostSeriesMinutes = 30
)

// windowParam reads ?window= in whole seconds from lo to hi, or
// DefaultOverviewWindow when it is absent; a bad value is answered with 400
// and ok false.
func windowParam(w http.ResponseWriter, r *http.Request, lo, hi time.Duration) (window time.Duration, ok bool) {
	v := r.URL.Query().Get("window")
	if v == "" {
		return DefaultOverviewWindow, true
	}
	n, err := strconv.Atoi(v)
	if window = time.Duration(n) * time.Second; err != nil || window < lo || window > hi {
		badRequest(w, "window: want whole seconds from %d to %d, got %q", int(lo/time.Second), int(hi/time.Second), v)
		return 0, false
	}
	return window, true
}

// overview serves GET /admin/v1/overview: this agent's traffic over the
// last ?window= seconds (default 300), computed from its trace store.
func (a *API) overview(w http.ResponseWriter, r *http.Request) {
	window, ok := windowParam(w, r, 10*time.Second, MaxOverviewWindow)
	if !ok {
		return
	}
	now := time.Now()
	span := max(window, CostSeriesMinutes*time.Minute)
	limit := a.TraceMaxCount
	sums := a.Traces.Search(trace.Query{Since: now.Add(-span), Limit: limit})
	// When the search holds every stored trace, the store is younger than
	// the window and rates are over its age, not the whole window.
	complete := len(sums) < limit && len(sums) == a.Traces.Stats().Count
	labels := map[string]string{}
	if snap := a.Gateway.Snapshot(); snap != nil && snap.Config != nil {
		for _, f := range snap.Config.Features {
			for _, v := range []int{f.Labels.Production, f.Labels.Canary} {
				if l := labelOf(f.Labels, v); v != 0 && l != "" {
					labels[config.ReleaseID(f.Name, v)] = l
				}
			}
		}
	}
	httpio.JSON(w, http.StatusOK, computeOverview(a.NodeID, now, window, sums, complete, labels))
}

// statsAcc accumulates api.Stats; latencies are kept for percentiles.
type statsAcc struct {
	api.Stats
	lat []float64
}

func (a *statsAcc) add(t *trace.Summary) {
	a.Requests++
	if t.Status != "ok" {
		a.Errors++
	}
	if t.Validation > 0 {
		a.ValidationFailures++
	}
	switch t.Feedback {
	case "":
	case "up":
		a.FeedbackUp++
	case "down":
		a.FeedbackDown++
	default: // a score from 0 to 1: at least half counts as up
		if v, err := strconv.ParseFloat(t.Feedback, 64); err == nil {
			if v >= 0.5 {
				a.FeedbackUp++
			} else {
				a.FeedbackDown++
			}
		}
	}
	a.CostUSD += t.CostUSD
	a.InputTokens += int64(t.InputTokens)
	a.OutputTokens += int64(t.OutputTokens)
	a.lat = append(a.lat, float64(t.Duration))
}

// done sorts the latencies and fills in the percentiles.
func (a *statsAcc) done() api.Stats {
	slices.Sort(a.lat)
	a.P50 = trace.Millis(percentile(a.lat, 0.50))
	a.P95 = trace.Millis(percentile(a.lat, 0.95))
	return a.Stats
}

// percentile is the nearest-rank percentile of sorted values; 0 when empty.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// computeOverview turns trace summaries (newest first, as the store's
// search returns them) into the overview of the window ending at now.
// complete says sums holds every trace the agent has, so when the oldest
// is younger than the window, rates are over the time since it.
// labels maps release ids to the label pointing at them.
func computeOverview(node string, now time.Time, window time.Duration, sums []trace.Summary, complete bool, labels map[string]string) api.Overview {
	o := api.Overview{Node: node, Time: now.UTC(), WindowSeconds: int(window / time.Second)}
	from := now.Add(-window)
	seriesFrom := now.Add(-CostSeriesMinutes * time.Minute)
	o.CostSeries = make([]float64, CostSeriesMinutes)
	var all, noFeature statsAcc
	features := map[string]*statsAcc{}
	releases := map[string]*statsAcc{}
	relOf := map[string]api.ReleaseStats{}
	for i := range sums {
		t := &sums[i]
		if !t.Start.Before(seriesFrom) && t.Start.Before(now) {
			m := int(t.Start.Sub(seriesFrom) / time.Minute)
			o.CostSeries[min(m, CostSeriesMinutes-1)] += t.CostUSD
		}
		if t.Start.Before(from) || t.Start.After(now) {
			continue
		}
		all.add(t)
		if t.Feature == "" {
			noFeature.add(t)
			continue
		}
		acc(features, t.Feature).add(t)
		if t.Release != "" {
			acc(releases, t.Release).add(t)
			if _, ok := relOf[t.Release]; !ok {
				relOf[t.Release] = api.ReleaseStats{Feature: t.Feature, Release: t.Release, Version: config.ReleaseVersion(t.Release), Label: labels[t.Release]}
			}
		}
	}
	span := window
	if complete && len(sums) > 0 {
		// The oldest trace of all is sums' last; younger than the window
		// means the agent has not been up (or busy) for all of it.
		if age := now.Sub(sums[len(sums)-1].Start); age < window {
			span = max(age, time.Second)
		}
	}
	st := all.done()
	o.Totals, o.NoFeature = st, noFeature.done()
	o.RequestsPerSec = float64(st.Requests) / span.Seconds()
	o.ErrorRate = st.ErrorRate()
	o.P50, o.P95 = st.P50, st.P95
	o.CostPerMinute = st.CostUSD / span.Minutes()
	for name, a := range features {
		o.Features = append(o.Features, api.FeatureStats{Feature: name, Stats: a.done()})
	}
	sort.Slice(o.Features, func(i, j int) bool { return o.Features[i].Feature < o.Features[j].Feature })
	for id, a := range releases {
		rs := relOf[id]
		rs.Stats = a.done()
		o.Releases = append(o.Releases, rs)
	}
	sort.Slice(o.Releases, func(i, j int) bool { return o.Releases[i].Release < o.Releases[j].Release })
	return o
}

func acc(m map[string]*statsAcc, k string) *statsAcc {
	a, ok := m[k]
	if !ok {
		a = &statsAcc{}
		m[k] = a
	}
	return a
}
