// Package canary decides, while a canary is live, whether it is worse than
// production: from the cluster's cumulative per-release counters it tests
// error rate, validation-failure rate, negative-feedback rate and the
// share of slow calls with a sequential test that stays valid however
// often it is looked at, checks cost per request against a bound, and
// answers continue, regression (with the metric and its numbers) or pass.
//
// Everything here is a pure function of the counters it is given, so the
// leader can call it on every tick and any replica would decide the same.
// DESIGN.md explains the test.
package canary

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/DataDog/sketches-go/ddsketch/mapping"

	"gantry/eval/sketch"
	"gantry/eval/stats"
)

// Outcomes of a look.
const (
	Continue   = "continue"
	Regression = "regression"
	Pass       = "pass"
)

// Metrics.
const (
	ErrorRate        = "error_rate"
	ValidationRate   = "validation_failure_rate"
	NegativeFeedback = "negative_feedback_rate"
	LatencyP95       = "latency_p95"
	CostPerRequest   = "cost_per_request"
)

// tested are the metrics under the sequential test; alpha is shared
// among them (Bonferroni), so the canary's false-alarm rate over all of
// them stays within alpha.
var tested = []string{ErrorRate, ValidationRate, NegativeFeedback, LatencyP95}

// Counters are one release's cumulative traffic, as the cluster keeps it
// (cluster/stats.Release); cluster/state takes them from its table, so
// nothing here imports the cluster.
type Counters struct {
	Requests           int64         `json:"requests"`
	Errors             int64         `json:"errors"`
	ValidationFailures int64         `json:"validation_failures"`
	FeedbackUp         int64         `json:"feedback_up"`
	FeedbackDown       int64         `json:"feedback_down"`
	CostUSD            float64       `json:"cost_usd"`
	Latency            sketch.Sketch `json:"latency"`
}

// Point is one look at both releases' cumulative counters.
type Point struct {
	At         time.Time `json:"at"`
	Canary     Counters  `json:"canary"`
	Production Counters  `json:"production"`
}

// Policy configures the analysis. Zero fields take the defaults.
type Policy struct {
	// Alpha bounds the probability that an equal canary is ever called a
	// regression, over all looks and all metrics.
	Alpha float64 `json:"alpha"`
	// Tau is the scale of the mixture over rate differences: the size of
	// difference the test is quickest to find. Power depends on it only
	// mildly; validity not at all.
	Tau float64 `json:"tau"`
	// MinRequests is how many canary calls (since the canary started) a
	// verdict needs; MinFeedback how many feedback signals each side needs
	// before feedback is tested.
	MinRequests int64 `json:"min_requests"`
	MinFeedback int64 `json:"min_feedback"`
	// MaxDuration ends the analysis with pass when nothing was found.
	MaxDuration time.Duration `json:"max_duration"`
	// MaxLatencyIncrease is how much higher the canary's p95 may be before
	// a significant excess of slow calls counts; MaxCostIncrease bounds
	// cost per request, relative to production's.
	MaxLatencyIncrease float64 `json:"max_latency_increase"`
	MaxCostIncrease    float64 `json:"max_cost_increase"`
}

// Defaults.
var Defaults = Policy{Alpha: 0.05, Tau: 0.05, MinRequests: 100, MinFeedback: 30, MaxDuration: 30 * time.Minute,
	MaxLatencyIncrease: 0.2, MaxCostIncrease: 0.2}

// WithDefaults fills unset fields.
func (p Policy) WithDefaults() Policy {
	d := Defaults
	if p.Alpha == 0 {
		p.Alpha = d.Alpha
	}
	if p.Tau == 0 {
		p.Tau = d.Tau
	}
	if p.MinRequests == 0 {
		p.MinRequests = d.MinRequests
	}
	if p.MinFeedback == 0 {
		p.MinFeedback = d.MinFeedback
	}
	if p.MaxDuration == 0 {
		p.MaxDuration = d.MaxDuration
	}
	if p.MaxLatencyIncrease == 0 {
		p.MaxLatencyIncrease = d.MaxLatencyIncrease
	}
	if p.MaxCostIncrease == 0 {
		p.MaxCostIncrease = d.MaxCostIncrease
	}
	return p
}

