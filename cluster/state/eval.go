package state

import (
	"gantry/cluster/stats"

	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"gantry/cluster/command"
	"gantry/config"
	"gantry/eval/assert"
	"gantry/eval/canary"
	"gantry/eval/compare"
	"gantry/eval/dataset"
	"gantry/eval/run"
)

// Bounds of the evaluation state.
const (
	// MaxRunsPerFeature is how many run records a feature keeps, newest
	// last; older ones give way.
	MaxRunsPerFeature = 20
	// MaxVerdictsPerFeature is how many comparison verdicts a feature
	// keeps.
	MaxVerdictsPerFeature = 20
	// MaxStoredOutcomes bounds the case outcomes kept over every run
	// record; the oldest runs lose theirs first and keep their summary,
	// and comparing them needs a new run.
	MaxStoredOutcomes = 50_000
	// MaxDatasetStateBytes bounds every kept dataset version together,
	// encoded as JSON.
	MaxDatasetStateBytes = 64 << 20
	// MaxVerdictCases bounds each case list a stored verdict keeps; its
	// counts stay whole.
	MaxVerdictCases = 100
)

// What the canary analysis did once it decided.
const (
	CanaryRolledBack = "rolled_back"
	CanaryAlerted    = "alerted"
	CanaryPassed     = "passed"
)

// Eval is the cluster's evaluation state: datasets and their versions, the
// records of finished runs, the verdicts of comparisons, and the analysis
// of each feature's canary.
type Eval struct {
	Datasets dataset.Catalog `json:"datasets,omitempty"`
	// Runs and Verdicts are per feature, oldest first.
	Runs     map[string][]RunRecord     `json:"runs,omitempty"`
	Verdicts map[string][]VerdictRecord `json:"verdicts,omitempty"`
	// Canaries holds the analysis of each feature's latest canary.
	Canaries map[string]CanaryRecord `json:"canaries,omitempty"`

	// datasetBytes is the encoded size of every kept dataset version; it
	// is derived, so not encoded.
	datasetBytes int64
}

// RunRecord is a finished run as the cluster keeps it.
type RunRecord struct {
	command.Run
	Index uint64    `json:"index"`
	Time  time.Time `json:"time"`
	Actor string    `json:"actor"`
}

