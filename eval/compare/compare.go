// Package compare judges a candidate release against a baseline on the
// same cases of the same dataset version: every critical case must pass;
// cases that passed before and fail now are listed; pass/fail outcomes are
// compared with the exact McNemar test on the discordant pairs, scores
// with a paired bootstrap interval of the mean difference, and latency and
// cost against thresholds. The verdict is improved, no_regression,
// regression or inconclusive (too few cases for the configured power),
// with the numbers behind it.
package compare

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gantry/eval/run"
	"gantry/eval/stats"
)

// Verdicts.
const (
	Improved     = "improved"
	NoRegression = "no_regression"
	Regression   = "regression"
	Inconclusive = "inconclusive"
)

// Thresholds configure a comparison. Zero fields take the defaults.
type Thresholds struct {
	// Alpha is the significance of the McNemar test and 1 minus the
	// level of the score interval.
	Alpha float64 `json:"alpha"`
	// Power and MinEffect size the comparison: fewer paired cases than
	// needed to detect a pass-rate drop of MinEffect with this power is
	// inconclusive.
	Power     float64 `json:"power"`
	MinEffect float64 `json:"min_effect"`
	// ScoreMargin is how far the score interval may reach below zero
	// before it counts as a regression: the upper bound must stay above
	// -ScoreMargin.
	ScoreMargin float64 `json:"score_margin"`
	// MaxLatencyIncrease and MaxCostIncrease are the relative growth of
	// p95 latency and of cost per case allowed; LatencySlackMs is added to
	// the latency bound so that a few milliseconds on a fast release are
	// not a regression.
	MaxLatencyIncrease float64 `json:"max_latency_increase"`
	LatencySlackMs     float64 `json:"latency_slack_ms"`
	MaxCostIncrease    float64 `json:"max_cost_increase"`
	// BootstrapIters and Seed drive the bootstrap; the same seed gives the
	// same interval.
	BootstrapIters int    `json:"bootstrap_iters"`
	Seed           uint64 `json:"seed"`
}

// Defaults.
var Defaults = Thresholds{Alpha: 0.05, Power: 0.8, MinEffect: 0.1, MaxLatencyIncrease: 0.2, LatencySlackMs: 50,
	MaxCostIncrease: 0.2, BootstrapIters: 2000, Seed: 1}

// WithDefaults fills unset thresholds.
func (t Thresholds) WithDefaults() Thresholds {
	d := Defaults
	if t.Alpha == 0 {
		t.Alpha = d.Alpha
	}
	if t.Power == 0 {
		t.Power = d.Power
	}
	if t.MinEffect == 0 {
		t.MinEffect = d.MinEffect
	}
	if t.MaxLatencyIncrease == 0 {
		t.MaxLatencyIncrease = d.MaxLatencyIncrease
	}
	if t.LatencySlackMs == 0 {
		t.LatencySlackMs = d.LatencySlackMs
	}
	if t.MaxCostIncrease == 0 {
		t.MaxCostIncrease = d.MaxCostIncrease
	}
	if t.BootstrapIters == 0 {
		t.BootstrapIters = d.BootstrapIters
	}
	if t.Seed == 0 {
		t.Seed = d.Seed
	}
	return t
}

// Check validates thresholds (after WithDefaults).
func (t Thresholds) Check() error {
	switch {
	case !(t.Alpha > 0 && t.Alpha < 0.5):
		return fmt.Errorf("alpha %v outside (0, 0.5)", t.Alpha)
	case !(t.Power > 0 && t.Power < 1):
		return fmt.Errorf("power %v outside (0, 1)", t.Power)
	case !(t.MinEffect > 0 && t.MinEffect <= 1):
		return fmt.Errorf("min_effect %v outside (0, 1]", t.MinEffect)
	case !(t.ScoreMargin >= 0 && t.ScoreMargin <= 1):
		return fmt.Errorf("score_margin %v outside 0..1", t.ScoreMargin)
	case !(t.MaxLatencyIncrease >= 0 && t.MaxLatencyIncrease <= 100), !(t.MaxCostIncrease >= 0 && t.MaxCostIncrease <= 100):
		return errors.New("latency and cost increases must be between 0 and 100 (times)")
	case !(t.LatencySlackMs >= 0 && t.LatencySlackMs <= 60000):
		return fmt.Errorf("latency_slack_ms %v outside 0..60000", t.LatencySlackMs)
	case t.BootstrapIters < 100 || t.BootstrapIters > 100000:
		return fmt.Errorf("bootstrap_iters %d outside 100..100000", t.BootstrapIters)
	}
	return nil
}