// Check validates a policy (after WithDefaults).
func (p Policy) Check() error {
	switch {
	case !(p.Alpha > 0 && p.Alpha <= 0.2):
		return fmt.Errorf("alpha %v outside (0, 0.2]", p.Alpha)
	case !(p.Tau > 0 && p.Tau <= 1):
		return fmt.Errorf("tau %v outside (0, 1]", p.Tau)
	case p.MinRequests < 10 || p.MinRequests > 1e9:
		return fmt.Errorf("min_requests %d outside 10..1e9", p.MinRequests)
	case p.MinFeedback < 1 || p.MinFeedback > 1e9:
		return fmt.Errorf("min_feedback %d outside 1..1e9", p.MinFeedback)
	case p.MaxDuration < time.Minute || p.MaxDuration > 7*24*time.Hour:
		return fmt.Errorf("max_duration %v outside 1m..168h", p.MaxDuration)
	case !(p.MaxLatencyIncrease >= 0 && p.MaxLatencyIncrease <= 100), !(p.MaxCostIncrease >= 0 && p.MaxCostIncrease <= 100):
		return errors.New("latency and cost increases must be between 0 and 100 (times)")
	}
	return nil
}

// Metric is one metric's numbers at a look.
type Metric struct {
	Name       string  `json:"name"`
	Canary     float64 `json:"canary"`
	Production float64 `json:"production"`
	// Tested is false while a metric lacks the sample to be tested.
	Tested bool `json:"tested"`
	// LogLR is the mixture likelihood ratio's log for the canary being
	// worse, and PValue the always-valid p-value so far (the running
	// minimum of 1/LR over looks where the canary was worse); both are
	// unset for cost, which is checked against a bound.
	LogLR  float64 `json:"log_lr,omitempty"`
	PValue float64 `json:"p_value,omitempty"`
	// Threshold is what LogLR must reach (ln(m/alpha)), or the bound
	// cost per request must not pass.
	Threshold float64 `json:"threshold"`
	Regressed bool    `json:"regressed"`
}

// Decision is the answer to one look.
type Decision struct {
	Outcome string `json:"outcome"`
	// Metric names the metric that regressed (the strongest, if several).
	Metric  string        `json:"metric,omitempty"`
	Reason  string        `json:"reason"`
	Elapsed time.Duration `json:"elapsed"`
	// CanaryRequests and ProductionRequests count since the canary began.
	CanaryRequests     int64    `json:"canary_requests"`
	ProductionRequests int64    `json:"production_requests"`
	Metrics            []Metric `json:"metrics"`
	// Underpowered is set on a pass at the maximum duration before the
	// canary reached its minimum sample: nothing was found, and not much
	// could have been.
	Underpowered bool `json:"underpowered,omitempty"`
}

// State carries the analysis between looks. It is small and JSON-able so
// that the leader can keep it in the replicated state; a new leader
// resumes from it.
type State struct {
	// Start is the counters when the canary began; every test uses the
	// traffic since then.
	Start Point `json:"start"`
	// PMin holds each tested metric's always-valid p-value so far.
	PMin map[string]float64 `json:"p_min,omitempty"`
	// Final is the decision once it is regression or pass: a decision is
	// taken once.
	Final *Decision `json:"final,omitempty"`
}

// Begin starts the analysis of a canary whose counters at its start are
// start.
func Begin(start Point) State { return State{Start: start} }

