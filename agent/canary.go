package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/eval/canary"
)

// canaryInterval is how often the leader looks at live canaries. The
// cluster's counters move every statsSyncInterval, so looking more often
// sees nothing new.
var canaryInterval = 5 * time.Second

// canaryWatch is the leader's part of canary analysis: it begins the
// analysis of each live canary and proposes a decision when a look at the
// cluster's counters decides. The state machine looks again when the
// command applies, records the decision once and acts on it (a rollback
// under a rollback policy), so a change of leader can neither lose nor
// repeat it.
type canaryWatch struct {
	node      string
	decisions *prometheus.CounterVec
	failures  prometheus.Counter
}

func newCanaryWatch(node string, reg prometheus.Registerer) *canaryWatch {
	w := &canaryWatch{node: node,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gantry", Name: "canary_decisions_total",
			Help: "Decisions of canary analysis this agent committed as leader, by feature, outcome (regression, pass) and action (rolled_back, alerted, passed)."},
			[]string{"feature", "outcome", "action"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "gantry", Name: "canary_analysis_failures_total",
			Help: "Canary analysis commands the leader could not commit; it tries again at the next look."}),
	}
	reg.MustRegister(w.decisions, w.failures)
	return w
}

// watchCanaries looks at live canaries every canaryInterval while this
// agent leads, until ctx ends.
func (r *replica) watchCanaries(ctx context.Context) {
	r.whileLeading(ctx, canaryInterval, func(now time.Time) { r.lookAtCanaries(ctx, now) })
}

// whileLeading calls fn every interval while this agent leads the
// cluster, until ctx ends: work only one agent should propose.
func (r *replica) whileLeading(ctx context.Context, interval time.Duration, fn func(now time.Time)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if r.IsLeader() {
				fn(time.Now().UTC())
			}
		}
	}
}

// lookAtCanaries begins the analysis of every live canary that has none
// and proposes a decision for each whose look at now decides.
func (r *replica) lookAtCanaries(ctx context.Context, now time.Time) {
	st := r.State()
	for _, f := range st.Config.Features {
		l := f.Labels
		if !l.Live() {
			continue
		}
		look := command.Canary{Feature: f.Name, Canary: l.Canary, Production: l.Production}
		rec, ok := st.Eval.Canaries[f.Name]
		switch {
		case !ok || !rec.Matches(l):
			if _, err := r.proposeCanary(ctx, command.CanaryBegin, look); err != nil {
				r.canaries.failures.Inc()
				r.log.Warn("could not begin the analysis of a canary", "feature", f.Name, "canary", l.Canary, "err", err)
			}
		case rec.Decision == nil:
			_, d, err := canary.Step(state.CanaryPolicy(f.Canary), rec.State, st.CanaryPoint(f.Name, l.Canary, l.Production, now))
			if err != nil {
				r.log.Warn("canary analysis failed", "feature", f.Name, "err", err)
				continue
			}
			if d.Outcome == canary.Continue {
				continue
			}
			res, err := r.proposeCanary(ctx, command.CanaryDecide, look)
			if err != nil {
				r.canaries.failures.Inc()
				r.log.Warn("could not commit a canary decision", "feature", f.Name, "outcome", d.Outcome, "err", err)
				continue
			}
			if res.Unchanged || res.Outcome == canary.Continue {
				continue
			}
			done := r.State().Eval.Canaries[f.Name]
			r.canaries.decisions.WithLabelValues(f.Name, res.Outcome, done.Action).Inc()
			level := r.log.Info
			if res.Outcome == canary.Regression {
				level = r.log.Warn
			}
			level("canary analysis decided", "feature", f.Name, "canary", l.Canary, "production", l.Production,
				"outcome", res.Outcome, "action", done.Action, "reason", d.Reason)
		}
	}
}

func (r *replica) proposeCanary(ctx context.Context, t command.Type, look command.Canary) (state.Result, error) {
	env, err := command.New(t, look)
	if err != nil {
		return state.Result{}, err
	}
	env.Actor = fmt.Sprintf("canary-analysis (node:%s)", r.canaries.node)
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return r.Apply(ctx, env)
}