// VerdictRecord is a comparison's verdict as the cluster worked it out.
type VerdictRecord struct {
	Verdict compare.Verdict `json:"verdict"`
	// Omitted counts the case ids left out of the verdict's lists beyond
	// MaxVerdictCases.
	Omitted int       `json:"omitted,omitempty"`
	Index   uint64    `json:"index"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
}

// CanaryRecord is the analysis of a feature's canary: which releases it
// compares, its state between looks, and what it decided and did.
type CanaryRecord struct {
	Canary     int          `json:"canary"`
	Production int          `json:"production"`
	Began      time.Time    `json:"began"`
	Index      uint64       `json:"index"`
	State      canary.State `json:"state"`
	// Decision is the analysis' decision once it is regression or pass.
	Decision *canary.Decision `json:"decision,omitempty"`
	// Action is what the decision did: rolled_back, alerted or passed.
	Action  string    `json:"action,omitempty"`
	Decided time.Time `json:"decided,omitzero"`
}

// Matches reports whether the record analyses the canary the labels
// point at now.
func (r CanaryRecord) Matches(l config.Labels) bool {
	return l.Live() && r.Canary == l.Canary && r.Production == l.Production
}

// CanaryPolicy is the analysis policy of a feature's canary settings;
// unset numbers take the analysis' defaults.
func CanaryPolicy(p *config.CanaryPolicy) canary.Policy {
	if p == nil {
		return canary.Policy{}.WithDefaults()
	}
	return canary.Policy{Alpha: p.Alpha, Tau: p.Tau, MinRequests: p.MinSamples, MinFeedback: p.MinFeedback,
		MaxDuration: p.MaxDuration.D(), MaxLatencyIncrease: p.MaxLatencyIncrease, MaxCostIncrease: p.MaxCostIncrease}.WithDefaults()
}

// CanaryPoint is both releases' cluster-wide counters at time at.
// canaryCounters are a release's cumulative counters as the canary analysis
// reads them.
func canaryCounters(r stats.Release) canary.Counters {
	return canary.Counters{Requests: r.Requests, Errors: r.Errors, ValidationFailures: r.ValidationFailures,
		FeedbackUp: r.FeedbackUp, FeedbackDown: r.FeedbackDown, CostUSD: r.CostUSD, Latency: r.Latency}
}

func (s *State) CanaryPoint(feature string, canaryVersion, production int, at time.Time) canary.Point {
	pt := canary.Point{At: at}
	if r, ok := s.Stats.Releases[config.ReleaseID(feature, canaryVersion)]; ok {
		pt.Canary = canaryCounters(r)
	}
	if r, ok := s.Stats.Releases[config.ReleaseID(feature, production)]; ok {
		pt.Production = canaryCounters(r)
	}
	return pt
}

// Run finds a recorded run of a feature by id.
func (s *State) Run(feature, id string) (RunRecord, bool) {
	for _, r := range s.Eval.Runs[feature] {
		if r.Summary.RunID == id {
			return r, true
		}
	}
	return RunRecord{}, false
}

// GateCheck is where a release stands against its feature's promotion
// gate.
type GateCheck struct {
	// Gated is set when the feature gates promotion on its dataset.
	Gated   bool
	Dataset string
	// Verdict is the release's latest comparison on the dataset, if any.
	Verdict *VerdictRecord
	// Refusal says why promotion is refused; empty when it is allowed.
	Refusal string
}

// Gate checks release version of a feature against the feature's
// promotion gate: with the gate on, the release's latest comparison on
// the feature's dataset must exist and not be a regression. It is the one
// place the rule lives; the state machine applies it to every promotion,
// and the admin API and the console show it before they ask.
func (s *State) Gate(f config.Feature, version int) GateCheck {
	if f.Eval == nil || !f.Eval.Gate {
		return GateCheck{}
	}
	g := GateCheck{Gated: true, Dataset: f.Eval.Dataset}
	vs := s.Eval.Verdicts[f.Name]
	for i := len(vs) - 1; i >= 0; i-- {
		if v := vs[i]; v.Verdict.Candidate == version && v.Verdict.Dataset == f.Eval.Dataset {
			g.Verdict = &v
			break
		}
	}
	switch {
	case g.Verdict == nil:
		g.Refusal = fmt.Sprintf("%s has no comparison on dataset %s; run gantry eval compare --feature %s --candidate %d --dataset %s, or force the promotion with a reason",
			config.ReleaseID(f.Name, version), f.Eval.Dataset, f.Name, version, f.Eval.Dataset)
	case g.Verdict.Verdict.Verdict == compare.Regression:
		why := strings.Join(g.Verdict.Verdict.Reasons, "; ")
		g.Refusal = fmt.Sprintf("the latest comparison of %s with v%d on dataset %s v%d is a regression: %s",
			config.ReleaseID(f.Name, version), g.Verdict.Verdict.Baseline, f.Eval.Dataset, g.Verdict.Verdict.DatasetVersion, why)
	}
	return g
}

// checkGate applies the promotion gate to a promotion. A refused one
// passes only when forced with a reason, and the override goes to the
// audit log with what it overrode.
func (tx *txn) checkGate(p command.Label, f config.Feature) error {
	g := tx.next.Gate(f, p.Version)
	if g.Refusal == "" {
		return nil
	}
	if !p.Force {
		return fmt.Errorf("%w: promotion gate: %s", ErrConflict, g.Refusal)
	}
	if strings.TrimSpace(p.Reason) == "" {
		return fmt.Errorf("%w: forcing a promotion past the evaluation gate needs a reason", ErrInvalid)
	}
	tx.record("gate/"+config.ReleaseID(f.Name, p.Version), g.Refusal, "forced", p.Reason)
	return nil
}

func putDataset(tx *txn) error {
	var p command.Dataset
	if err := tx.decode(&p); err != nil {
		return err
	}
	if err := checkNoSecrets(p.Dataset); err != nil {
		return err
	}
	e := &tx.next.Eval
	h := e.Datasets[p.Dataset.Name]
	latest, _ := h.Latest()
	if p.IfVersion != nil && *p.IfVersion != latest.Version {
		return fmt.Errorf("%w: dataset %s is at version %d, not %d as read; read it again", ErrStale, p.Dataset.Name, latest.Version, *p.IfVersion)
	}
	next, v, changed, err := e.Datasets.Push(p.Dataset, tx.env.Time)
	if err != nil {
		return fmt.Errorf("%w: dataset %s: %w", ErrInvalid, p.Dataset.Name, err)
	}
	tx.result.Version, tx.result.Hash = v.Version, v.Hash
	if !changed {
		tx.result.Unchanged = true
		return nil
	}
	bytes := e.datasetBytes + versionBytes(v)
	for _, old := range h {
		if _, kept := next[p.Dataset.Name].Get(old.Version); !kept {
			bytes -= versionBytes(old)
		}
	}
	if bytes > MaxDatasetStateBytes {
		return fmt.Errorf("%w: dataset %s: the cluster's datasets would take %d bytes, more than %d; delete datasets no longer used", ErrInvalid, p.Dataset.Name, bytes, MaxDatasetStateBytes)
	}
	e.Datasets, e.datasetBytes = next, bytes
	before := ""
	if latest.Version > 0 {
		before = datasetSummary(latest)
	}
	tx.record("dataset/"+p.Dataset.Name, before, datasetSummary(v), "")
	return nil
}

func datasetSummary(v dataset.Version) string {
	return fmt.Sprintf("%s v%d cases=%d %s", v.Dataset.Name, v.Version, len(v.Dataset.Cases), v.Hash[:min(len(v.Hash), 19)])
}

func versionBytes(v dataset.Version) int64 {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return int64(len(b))
}

func deleteDataset(tx *txn) error {
	var p command.Name
	if err := tx.decode(&p); err != nil {
		return err
	}
	e := &tx.next.Eval
	h, ok := e.Datasets[p.Name]
	if !ok {
		return fmt.Errorf("dataset: %w: %q", ErrNotFound, p.Name)
	}
	for _, v := range h {
		e.datasetBytes -= versionBytes(v)
	}
	latest, _ := h.Latest()
	e.Datasets = e.Datasets.Delete(p.Name)
	tx.record("dataset/"+p.Name, datasetSummary(latest), nil, "")
	return nil
}

func recordRun(tx *txn) error {
	var p command.Run
	if err := tx.decode(&p); err != nil {
		return err
	}
	if err := tx.next.checkRun(p); err != nil {
		return err
	}
	s := p.Summary
	e := &tx.next.Eval
	runs := slices.Clone(e.Runs[s.Feature])
	runs = slices.DeleteFunc(runs, func(r RunRecord) bool { return r.Summary.RunID == s.RunID })
	if len(runs) >= MaxRunsPerFeature {
		runs = runs[len(runs)-MaxRunsPerFeature+1:]
	}
	runs = append(runs, RunRecord{Run: p, Index: tx.index, Time: tx.env.Time, Actor: tx.env.Actor})
	e.Runs = maps.Clone(e.Runs)
	if e.Runs == nil {
		e.Runs = map[string][]RunRecord{}
	}
	e.Runs[s.Feature] = runs
	e.Runs = trimOutcomes(e.Runs)
	tx.record("run/"+s.RunID, nil, fmt.Sprintf("%s on %s v%d: %d of %d passed, %d critical failed",
		config.ReleaseID(s.Feature, s.Release), s.Dataset, s.DatasetVersion, s.Passed, s.Cases, s.CriticalFailed), "")
	return nil
}

// checkRun validates a run record against the feature, the dataset
// version it ran and its own summary.
func (s *State) checkRun(p command.Run) error {
	sum := p.Summary
	if err := sum.Check(); err != nil {
		return fmt.Errorf("%w: run summary: %w", ErrInvalid, err)
	}
	f, ok := s.Feature(sum.Feature)
	if !ok {
		return fmt.Errorf("feature: %w: %q", ErrNotFound, sum.Feature)
	}
	if _, ok := f.Release(sum.Release); !ok {
		return fmt.Errorf("release: %w: %s", ErrNotFound, config.ReleaseID(sum.Feature, sum.Release))
	}
	v, ok := s.Eval.Datasets[sum.Dataset].Get(sum.DatasetVersion)
	if !ok {
		return fmt.Errorf("dataset: %w: %s v%d is not kept (a dataset keeps its last %d versions)", ErrNotFound, sum.Dataset, sum.DatasetVersion, dataset.MaxVersions)
	}
	if v.Hash != p.DatasetHash {
		return fmt.Errorf("%w: the run ran content %s, dataset %s v%d is %s", ErrConflict, p.DatasetHash, sum.Dataset, sum.DatasetVersion, v.Hash)
	}
	if p.Repeat < 1 || p.Repeat > run.MaxRepeat {
		return fmt.Errorf("%w: repeat %d outside 1..%d", ErrInvalid, p.Repeat, run.MaxRepeat)
	}
	if len(p.Outcomes) != len(v.Dataset.Cases) || sum.Cases != len(v.Dataset.Cases) {
		return fmt.Errorf("%w: %d outcomes and %d cases in the summary, the dataset has %d cases", ErrInvalid, len(p.Outcomes), sum.Cases, len(v.Dataset.Cases))
	}
	critical := make(map[string]bool, len(v.Dataset.Cases))
	for _, c := range v.Dataset.Cases {
		critical[c.ID] = c.Critical
	}
	seen := make(map[string]bool, len(p.Outcomes))
	var passed, failed, errs, critFailed int
	unit := func(x float64) bool { return x >= 0 && x <= 1 }
	for i, o := range p.Outcomes {
		crit, known := critical[o.Case]
		switch {
		case !known:
			return fmt.Errorf("%w: outcomes[%d]: case %q is not in %s v%d", ErrInvalid, i, o.Case, sum.Dataset, sum.DatasetVersion)
		case seen[o.Case]:
			return fmt.Errorf("%w: outcomes[%d]: case %q twice", ErrInvalid, i, o.Case)
		case o.Critical != crit:
			return fmt.Errorf("%w: outcomes[%d]: case %q critical %v, the dataset says %v", ErrInvalid, i, o.Case, o.Critical, crit)
		case o.Repeats != p.Repeat || o.Passed < 0 || o.Passed > o.Repeats:
			return fmt.Errorf("%w: outcomes[%d]: %d of %d repeats passed, the run repeats %d times", ErrInvalid, i, o.Passed, o.Repeats, p.Repeat)
		case !unit(o.Score) || (o.Recall != nil && !unit(*o.Recall)) || (o.RR != nil && !unit(*o.RR)):
			return fmt.Errorf("%w: outcomes[%d]: scores are between 0 and 1", ErrInvalid, i)
		case !(o.LatencyMs >= 0 && o.LatencyMs <= assert.MaxMs) || !(o.CostUSD >= 0 && o.CostUSD <= assert.MaxUSD):
			return fmt.Errorf("%w: outcomes[%d]: latency or cost out of range", ErrInvalid, i)
		}
		seen[o.Case] = true
		switch o.Status {
		case run.Pass:
			passed++
			if o.Passed != o.Repeats {
				return fmt.Errorf("%w: outcomes[%d]: a case passes only when every repeat does", ErrInvalid, i)
			}
		case run.Fail:
			failed++
		case run.Error:
			errs++
		default:
			return fmt.Errorf("%w: outcomes[%d]: status %q: want pass, fail or error", ErrInvalid, i, o.Status)
		}
		if o.Critical && o.Status != run.Pass {
			critFailed++
		}
	}
	if passed != sum.Passed || failed != sum.Failed || errs != sum.Errors || critFailed != sum.CriticalFailed {
		return fmt.Errorf("%w: the summary (%d passed, %d failed, %d errors, %d critical) does not match the outcomes (%d, %d, %d, %d)",
			ErrInvalid, sum.Passed, sum.Failed, sum.Errors, sum.CriticalFailed, passed, failed, errs, critFailed)
	}
	return nil
}

// trimOutcomes drops the outcomes of the oldest runs, by log index, until
// all runs together keep at most MaxStoredOutcomes.
func trimOutcomes(runs map[string][]RunRecord) map[string][]RunRecord {
	type ref struct {
		feature string
		i       int
		index   uint64
		n       int
	}
	var refs []ref
	total := 0
	for f, list := range runs {
		for i, r := range list {
			if len(r.Outcomes) > 0 {
				refs = append(refs, ref{f, i, r.Index, len(r.Outcomes)})
				total += len(r.Outcomes)
			}
		}
	}
	if total <= MaxStoredOutcomes {
		return runs
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].index < refs[b].index })
	cloned := map[string]bool{}
	for _, r := range refs {
		if total <= MaxStoredOutcomes {
			break
		}
		if !cloned[r.feature] {
			runs[r.feature] = slices.Clone(runs[r.feature])
			cloned[r.feature] = true
		}
		runs[r.feature][r.i].Outcomes = nil
		total -= r.n
	}
	return runs
}

// side is a run record as compare takes it: one result a case, standing
// for the case's outcome over its repeats.
func side(r RunRecord) compare.Side {
	s := r.Summary
	sd := compare.Side{
		Identity: run.Identity{RunID: s.RunID, Feature: s.Feature, Release: s.Release, Dataset: s.Dataset,
			DatasetVersion: s.DatasetVersion, DatasetHash: r.DatasetHash, Repeat: r.Repeat},
		Summary: s,
		Results: make([]run.CaseResult, len(r.Outcomes)),
	}
	for i, o := range r.Outcomes {
		cr := run.CaseResult{Case: o.Case, Critical: o.Critical, Status: o.Status, Score: o.Score, LatencyMs: o.LatencyMs, CostUSD: o.CostUSD}
		if o.Recall != nil && o.RR != nil {
			cr.Retrieval = &assert.RetrievalMetrics{Recall: *o.Recall, RR: *o.RR}
		}
		sd.Results[i] = cr
	}
	return sd
}

func recordVerdict(tx *txn) error {
	var p command.Verdict
	if err := tx.decode(&p); err != nil {
		return err
	}
	base, ok := tx.next.Run(p.Feature, p.BaselineRun)
	if !ok {
		return fmt.Errorf("baseline run: %w: %q of feature %s", ErrNotFound, p.BaselineRun, p.Feature)
	}
	cand, ok := tx.next.Run(p.Feature, p.CandidateRun)
	if !ok {
		return fmt.Errorf("candidate run: %w: %q of feature %s", ErrNotFound, p.CandidateRun, p.Feature)
	}
	for _, r := range []RunRecord{base, cand} {
		if len(r.Outcomes) == 0 {
			return fmt.Errorf("%w: run %s keeps its summary only (the cluster keeps the outcomes of its newest runs); run it again", ErrConflict, r.Summary.RunID)
		}
	}
	v, err := compare.Compare(side(base), side(cand), p.Thresholds)
	if err != nil {
		if errors.Is(err, compare.ErrMismatch) {
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	rec := VerdictRecord{Verdict: v, Index: tx.index, Time: tx.env.Time, Actor: tx.env.Actor}
	rec.Verdict.CriticalFailures, rec.Omitted = clipList(v.CriticalFailures, rec.Omitted)
	rec.Verdict.Errored, rec.Omitted = clipList(v.Errored, rec.Omitted)
	rec.Verdict.Regressions, rec.Omitted = clipList(v.Regressions, rec.Omitted)
	rec.Verdict.Improvements, rec.Omitted = clipList(v.Improvements, rec.Omitted)
	e := &tx.next.Eval
	list := slices.Clone(e.Verdicts[p.Feature])
	if len(list) >= MaxVerdictsPerFeature {
		list = list[len(list)-MaxVerdictsPerFeature+1:]
	}
	e.Verdicts = maps.Clone(e.Verdicts)
	if e.Verdicts == nil {
		e.Verdicts = map[string][]VerdictRecord{}
	}
	e.Verdicts[p.Feature] = append(list, rec)
	tx.result.Verdict = v.Verdict
	tx.record("verdict/"+config.ReleaseID(p.Feature, v.Candidate), nil,
		fmt.Sprintf("%s against v%d on %s v%d", v.Verdict, v.Baseline, v.Dataset, v.DatasetVersion), strings.Join(v.Reasons, "; "))
	return nil
}

func clipList[T any](list []T, omitted int) ([]T, int) {
	if len(list) <= MaxVerdictCases {
		return list, omitted
	}
	return list[:MaxVerdictCases:MaxVerdictCases], omitted + len(list) - MaxVerdictCases
}

// liveCanary finds the feature and checks that its canary is live at the
// versions the command names.
func (tx *txn) liveCanary(p command.Canary) (config.Feature, error) {
	f, ok := tx.next.Feature(p.Feature)
	if !ok {
		return f, fmt.Errorf("feature: %w: %q", ErrNotFound, p.Feature)
	}
	if l := f.Labels; !l.Live() || l.Canary != p.Canary || l.Production != p.Production {
		return f, fmt.Errorf("%w: %s: the canary v%d against production v%d is not live (labels: %s)", ErrConflict, p.Feature, p.Canary, p.Production, labelSummary(l))
	}
	return f, nil
}

// canaryBegin starts the analysis of a live canary from the cluster's
// counters as they are when the command applies. A canary already under
// analysis is left as it is.
func canaryBegin(tx *txn) error {
	var p command.Canary
	if err := tx.decode(&p); err != nil {
		return err
	}
	f, err := tx.liveCanary(p)
	if err != nil {
		return err
	}
	e := &tx.next.Eval
	if r, ok := e.Canaries[f.Name]; ok && r.Matches(f.Labels) {
		tx.result.Unchanged = true
		return nil
	}
	pt := tx.next.CanaryPoint(f.Name, p.Canary, p.Production, tx.env.Time)
	e.Canaries = maps.Clone(e.Canaries)
	if e.Canaries == nil {
		e.Canaries = map[string]CanaryRecord{}
	}
	e.Canaries[f.Name] = CanaryRecord{Canary: p.Canary, Production: p.Production, Began: tx.env.Time, Index: tx.index, State: canary.Begin(pt)}
	return nil
}

// canaryDecide looks at the canary at the command's time. While the
// analysis continues nothing changes but its state; once it decides, the
// decision is recorded and acted on: a regression under a rollback policy
// ends the canary in this same command, so it is taken exactly once, and
// every decision goes to the audit log with its numbers.
func canaryDecide(tx *txn) error {
	var p command.Canary
	if err := tx.decode(&p); err != nil {
		return err
	}
	f, err := tx.liveCanary(p)
	if err != nil {
		return err
	}
	e := &tx.next.Eval
	rec, ok := e.Canaries[f.Name]
	if !ok || !rec.Matches(f.Labels) {
		return fmt.Errorf("%w: the canary of %s has no analysis yet", ErrConflict, f.Name)
	}
	if rec.Decision != nil {
		tx.result.Unchanged = true
		return nil
	}
	pol := CanaryPolicy(f.Canary)
	st, d, err := canary.Step(pol, rec.State, tx.next.CanaryPoint(f.Name, p.Canary, p.Production, tx.env.Time))
	if err != nil {
		return fmt.Errorf("%w: canary analysis of %s: %w", ErrInvalid, f.Name, err)
	}
	rec.State = st
	tx.result.Outcome = d.Outcome
	if d.Outcome != canary.Continue {
		rec.Decision, rec.Decided = &d, tx.env.Time
		target := "canary/" + config.ReleaseID(f.Name, p.Canary)
		switch {
		case d.Outcome == canary.Pass:
			rec.Action = CanaryPassed
			tx.record(target, "analysis", CanaryPassed, d.Reason)
		case f.Canary.Action() == config.CanaryRollback:
			rec.Action = CanaryRolledBack
			if err := tx.rollbackCanary(f, p.Canary, d); err != nil {
				return err
			}
		default:
			rec.Action = CanaryAlerted
			tx.record(target, "analysis", "regression: "+d.Metric, numbers(d))
		}
	}
	e.Canaries = maps.Clone(e.Canaries)
	e.Canaries[f.Name] = rec
	return nil
}

// rollbackCanary ends the canary as a rollback does (config.PlanMove).
func (tx *txn) rollbackCanary(f config.Feature, canaryVersion int, d canary.Decision) error {
	from := canaryVersion
	step, err := config.PlanMove(f, tx.next.LabelHistory[f.Name], config.LabelMove{Action: config.MoveRollback, From: &from})
	if err != nil {
		return fmt.Errorf("%w: automatic rollback of %s: %w", ErrConflict, f.Name, err)
	}
	why := "automatic rollback: " + numbers(d)
	before := f.Labels
	f.Labels = step.Next
	tx.next.Config.Features, _ = put(tx.next.Config.Features, featureName, f)
	tx.addLabelChange(f.Name, LabelChange{Action: config.MoveRollback, Label: step.Label, From: step.From, To: step.To, Weight: step.Weight, Reason: truncate(why, command.MaxReasonLen)})
	tx.configChanged = true
	tx.record("labels/"+f.Name, labelSummary(before), labelSummary(f.Labels), why)
	return nil
}

// numbers is a decision in one line, with the metric that decided it.
func numbers(d canary.Decision) string {
	s := fmt.Sprintf("%s after %d canary and %d production calls in %s", d.Reason, d.CanaryRequests, d.ProductionRequests, d.Elapsed.Round(time.Second))
	for _, m := range d.Metrics {
		if m.Name == d.Metric && m.Name != canary.CostPerRequest && !math.IsNaN(m.LogLR) {
			s += fmt.Sprintf(" (log likelihood ratio %.2f, threshold %.2f)", m.LogLR, m.Threshold)
		}
	}
	return s
}

// prune drops the evaluation records of features the configuration no
// longer has.
func (e Eval) prune(cfg *config.Config) Eval {
	has := func(name string) bool {
		return slices.ContainsFunc(cfg.Features, func(f config.Feature) bool { return f.Name == name })
	}
	if slices.ContainsFunc(slices.Collect(maps.Keys(e.Runs)), func(n string) bool { return !has(n) }) {
		e.Runs = maps.Clone(e.Runs)
		maps.DeleteFunc(e.Runs, func(n string, _ []RunRecord) bool { return !has(n) })
	}
	if slices.ContainsFunc(slices.Collect(maps.Keys(e.Verdicts)), func(n string) bool { return !has(n) }) {
		e.Verdicts = maps.Clone(e.Verdicts)
		maps.DeleteFunc(e.Verdicts, func(n string, _ []VerdictRecord) bool { return !has(n) })
	}
	if slices.ContainsFunc(slices.Collect(maps.Keys(e.Canaries)), func(n string) bool { return !has(n) }) {
		e.Canaries = maps.Clone(e.Canaries)
		maps.DeleteFunc(e.Canaries, func(n string, _ CanaryRecord) bool { return !has(n) })
	}
	return e
}

// check validates the evaluation state read from a snapshot and computes
// what is derived from it.
func (e *Eval) check() error {
	if err := e.Datasets.Check(); err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	e.datasetBytes = 0
	for _, h := range e.Datasets {
		for _, v := range h {
			e.datasetBytes += versionBytes(v)
		}
	}
	for f, rs := range e.Runs {
		if len(rs) > MaxRunsPerFeature {
			return fmt.Errorf("feature %s has %d runs, more than %d", f, len(rs), MaxRunsPerFeature)
		}
	}
	for f, vs := range e.Verdicts {
		if len(vs) > MaxVerdictsPerFeature {
			return fmt.Errorf("feature %s has %d verdicts, more than %d", f, len(vs), MaxVerdictsPerFeature)
		}
	}
	return nil
}
