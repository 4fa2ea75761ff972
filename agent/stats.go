package agent

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/api"
	"gantry/cluster/state"
	"gantry/cluster/stats"
	"gantry/config"
	"gantry/pipeline/trace"
)

// statsSyncInterval is how often an agent commits its per-release counts.
// It is how far the cluster-wide counters lag behind the traffic, and each
// agent adds one log entry per interval while it serves traffic.
var statsSyncInterval = 5 * time.Second

// statsSide counts this agent's calls and feedback per release and commits
// them to the cluster, so any agent can answer for all of them. Counting is
// a short critical section on the request path; committing is a loop of
// the cluster side.
type statsSide struct {
	acc *stats.Accumulator
	// fbMu makes reading a trace's latest signal and adding the next one
	// one step, so two signals at once on a trace cannot both move it from
	// "none". Feedback is rare and already written to disk one at a time.
	fbMu sync.Mutex
	// resumed is set once the batch sequence is read from the cluster:
	// before that a batch could reuse a committed sequence and be dropped.
	resumed  atomic.Bool
	failures prometheus.Counter
}

func newStatsSide(node string, reg prometheus.Registerer) *statsSide {
	st := &statsSide{acc: stats.NewAccumulator(node),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "gantry", Name: "release_stats_sync_failures_total",
			Help: "Commits of per-release counters that failed; the counts wait and are sent again."}),
	}
	reg.MustRegister(st.failures)
	return st
}

// record counts a finished call; calls that no release served (a plain
// model call) are not counted.
func (st *statsSide) record(t *trace.Trace) {
	v := versionOf(t.Release)
	if t.Feature == "" || v == 0 {
		return
	}
	st.acc.Record(t.Feature, v, stats.Call{
		Error:            t.Status != "ok",
		ValidationFailed: len(t.Validation) > 0,
		LatencyMs:        float64(t.Duration),
		CostUSD:          t.CostUSD,
		InputTokens:      int64(t.InputTokens),
		OutputTokens:     int64(t.OutputTokens),
	})
}

// feedback counts fb on t, the trace as it was before fb: a trace counts
// once, by its latest signal, as in the overview, so a changed mind moves
// it from up to down. The caller holds fbMu from reading t until fb is
// stored.
func (st *statsSide) feedback(t *trace.Trace, fb trace.Feedback) {
	v := versionOf(t.Release)
	if t.Feature == "" || v == 0 {
		return
	}
	before, after := feedbackClass(t.Summary().Feedback), ""
	switch {
	case fb.Thumbs != "":
		after = feedbackClass(fb.Thumbs)
	case fb.Score != nil:
		after = feedbackClass(strconv.FormatFloat(*fb.Score, 'f', -1, 64))
	}
	if before == after {
		return
	}
	var up, down int64
	switch before {
	case "up":
		up--
	case "down":
		down--
	}
	switch after {
	case "up":
		up++
	case "down":
		down++
	}
	st.acc.Feedback(t.Feature, v, up, down)
}

// feedbackClass is up, down or "" for a summary's feedback, as the
// overview counts it: a score of at least one half is up.
func feedbackClass(signal string) string {
	switch signal {
	case "", "up", "down":
		return signal
	}
	if f, err := strconv.ParseFloat(signal, 64); err == nil {
		if f >= 0.5 {
			return "up"
		}
		return "down"
	}
	return ""
}

// sync commits what was counted since the last batch.
func (st *statsSide) sync(ctx context.Context, s *Server) error {
	if !st.resumed.Load() {
		return nil
	}
	err := s.cl.node.SyncStats(ctx, st.acc)
	if err != nil {
		st.failures.Inc()
	}
	return err
}

// syncStats commits the per-release counts until ctx ends, and the last
// ones then: the gateway has finished its calls by the time the cluster
// side is closed. Calls are counted meanwhile and wait.
func (s *Server) syncStats(ctx context.Context) {
	st := s.stats
	defer s.flushStats()
	s.runBatches(ctx, batchLoop{
		interval: statsSyncInterval,
		resume: func(cs *state.State) {
			st.acc.Resume(cs.Stats.Seqs[s.opts.NodeID])
			st.resumed.Store(true)
		},
		sync:    func(ctx context.Context) error { return st.sync(ctx, s) },
		failing: "cannot commit per-release counters; they wait and are sent again",
		healed:  "per-release counters committed again",
	})
}

// flushStats commits the last counts before the agent leaves its cluster.
func (s *Server) flushStats() {
	if s.cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.stats.sync(ctx, s); err != nil {
		s.log.Warn("could not commit the last per-release counters before leaving", "err", err)
	}
}

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
func (s *Server) getReleaseStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	window, ok := windowParam(w, r, minStatsWindow, maxStatsWindow)
	if !ok {
		return
	}
	st, err := s.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	feature := q.Get("feature")
	if _, ok := st.Feature(feature); feature != "" && !ok {
		writeAPIError(w, http.StatusNotFound, api.CodeNotFound, "no feature "+strconv.Quote(feature))
		return
	}
	now := time.Now()
	out := api.ClusterStats{Node: s.opts.NodeID, Time: now.UTC(), Index: st.Index, WindowSeconds: int(window / time.Second),
		SyncSeconds: max(1, int(statsSyncInterval/time.Second)), Releases: []api.ClusterReleaseStats{}}
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
	writeJSON(w, http.StatusOK, out)
}

// labelOf names the label that points at version, as the overview does: a
// canary at weight 0 serves nothing and is not named.
func labelOf(l config.Labels, version int) string {
	switch {
	case l.Production == version:
		return api.LabelProduction
	case l.Canary == version && l.CanaryWeight > 0:
		return api.LabelCanary
	}
	return ""
}

func apiStats(c stats.Counters, lat stats.Sketch) api.Stats {
	p := lat.Quantiles(0.5, 0.95)
	return api.Stats{
		Requests: c.Requests, Errors: c.Errors, ValidationFailures: c.ValidationFailures,
		FeedbackUp: c.FeedbackUp, FeedbackDown: c.FeedbackDown,
		P50: trace.Millis(p[0]), P95: trace.Millis(p[1]),
		CostUSD: c.CostUSD, InputTokens: c.InputTokens, OutputTokens: c.OutputTokens,
	}
}
