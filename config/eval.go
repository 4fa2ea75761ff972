package config

import (
	"fmt"
	"math"
	"regexp"
	"time"
)

// EvalPolicy ties a feature to its evaluation dataset. With Gate on, a
// release is promoted only when its latest comparison on the dataset is
// not a regression (or when an operator forces it, with a reason).
type EvalPolicy struct {
	// Dataset names the dataset comparisons of this feature run on.
	Dataset string `yaml:"dataset" json:"dataset"`
	// Gate refuses to promote a release whose latest comparison on the
	// dataset is a regression or missing.
	Gate bool `yaml:"gate" json:"gate,omitempty"`
}

// What the leader does when a live canary is significantly worse than
// production.
const (
	CanaryRollback = "rollback"
	CanaryAlert    = "alert"
)

// CanaryPolicy configures the live analysis of a feature's canary. Unset
// numbers take the analysis's defaults (eval/canary.Defaults).
type CanaryPolicy struct {
	// OnRegression is rollback (end the canary, audited and alerted) or
	// alert (say so and leave the canary live); default alert.
	OnRegression string `yaml:"on_regression" json:"on_regression,omitempty"`
	// MinSamples is how many canary calls a verdict needs.
	MinSamples int64 `yaml:"min_samples" json:"min_samples,omitempty"`
	// MinFeedback is how many feedback signals each side needs before
	// feedback is tested.
	MinFeedback int64 `yaml:"min_feedback" json:"min_feedback,omitempty"`
	// MaxDuration ends the analysis with a pass when nothing was found.
	MaxDuration Duration `yaml:"max_duration" json:"max_duration,omitempty"`
	// Alpha bounds the chance that an equal canary is ever called a
	// regression, over every look and metric.
	Alpha float64 `yaml:"alpha" json:"alpha,omitempty"`
	// Tau is the size of rate difference the test is quickest to find.
	Tau float64 `yaml:"tau" json:"tau,omitempty"`
	// MaxLatencyIncrease and MaxCostIncrease are how much higher (0.2 is
	// 20%) the canary's p95 latency and cost per request may be.
	MaxLatencyIncrease float64 `yaml:"max_latency_increase" json:"max_latency_increase,omitempty"`
	MaxCostIncrease    float64 `yaml:"max_cost_increase" json:"max_cost_increase,omitempty"`
}

// Action is what the policy does on a regression, with the default.
func (p *CanaryPolicy) Action() string {
	if p == nil || p.OnRegression == "" {
		return CanaryAlert
	}
	return p.OnRegression
}

// Bounds of the evaluation and canary settings. They match what
// eval/canary.Policy.Check accepts (cluster/state tests hold them to it).
const (
	MinCanarySamples     = 10
	MaxCanarySamples     = 1_000_000_000
	MinCanaryDuration    = time.Minute
	MaxCanaryDuration    = 7 * 24 * time.Hour
	MaxCanaryAlpha       = 0.2
	MaxCanaryIncrease    = 100
	MaxDatasetNameLength = 64
)

// datasetNameRE is eval/dataset's rule for a dataset name.
var datasetNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// validateEval checks each feature's evaluation and canary settings.
func (cfg *Config) validateEval(c *checker) {
	for i, f := range cfg.Features {
		path := fmt.Sprintf("features[%d]", i)
		if e := f.Eval; e != nil {
			switch {
			case e.Dataset == "":
				c.add(path+".eval.dataset", "evaluation needs a dataset name")
			case len(e.Dataset) > MaxDatasetNameLength || !datasetNameRE.MatchString(e.Dataset):
				c.add(path+".eval.dataset", "%q is not a dataset name: lower-case letters, digits, '.', '_' and '-', at most %d characters", e.Dataset, MaxDatasetNameLength)
			}
		}
		if p := f.Canary; p != nil {
			cp := path + ".canary"
			switch p.OnRegression {
			case "", CanaryRollback, CanaryAlert:
			default:
				c.add(cp+".on_regression", "%q: want %s or %s", p.OnRegression, CanaryRollback, CanaryAlert)
			}
			if p.MinSamples != 0 && (p.MinSamples < MinCanarySamples || p.MinSamples > MaxCanarySamples) {
				c.add(cp+".min_samples", "%d is outside %d..%d", p.MinSamples, MinCanarySamples, MaxCanarySamples)
			}
			if p.MinFeedback < 0 || p.MinFeedback > MaxCanarySamples {
				c.add(cp+".min_feedback", "%d is outside 0..%d", p.MinFeedback, MaxCanarySamples)
			}
			if d := p.MaxDuration.D(); d != 0 && (d < MinCanaryDuration || d > MaxCanaryDuration) {
				c.add(cp+".max_duration", "%s is outside %s..%s", d, MinCanaryDuration, MaxCanaryDuration)
			}
			if a := p.Alpha; a != 0 && !(a > 0 && a <= MaxCanaryAlpha) {
				c.add(cp+".alpha", "%v is outside (0, %v]", a, MaxCanaryAlpha)
			}
			if t := p.Tau; t != 0 && !(t > 0 && t <= 1) {
				c.add(cp+".tau", "%v is outside (0, 1]", t)
			}
			for _, x := range []struct {
				name string
				v    float64
			}{{"max_latency_increase", p.MaxLatencyIncrease}, {"max_cost_increase", p.MaxCostIncrease}} {
				if math.IsNaN(x.v) || x.v < 0 || x.v > MaxCanaryIncrease {
					c.add(cp+"."+x.name, "%v is outside 0..%d (times production's)", x.v, MaxCanaryIncrease)
				}
			}
		}
	}
}