// Side is one run of a comparison.
type Side struct {
	Identity run.Identity
	Summary  run.Summary
	Results  []run.CaseResult
}

// Verdict is a comparison's outcome and the numbers behind it.
type Verdict struct {
	Verdict string `json:"verdict"`
	// Reasons say, in words, what decided the verdict.
	Reasons        []string `json:"reasons"`
	Feature        string   `json:"feature"`
	Baseline       int      `json:"baseline"`
	Candidate      int      `json:"candidate"`
	BaselineRun    string   `json:"baseline_run"`
	CandidateRun   string   `json:"candidate_run"`
	Dataset        string   `json:"dataset"`
	DatasetVersion int      `json:"dataset_version"`
	Cases          int      `json:"cases"`
	// Paired is how many cases entered the tests: those with an answer
	// on both sides. Errored lists the others.
	Paired  int      `json:"paired"`
	Errored []string `json:"errored,omitempty"`

	BaselinePassRate  float64 `json:"baseline_pass_rate"`
	CandidatePassRate float64 `json:"candidate_pass_rate"`
	// CriticalFailures are the critical cases the candidate does not pass.
	CriticalFailures []string `json:"critical_failures"`
	// Regressions passed in the baseline and do not now; Improvements the
	// other way round. Critical cases come first.
	Regressions  []CaseDiff `json:"regressions"`
	Improvements []CaseDiff `json:"improvements"`

	McNemar       McNemar    `json:"mcnemar"`
	Score         Score      `json:"score"`
	Latency       Delta      `json:"latency"`
	Cost          Delta      `json:"cost"`
	RequiredCases int        `json:"required_cases"`
	Thresholds    Thresholds `json:"thresholds"`
}

// CaseDiff is one case whose outcome changed.
type CaseDiff struct {
	Case           string  `json:"case"`
	Critical       bool    `json:"critical,omitempty"`
	Baseline       string  `json:"baseline"`
	Candidate      string  `json:"candidate"`
	BaselineScore  float64 `json:"baseline_score"`
	CandidateScore float64 `json:"candidate_score"`
}

// McNemar is the exact test on the discordant pairs.
type McNemar struct {
	Broke  int     `json:"broke"` // passed in the baseline, fail now
	Fixed  int     `json:"fixed"` // failed in the baseline, pass now
	PValue float64 `json:"p_value"`
}

// Score compares mean case scores.
type Score struct {
	Baseline  float64        `json:"baseline"`
	Candidate float64        `json:"candidate"`
	Diff      stats.Interval `json:"diff"` // candidate minus baseline
}

// Delta compares latency (p95, ms) or cost (mean per case, USD).
type Delta struct {
	Baseline  float64 `json:"baseline"`
	Candidate float64 `json:"candidate"`
	Change    float64 `json:"change"` // relative: 0.25 is 25% more
	Limit     float64 `json:"limit"`  // the candidate's allowed value
	Exceeded  bool    `json:"exceeded"`
}

// ErrMismatch is wrapped when two runs cannot be compared.
var ErrMismatch = errors.New("runs cannot be compared")

