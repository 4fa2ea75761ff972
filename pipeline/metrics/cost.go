package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"gantry/pipeline/trace"
)

// costVecs count what a good answer costs, per feature and release:
// divide gantry_release_cost_usd_total by gantry_validated_answers_total
// for the cost per validated answer, and compare it with
// gantry_cost_without_escalation_usd_total to see what cascades add.
type costVecs struct {
	spend, validated, cascades, base *seriesCache[[2]string, prometheus.Counter]
	escalations                      *seriesCache[[3]string, prometheus.Counter]
	saved, semantic                  *seriesCache[[2]string, prometheus.Counter]
}

func newCostVecs(reg *prometheus.Registry) *costVecs {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	two := func(v *prometheus.CounterVec) *seriesCache[[2]string, prometheus.Counter] {
		return newSeriesCache([2]string{Overflow, Overflow}, func(k [2]string) prometheus.Counter { return v.WithLabelValues(k[0], k[1]) })
	}
	esc := counter("cascade_escalations_total", "Cascade calls that moved past a tier, by feature, release and reason (invalid, empty, refusal, length, judge, error).", "feature", "release", "reason")
	return &costVecs{
		spend:     two(counter("release_cost_usd_total", "Spend in US dollars by feature and release, cascade tiers, judges and summaries included.", "feature", "release")),
		validated: two(counter("validated_answers_total", "Answers that passed the release's validation, by feature and release.", "feature", "release")),
		cascades:  two(counter("cascade_calls_total", "Calls served through a cascade route, by feature and release.", "feature", "release")),
		base:      two(counter("cost_without_escalation_usd_total", "What calls would have cost had no cascade escalated, by feature and release.", "feature", "release")),
		escalations: newSeriesCache([3]string{Overflow, Overflow, Overflow}, func(k [3]string) prometheus.Counter {
			return esc.WithLabelValues(k[0], k[1], k[2])
		}),
		saved:    two(counter("context_tokens_saved_total", "Input tokens a context policy saved, by feature and strategy.", "feature", "strategy")),
		semantic: two(counter("semantic_cache_requests_total", "Semantic cache lookups by feature and result (hit, miss).", "feature", "result")),
	}
}

// observeCost counts a production trace's cost per good answer series.
func (v *costVecs) observeCost(t *trace.Trace) {
	fr := [2]string{label(t.Feature), label(t.Release)}
	if t.CostUSD > 0 {
		v.spend.get(fr).Add(t.CostUSD)
	}
	if t.Validated() {
		v.validated.get(fr).Inc()
	}
	if len(t.Tiers) > 0 {
		v.cascades.get(fr).Inc()
		for _, tier := range t.Tiers {
			if tier.Escalated != "" {
				v.escalations.get([3]string{fr[0], fr[1], label(tier.Escalated)}).Inc()
			}
		}
	}
	if b := t.BaseCostUSD(); b > 0 {
		v.base.get(fr).Add(b)
	}
	if c := t.Compression; c != nil && c.TokensSaved > 0 {
		v.saved.get([2]string{fr[0], label(c.Strategy)}).Add(float64(c.TokensSaved))
	}
}

// SemanticLookup counts a semantic cache lookup.
func (m *Metrics) SemanticLookup(feature string, hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	m.costs.semantic.get([2]string{label(feature), result}).Inc()
}