// Step looks at pt and returns the new state and the decision. It never
// changes st. Once a look has decided regression or pass, later looks
// return that decision.
func Step(p Policy, st State, pt Point) (State, Decision, error) {
	p = p.WithDefaults()
	if err := p.Check(); err != nil {
		return st, Decision{}, err
	}
	if st.Final != nil {
		return st, *st.Final, nil
	}
	can, err := since(pt.Canary, st.Start.Canary)
	if err != nil {
		return st, Decision{}, fmt.Errorf("canary counters: %w", err)
	}
	prod, err := since(pt.Production, st.Start.Production)
	if err != nil {
		return st, Decision{}, fmt.Errorf("production counters: %w", err)
	}
	next := State{Start: st.Start, PMin: map[string]float64{}}
	for k, v := range st.PMin {
		next.PMin[k] = v
	}
	d := Decision{Elapsed: pt.At.Sub(st.Start.At), CanaryRequests: can.Requests, ProductionRequests: prod.Requests}
	threshold := math.Log(float64(len(tested)) / p.Alpha)
	rate := func(name string, x1, n1, x2, n2, min1, min2 int64) Metric {
		m := Metric{Name: name, Threshold: threshold}
		if n1 > 0 {
			m.Canary = float64(x1) / float64(n1)
		}
		if n2 > 0 {
			m.Production = float64(x2) / float64(n2)
		}
		pmin, seen := next.PMin[name]
		if !seen {
			pmin = 1
		}
		if n1 >= min1 && n2 >= min2 {
			m.Tested = true
			diff, llr := stats.MSPRT(x1, n1, x2, n2, p.Tau)
			if diff > 0 {
				m.LogLR = llr
				pmin = min(pmin, math.Exp(-llr))
			}
			m.Regressed = diff > 0 && llr >= threshold
		}
		next.PMin[name] = pmin
		m.PValue = pmin
		return m
	}
	minReq := p.MinRequests
	d.Metrics = append(d.Metrics,
		rate(ErrorRate, can.Errors, can.Requests, prod.Errors, prod.Requests, minReq, minReq),
		rate(ValidationRate, can.ValidationFailures, can.Requests, prod.ValidationFailures, prod.Requests, minReq, minReq),
		rate(NegativeFeedback, can.FeedbackDown, can.FeedbackUp+can.FeedbackDown, prod.FeedbackDown, prod.FeedbackUp+prod.FeedbackDown, p.MinFeedback, p.MinFeedback))
	d.Metrics = append(d.Metrics, latency(rate, can, prod, minReq, p.MaxLatencyIncrease))
	d.Metrics = append(d.Metrics, cost(can, prod, minReq, p.MaxCostIncrease))

	var worst *Metric
	for i := range d.Metrics {
		m := &d.Metrics[i]
		if m.Regressed && (worst == nil || strength(*m) > strength(*worst)) {
			worst = m
		}
	}
	switch {
	case worst != nil && can.Requests >= p.MinRequests:
		d.Outcome, d.Metric = Regression, worst.Name
		d.Reason = reason(*worst)
	case d.Elapsed >= p.MaxDuration:
		d.Outcome = Pass
		if can.Requests < p.MinRequests {
			d.Underpowered = true
			d.Reason = fmt.Sprintf("%v passed with %d of the %d canary calls needed: no regression found, and little could be", p.MaxDuration, can.Requests, p.MinRequests)
		} else {
			d.Reason = fmt.Sprintf("no regression in %v over %d canary calls", p.MaxDuration, can.Requests)
		}
	default:
		d.Outcome = Continue
		d.Reason = fmt.Sprintf("%d canary calls in %v, no significant regression so far", can.Requests, d.Elapsed.Round(time.Second))
	}
	if d.Outcome != Continue {
		final := d
		next.Final = &final
	}
	return next, d, nil
}

// Analyze runs the looks in points, the first being the canary's start,
// and returns the last decision: the one a leader that looked at each
// point in turn would hold.
func Analyze(p Policy, points []Point) (Decision, error) {
	if len(points) == 0 {
		return Decision{}, errors.New("no points")
	}
	st := Begin(points[0])
	var d Decision
	for _, pt := range points[1:] {
		var err error
		if st, d, err = Step(p, st, pt); err != nil {
			return d, err
		}
		if d.Outcome != Continue {
			break
		}
	}
	return d, nil
}

// latencyMapping is the cluster's latency sketch mapping.
var latencyMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(sketch.RelativeAccuracy)
	if err != nil {
		panic(err) // the cluster's constant accuracy always maps
	}
	return m
}()

// latency tests whether the canary has more calls slower than
// production's p95 than production has (about 5%): a proportion, so the
// same sequential test applies. A significant excess counts as a
// regression only when the canary's p95 is also more than maxIncrease
// above production's.
func latency(rate func(string, int64, int64, int64, int64, int64, int64) Metric, can, prod Counters, minReq int64, maxIncrease float64) Metric {
	cn, pn := int64(can.Latency.Count()), int64(prod.Latency.Count())
	var p95c, p95p float64
	if cn > 0 {
		p95c = can.Latency.Quantiles(0.95)[0]
	}
	if pn > 0 {
		p95p = prod.Latency.Quantiles(0.95)[0]
	}
	cut := int32(latencyMapping.Index(max(p95p, latencyMapping.MinIndexableValue())))
	m := rate(LatencyP95, above(can.Latency, cut), cn, above(prod.Latency, cut), pn, minReq, minReq)
	m.Canary, m.Production = p95c, p95p
	m.Regressed = m.Regressed && p95c > p95p*(1+maxIncrease)
	return m
}

