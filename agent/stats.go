package agent

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"gantry/cluster"
	"gantry/cluster/state"
	"gantry/cluster/stats"
	"gantry/config"
	"gantry/pipeline/trace"

	"github.com/prometheus/client_golang/prometheus"
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
	v := config.ReleaseVersion(t.Release)
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
// it from up to down. The gateway calls it once per stored signal, in
// order.
func (st *statsSide) feedback(t *trace.Trace, fb trace.Feedback) {
	v := config.ReleaseVersion(t.Release)
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
// negativeDelta is how a signal changes the negative feedback of a trace:
// +1 when it turns the trace's feedback down, -1 when it turns a down
// into something else.
func negativeDelta(t *trace.Trace, fb trace.Feedback) int64 {
	after := ""
	switch {
	case fb.Thumbs != "":
		after = feedbackClass(fb.Thumbs)
	case fb.Score != nil:
		after = feedbackClass(strconv.FormatFloat(*fb.Score, 'f', -1, 64))
	}
	before := feedbackClass(t.Summary().Feedback)
	switch {
	case before != "down" && after == "down":
		return 1
	case before == "down" && after != "down":
		return -1
	}
	return 0
}

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
func (st *statsSide) sync(ctx context.Context, node *cluster.Node) error {
	if !st.resumed.Load() {
		return nil
	}
	err := node.SyncStats(ctx, st.acc)
	if err != nil {
		st.failures.Inc()
	}
	return err
}

// syncStats commits the per-release counts until ctx ends; the last ones
// are committed when the agent stops (replica.stop), once the gateway has
// finished its calls. Calls are counted meanwhile and wait.
func (r *replica) syncStats(ctx context.Context) {
	st := r.stats
	r.runBatches(ctx, batchLoop{
		interval: statsSyncInterval,
		resume: func(cs *state.State) {
			st.acc.Resume(cs.Stats.Seqs[r.nodeID])
			st.resumed.Store(true)
		},
		sync:    func(ctx context.Context) error { return st.sync(ctx, r.Node) },
		failing: "cannot commit per-release counters; they wait and are sent again",
		healed:  "per-release counters committed again",
	})
}

// flushStats commits the last counts before the agent leaves its cluster.
func (r *replica) flushStats(ctx context.Context) {
	if err := r.stats.sync(ctx, r.Node); err != nil {
		r.log.Warn("could not commit the last per-release counters before leaving", "err", err)
	}
}