// Compare judges cand against base.
func Compare(base, cand Side, th Thresholds) (Verdict, error) {
	th = th.WithDefaults()
	if err := th.Check(); err != nil {
		return Verdict{}, fmt.Errorf("thresholds: %w", err)
	}
	bi, ci := base.Identity, cand.Identity
	switch {
	case bi.Feature != ci.Feature:
		return Verdict{}, fmt.Errorf("%w: features %s and %s", ErrMismatch, bi.Feature, ci.Feature)
	case bi.Dataset != ci.Dataset || bi.DatasetVersion != ci.DatasetVersion || bi.DatasetHash != ci.DatasetHash:
		return Verdict{}, fmt.Errorf("%w: dataset %s v%d and %s v%d: run both on the same version", ErrMismatch, bi.Dataset, bi.DatasetVersion, ci.Dataset, ci.DatasetVersion)
	}
	bo, co := run.Outcomes(base.Results), run.Outcomes(cand.Results)
	bmap := make(map[string]run.CaseOutcome, len(bo))
	for _, o := range bo {
		bmap[o.Case] = o
	}
	if len(bo) != len(co) {
		return Verdict{}, fmt.Errorf("%w: %d cases against %d: finish both runs", ErrMismatch, len(bo), len(co))
	}
	v := Verdict{Feature: ci.Feature, Baseline: bi.Release, Candidate: ci.Release, BaselineRun: bi.RunID, CandidateRun: ci.RunID,
		Dataset: ci.Dataset, DatasetVersion: ci.DatasetVersion, Cases: len(co), Thresholds: th,
		CriticalFailures: []string{}, Regressions: []CaseDiff{}, Improvements: []CaseDiff{}}
	var diffs []float64
	var bPass, cPass int
	for _, c := range co {
		b, ok := bmap[c.Case]
		if !ok {
			return Verdict{}, fmt.Errorf("%w: case %s is not in the baseline run", ErrMismatch, c.Case)
		}
		if b.Status == run.Pass {
			bPass++
		}
		if c.Status == run.Pass {
			cPass++
		}
		if c.Critical && c.Status != run.Pass {
			v.CriticalFailures = append(v.CriticalFailures, c.Case)
		}
		if b.Status == run.Error || c.Status == run.Error {
			v.Errored = append(v.Errored, c.Case)
			continue
		}
		v.Paired++
		diffs = append(diffs, c.Score-b.Score)
		v.Score.Baseline += b.Score
		v.Score.Candidate += c.Score
		d := CaseDiff{Case: c.Case, Critical: c.Critical, Baseline: b.Status, Candidate: c.Status, BaselineScore: b.Score, CandidateScore: c.Score}
		switch {
		case b.Status == run.Pass && c.Status != run.Pass:
			v.McNemar.Broke++
			v.Regressions = append(v.Regressions, d)
		case b.Status != run.Pass && c.Status == run.Pass:
			v.McNemar.Fixed++
			v.Improvements = append(v.Improvements, d)
		}
	}
	criticalFirst := func(x, y CaseDiff) int {
		if x.Critical != y.Critical {
			if x.Critical {
				return -1
			}
			return 1
		}
		return 0
	}
	slices.SortStableFunc(v.Regressions, criticalFirst)
	slices.SortStableFunc(v.Improvements, criticalFirst)
	if v.Cases > 0 {
		v.BaselinePassRate = float64(bPass) / float64(v.Cases)
		v.CandidatePassRate = float64(cPass) / float64(v.Cases)
	}
	v.McNemar.PValue = stats.McNemar(v.McNemar.Broke, v.McNemar.Fixed)
	if v.Paired > 0 {
		v.Score.Baseline /= float64(v.Paired)
		v.Score.Candidate /= float64(v.Paired)
		rng := rand.New(rand.NewPCG(th.Seed, th.Seed^0x5eed))
		iv, err := stats.PairedBootstrap(diffs, th.BootstrapIters, 1-th.Alpha, rng)
		if err != nil {
			return Verdict{}, err
		}
		v.Score.Diff = iv
	}
	v.Latency = delta(base.Summary.P95Ms, cand.Summary.P95Ms, th.MaxLatencyIncrease, th.LatencySlackMs)
	v.Cost = delta(meanCost(bo), meanCost(co), th.MaxCostIncrease, 0)
	discordant := 0.0
	if v.Paired > 0 {
		discordant = float64(v.McNemar.Broke+v.McNemar.Fixed) / float64(v.Paired)
	}
	v.RequiredCases = stats.McNemarCases(th.Alpha, th.Power, th.MinEffect, discordant)
	decide(&v, th)
	return v, nil
}

