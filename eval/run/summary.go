package run

import (
	"fmt"
	"math"
	"regexp"
	"slices"

	"gantry/eval/assert"
	"gantry/eval/stats"
)

// Case statuses.
const (
	Pass  = "pass"
	Fail  = "fail"
	Error = "error"
)

// Summary is a run's outcome: exactly what `gantry eval run -o json`
// prints and what the cluster replicates.
type Summary struct {
	RunID          string  `json:"run_id"`
	Feature        string  `json:"feature"`
	Release        int     `json:"release"`
	Dataset        string  `json:"dataset"`
	DatasetVersion int     `json:"dataset_version"`
	Cases          int     `json:"cases"`
	Passed         int     `json:"passed"`
	Failed         int     `json:"failed"`
	Errors         int     `json:"errors"`
	CriticalFailed int     `json:"critical_failed"`
	PassRate       float64 `json:"pass_rate"`
	CostUSD        float64 `json:"cost_usd"`
	P50Ms          float64 `json:"p50_ms"`
	P95Ms          float64 `json:"p95_ms"`
}

var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Check validates a summary decoded from a replicated command.
func (s Summary) Check() error {
	switch {
	case !runIDRE.MatchString(s.RunID):
		return fmt.Errorf("run id %q: letters, digits, '.', '_' and '-', at most 64", s.RunID)
	case s.Feature == "" || len(s.Feature) > 128:
		return fmt.Errorf("feature %q: 1 to 128 characters", s.Feature)
	case s.Release < 1:
		return fmt.Errorf("release %d: a version from 1", s.Release)
	case s.Dataset == "" || len(s.Dataset) > 64 || s.DatasetVersion < 1:
		return fmt.Errorf("dataset %q version %d: a name and a version from 1", s.Dataset, s.DatasetVersion)
	case s.Cases < 0 || s.Cases > MaxCases:
		return fmt.Errorf("%d cases, outside 0..%d", s.Cases, MaxCases)
	case s.Passed < 0 || s.Failed < 0 || s.Errors < 0 || s.Passed+s.Failed+s.Errors != s.Cases:
		return fmt.Errorf("passed %d + failed %d + errors %d is not the %d cases", s.Passed, s.Failed, s.Errors, s.Cases)
	case s.CriticalFailed < 0 || s.CriticalFailed > s.Failed+s.Errors:
		return fmt.Errorf("%d critical failures, more than the %d cases that did not pass", s.CriticalFailed, s.Failed+s.Errors)
	}
	for _, v := range []struct {
		name string
		v    float64
		max  float64
	}{{"pass_rate", s.PassRate, 1}, {"cost_usd", s.CostUSD, 1e6}, {"p50_ms", s.P50Ms, assert.MaxMs}, {"p95_ms", s.P95Ms, assert.MaxMs}} {
		if math.IsNaN(v.v) || v.v < 0 || v.v > v.max {
			return fmt.Errorf("%s %v outside 0..%v", v.name, v.v, v.max)
		}
	}
	return nil
}

// CaseOutcome is one case over all its repeats.
type CaseOutcome struct {
	Case     string  `json:"case"`
	Critical bool    `json:"critical,omitempty"`
	Status   string  `json:"status"`
	Repeats  int     `json:"repeats"`
	Passed   int     `json:"passed"` // repeats that passed
	Score    float64 `json:"score"`  // mean score over the repeats that ran
	// LatencyMs and CostUSD are means over the repeats the target
	// answered; the cost is the target's, without judging.
	LatencyMs float64 `json:"latency_ms"`
	CostUSD   float64 `json:"cost_usd"`
	// Recall and RR are the means of retrieval's recall@k and reciprocal
	// rank, when the case names expected sources.
	Recall *float64 `json:"recall,omitempty"`
	RR     *float64 `json:"rr,omitempty"`
}

// Outcomes folds per-repeat results into one outcome a case, in the order
// of first appearance. A case fails when any repeat fails, is an error
// when none fails but one could not be judged, and passes when every
// repeat passes: flakiness is a failure, not an average.
func Outcomes(results []CaseResult) []CaseOutcome {
	idx := map[string]int{}
	var out []CaseOutcome
	type acc struct {
		fail, err        bool
		score, lat, cost float64
		answered         int
		recall, rr       float64
		retrieved        int
	}
	var accs []acc
	for _, r := range results {
		i, ok := idx[r.Case]
		if !ok {
			i = len(out)
			idx[r.Case] = i
			out = append(out, CaseOutcome{Case: r.Case, Critical: r.Critical})
			accs = append(accs, acc{})
		}
		o, a := &out[i], &accs[i]
		o.Repeats++
		a.score += r.Score
		switch r.Status {
		case Pass:
			o.Passed++
		case Fail:
			a.fail = true
		default:
			a.err = true
		}
		if r.TargetError == "" {
			a.answered++
			a.lat += r.LatencyMs
			a.cost += r.CostUSD
		}
		if r.Retrieval != nil {
			a.retrieved++
			a.recall += r.Retrieval.Recall
			a.rr += r.Retrieval.RR
		}
	}
	for i := range out {
		o, a := &out[i], accs[i]
		switch {
		case a.fail:
			o.Status = Fail
		case a.err:
			o.Status = Error
		default:
			o.Status = Pass
		}
		o.Score = a.score / float64(o.Repeats)
		if a.answered > 0 {
			o.LatencyMs = a.lat / float64(a.answered)
			o.CostUSD = a.cost / float64(a.answered)
		}
		if a.retrieved > 0 {
			rc, rr := a.recall/float64(a.retrieved), a.rr/float64(a.retrieved)
			o.Recall, o.RR = &rc, &rr
		}
	}
	return out
}

// Summarize computes the summary of a run's per-repeat results.
func Summarize(id Identity, results []CaseResult) Summary {
	s := Summary{RunID: id.RunID, Feature: id.Feature, Release: id.Release, Dataset: id.Dataset, DatasetVersion: id.DatasetVersion}
	var lat []float64
	for _, r := range results {
		s.CostUSD += r.CostUSD + r.JudgeCostUSD
		if r.TargetError == "" {
			lat = append(lat, r.LatencyMs)
		}
	}
	for _, o := range Outcomes(results) {
		s.Cases++
		switch o.Status {
		case Pass:
			s.Passed++
		case Fail:
			s.Failed++
		default:
			s.Errors++
		}
		if o.Critical && o.Status != Pass {
			s.CriticalFailed++
		}
	}
	if s.Cases > 0 {
		s.PassRate = float64(s.Passed) / float64(s.Cases)
	}
	slices.Sort(lat)
	s.P50Ms = stats.QuantileSorted(lat, 0.50)
	s.P95Ms = stats.QuantileSorted(lat, 0.95)
	return s
}