// above counts the calls in bins above bin cut.
func above(s sketch.Sketch, cut int32) int64 {
	var n uint64
	for _, b := range s.Bins {
		if b.Index > cut {
			n += b.Count
		}
	}
	return int64(n)
}

// cost checks cost per request against production's times 1+maxIncrease.
// The counters keep sums, not squares, so there is no variance to test
// with; a release's cost per call varies little, and the bound is a
// practical one.
func cost(can, prod Counters, minReq int64, maxIncrease float64) Metric {
	m := Metric{Name: CostPerRequest}
	if can.Requests > 0 {
		m.Canary = can.CostUSD / float64(can.Requests)
	}
	if prod.Requests > 0 {
		m.Production = prod.CostUSD / float64(prod.Requests)
	}
	m.Threshold = m.Production * (1 + maxIncrease)
	m.Tested = can.Requests >= minReq && prod.Requests >= minReq && m.Production > 0
	m.Regressed = m.Tested && m.Canary > m.Threshold
	return m
}

// strength orders regressed metrics: how far past its threshold.
func strength(m Metric) float64 {
	if m.Name == CostPerRequest {
		if m.Threshold <= 0 {
			return 0
		}
		return m.Canary / m.Threshold
	}
	return m.LogLR / m.Threshold
}

func reason(m Metric) string {
	switch m.Name {
	case CostPerRequest:
		return fmt.Sprintf("cost per request $%.6f against production's $%.6f, over the bound $%.6f", m.Canary, m.Production, m.Threshold)
	case LatencyP95:
		return fmt.Sprintf("p95 latency %.0f ms against production's %.0f ms, with significantly more slow calls (always-valid p = %.2g)", m.Canary, m.Production, m.PValue)
	}
	return fmt.Sprintf("%s %.2f%% against production's %.2f%% (always-valid p = %.2g)", m.Name, 100*m.Canary, 100*m.Production, m.PValue)
}

// since is c minus start: the traffic since the canary began.
func since(c, start Counters) (Counters, error) {
	d := Counters{
		Requests: c.Requests - start.Requests, Errors: c.Errors - start.Errors,
		ValidationFailures: c.ValidationFailures - start.ValidationFailures,
		FeedbackUp:         max(0, c.FeedbackUp-start.FeedbackUp), FeedbackDown: max(0, c.FeedbackDown-start.FeedbackDown),
		CostUSD: max(0, c.CostUSD-start.CostUSD),
	}
	if d.Requests < 0 || d.Errors < 0 || d.ValidationFailures < 0 {
		return Counters{}, errors.New("counters went backwards: were they reset?")
	}
	if err := c.Latency.Check(); err != nil {
		return Counters{}, err
	}
	d.Latency = subtract(c.Latency, start.Latency)
	return d, nil
}

// subtract removes start's counts from a later sketch of the same
// release. Bins the cluster folded together since (past its bin bound)
// are taken from the lowest bins, which only blurs the fastest calls.
func subtract(s, start sketch.Sketch) sketch.Sketch {
	if len(start.Bins) == 0 && start.Zero == 0 {
		return s
	}
	out := sketch.Sketch{Zero: s.Zero - min(s.Zero, start.Zero)}
	owe := map[int32]uint64{}
	var lost uint64
	for _, b := range start.Bins {
		owe[b.Index] = b.Count
	}
	for _, b := range s.Bins {
		if o, ok := owe[b.Index]; ok {
			delete(owe, b.Index)
			if o >= b.Count {
				lost += o - b.Count
				continue
			}
			b.Count -= o
		}
		out.Bins = append(out.Bins, b)
	}
	for _, o := range owe {
		lost += o
	}
	for i := 0; lost > 0 && i < len(out.Bins); i++ {
		take := min(lost, out.Bins[i].Count)
		out.Bins[i].Count -= take
		lost -= take
	}
	kept := out.Bins[:0]
	for _, b := range out.Bins {
		if b.Count > 0 {
			kept = append(kept, b)
		}
	}
	out.Bins = kept
	return out
}