func decide(v *Verdict, th Thresholds) {
	m := v.McNemar
	var regress, improve []string
	if n := len(v.CriticalFailures); n > 0 {
		regress = append(regress, fmt.Sprintf("%d critical case(s) do not pass: %s", n, list(v.CriticalFailures)))
	}
	if m.PValue < th.Alpha && m.Broke > m.Fixed {
		regress = append(regress, fmt.Sprintf("%d cases broke and %d were fixed: McNemar p = %.4f < %.2f", m.Broke, m.Fixed, m.PValue, th.Alpha))
	}
	if v.Paired > 0 && v.Score.Diff.High < -th.ScoreMargin {
		regress = append(regress, fmt.Sprintf("mean score fell by %.3f (%.0f%% interval %.3f to %.3f)", -v.Score.Diff.Estimate, v.Score.Diff.Level*100, v.Score.Diff.Low, v.Score.Diff.High))
	}
	if v.Latency.Exceeded {
		regress = append(regress, fmt.Sprintf("p95 latency %.0f ms against %.0f ms, over the limit of %.0f ms", v.Latency.Candidate, v.Latency.Baseline, v.Latency.Limit))
	}
	if v.Cost.Exceeded {
		regress = append(regress, fmt.Sprintf("cost per case $%.6f against $%.6f, over the limit of $%.6f", v.Cost.Candidate, v.Cost.Baseline, v.Cost.Limit))
	}
	if m.PValue < th.Alpha && m.Fixed > m.Broke {
		improve = append(improve, fmt.Sprintf("%d cases were fixed and %d broke: McNemar p = %.4f < %.2f", m.Fixed, m.Broke, m.PValue, th.Alpha))
	}
	if v.Paired > 0 && v.Score.Diff.Low > 0 {
		improve = append(improve, fmt.Sprintf("mean score rose by %.3f (%.0f%% interval %.3f to %.3f)", v.Score.Diff.Estimate, v.Score.Diff.Level*100, v.Score.Diff.Low, v.Score.Diff.High))
	}
	switch {
	case len(regress) > 0:
		v.Verdict, v.Reasons = Regression, regress
	case len(improve) > 0:
		v.Verdict, v.Reasons = Improved, improve
	case v.Paired < v.RequiredCases:
		v.Verdict = Inconclusive
		v.Reasons = []string{fmt.Sprintf("%d paired cases, fewer than the %d needed to detect a %.0f-point drop in pass rate with power %.0f%% at alpha %.2f",
			v.Paired, v.RequiredCases, th.MinEffect*100, th.Power*100, th.Alpha)}
	default:
		v.Verdict = NoRegression
		v.Reasons = []string{fmt.Sprintf("no significant change: %d broke, %d fixed (p = %.4f); score difference %.3f (%.3f to %.3f)",
			m.Broke, m.Fixed, m.PValue, v.Score.Diff.Estimate, v.Score.Diff.Low, v.Score.Diff.High)}
	}
	if len(v.Errored) > 0 {
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d case(s) had no answer on one side and were left out of the tests", len(v.Errored)))
	}
}

func delta(base, cand, maxIncrease, slack float64) Delta {
	d := Delta{Baseline: base, Candidate: cand, Limit: base*(1+maxIncrease) + slack}
	if base > 0 {
		d.Change = cand/base - 1
	}
	// A baseline of 0 (nothing measured, or free) sets no bound.
	d.Exceeded = base > 0 && cand > d.Limit*(1+1e-9)
	if math.IsNaN(d.Change) {
		d.Change = 0
	}
	return d
}

func meanCost(os []run.CaseOutcome) float64 {
	if len(os) == 0 {
		return 0
	}
	var s float64
	for _, o := range os {
		s += o.CostUSD
	}
	return s / float64(len(os))
}

func list(ids []string) string {
	const show = 5
	s := ""
	for i, id := range ids {
		if i == show {
			return s + fmt.Sprintf(" and %d more", len(ids)-show)
		}
		if i > 0 {
			s += ", "
		}
		s += id
	}
	return s
}
