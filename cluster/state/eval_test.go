package state

import (
	"gantry/eval/sketch"

	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/stats"
	"gantry/config"
	"gantry/eval/canary"
	"gantry/eval/compare"
	"gantry/eval/dataset"
	"gantry/eval/run"
)

// evalState is seeded with releases v1..v3 of support, its gate on
// dataset smoke, and dataset smoke pushed: n cases, the first critical.
func evalState(t *testing.T, n int, policy *config.CanaryPolicy) (*State, dataset.Version) {
	t.Helper()
	s := seeded(t)
	for i := range 2 {
		s, _ = mustApply(t, s, uint64(2+i), mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, fmt.Sprintf("rel%d", i)))
	}
	s, _ = mustApply(t, s, 4, mk(t, command.PutFeature, command.Feature{Feature: config.Feature{Name: "support",
		Eval: &config.EvalPolicy{Dataset: "smoke", Gate: true}, Canary: policy}}, "policy"))
	d := dataset.Dataset{Name: "smoke"}
	for i := range n {
		d.Cases = append(d.Cases, dataset.Case{ID: fmt.Sprintf("c%02d", i), Vars: map[string]any{"q": fmt.Sprint(i)}, Critical: i == 0})
	}
	s, res := mustApply(t, s, 5, mk(t, command.PutDataset, command.Dataset{Dataset: d}, "ds"))
	v, ok := s.Eval.Datasets["smoke"].Get(res.Version)
	if !ok || res.Version != 1 {
		t.Fatalf("dataset version %d not kept", res.Version)
	}
	return s, v
}

// runOf is a run record of release rel on v where the cases in fail fail.
func runOf(id string, rel int, v dataset.Version, fail ...int) command.Run {
	failed := map[int]bool{}
	for _, i := range fail {
		failed[i] = true
	}
	p := command.Run{DatasetHash: v.Hash, Repeat: 1}
	s := run.Summary{RunID: id, Feature: "support", Release: rel, Dataset: v.Dataset.Name, DatasetVersion: v.Version}
	for i, c := range v.Dataset.Cases {
		o := run.CaseOutcome{Case: c.ID, Critical: c.Critical, Status: run.Pass, Repeats: 1, Passed: 1, Score: 1, LatencyMs: 100, CostUSD: 0.001}
		s.Cases++
		if failed[i] {
			o.Status, o.Passed, o.Score = run.Fail, 0, 0
			s.Failed++
			if c.Critical {
				s.CriticalFailed++
			}
		} else {
			s.Passed++
		}
		p.Outcomes = append(p.Outcomes, o)
	}
	s.PassRate = float64(s.Passed) / float64(s.Cases)
	s.P50Ms, s.P95Ms, s.CostUSD = 100, 100, 0.001*float64(s.Cases)
	p.Summary = s
	return p
}

func TestDatasetVersions(t *testing.T) {
	s, v1 := evalState(t, 3, nil)
	// The same content again makes no version.
	s2, res := mustApply(t, s, 10, mk(t, command.PutDataset, command.Dataset{Dataset: v1.Dataset}, "again"))
	if !res.Unchanged || res.Version != 1 || len(s2.Eval.Datasets["smoke"]) != 1 {
		t.Fatalf("unchanged push: %+v, %d versions", res, len(s2.Eval.Datasets["smoke"]))
	}
	// A case added to version 1 while version 2 exists is stale.
	d := v1.Dataset
	d.Description = "v2"
	s2, res = mustApply(t, s2, 11, mk(t, command.PutDataset, command.Dataset{Dataset: d}, "v2"))
	if res.Version != 2 {
		t.Fatalf("second content: version %d, want 2", res.Version)
	}
	one := 1
	d.Description = "from version 1"
	if _, _, err := s2.Apply(12, mk(t, command.PutDataset, command.Dataset{Dataset: d, IfVersion: &one}, "stale")); !errors.Is(err, ErrStale) {
		t.Fatalf("push on a stale version: %v, want ErrStale", err)
	}
	// A credential in a case never reaches the log.
	d.Cases = append(d.Cases, dataset.Case{ID: "leak", Vars: map[string]any{"q": "my key is sk-proj-abcdefghijklmnopqrstuvwxyz012345"}})
	if _, _, err := s2.Apply(13, mk(t, command.PutDataset, command.Dataset{Dataset: d}, "leak")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("dataset with a credential: %v, want ErrInvalid", err)
	}
	bad := dataset.Dataset{Name: "Bad Name", Cases: v1.Dataset.Cases}
	if _, _, err := s2.Apply(14, mk(t, command.PutDataset, command.Dataset{Dataset: bad}, "bad")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid dataset: %v, want ErrInvalid", err)
	}
	s3, _ := mustApply(t, s2, 15, mk(t, command.DeleteDataset, command.Name{Name: "smoke"}, "del"))
	if _, ok := s3.Eval.Datasets["smoke"]; ok || s3.Eval.datasetBytes != 0 {
		t.Fatalf("dataset still there after delete (bytes %d)", s3.Eval.datasetBytes)
	}
	if _, _, err := s3.Apply(16, mk(t, command.DeleteDataset, command.Name{Name: "smoke"}, "del2")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of a missing dataset: %v", err)
	}
}

func TestRunRecordsAreChecked(t *testing.T) {
	s, v := evalState(t, 4, nil)
	good := runOf("run-a", 1, v)
	tamper := func(f func(*command.Run)) command.Run {
		r := runOf("run-x", 1, v, 1)
		f(&r)
		return r
	}
	cases := []struct {
		name string
		run  command.Run
		want error
	}{
		{"summary disagrees with outcomes", tamper(func(r *command.Run) { r.Summary.Passed, r.Summary.Failed = 4, 0 }), ErrInvalid},
		{"unknown case", tamper(func(r *command.Run) { r.Outcomes[2].Case = "nope" }), ErrInvalid},
		{"case twice", tamper(func(r *command.Run) { r.Outcomes[2].Case = r.Outcomes[3].Case }), ErrInvalid},
		{"critical flag changed", tamper(func(r *command.Run) { r.Outcomes[0].Critical = false }), ErrInvalid},
		{"score out of range", tamper(func(r *command.Run) { r.Outcomes[2].Score = 2 }), ErrInvalid},
		{"missing outcomes", tamper(func(r *command.Run) { r.Outcomes = r.Outcomes[:3] }), ErrInvalid},
		{"other content", tamper(func(r *command.Run) { r.DatasetHash = "sha256:00" }), ErrConflict},
		{"unknown release", tamper(func(r *command.Run) { r.Summary.Release = 9 }), ErrNotFound},
		{"unknown dataset version", tamper(func(r *command.Run) { r.Summary.DatasetVersion = 2 }), ErrNotFound},
	}
	for _, tc := range cases {
		if _, _, err := s.Apply(10, mk(t, command.RecordRun, tc.run, "bad")); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	s, _ = mustApply(t, s, 11, mk(t, command.RecordRun, good, "good"))
	if r, ok := s.Run("support", "run-a"); !ok || len(r.Outcomes) != 4 || r.Index != 11 {
		t.Fatalf("run not recorded: %+v", r)
	}
	// Recording the same run id again (a resumed run) replaces it.
	s, _ = mustApply(t, s, 12, mk(t, command.RecordRun, good, "again"))
	if n := len(s.Eval.Runs["support"]); n != 1 {
		t.Fatalf("%d runs after recording run-a twice", n)
	}
	for i := range MaxRunsPerFeature + 3 {
		s, _ = mustApply(t, s, uint64(20+i), mk(t, command.RecordRun, runOf(fmt.Sprintf("run-%d", i), 1, v), fmt.Sprintf("r%d", i)))
	}
	if n := len(s.Eval.Runs["support"]); n != MaxRunsPerFeature {
		t.Fatalf("%d runs kept, want %d", n, MaxRunsPerFeature)
	}
}

func TestGateRefusesRegressionsAndMissingComparisons(t *testing.T) {
	s, v := evalState(t, 30, nil)
	promote := func(s *State, id string, version int, force bool, reason string) (*State, error) {
		next, _, err := s.Apply(100, mk(t, command.MoveLabel, command.Label{Feature: "support", Action: config.MovePromote, Version: version, Force: force, Reason: reason}, id))
		return next, err
	}
	if _, err := promote(s, "p0", 2, false, ""); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "no comparison") {
		t.Fatalf("promotion without a comparison: %v", err)
	}
	s, _ = mustApply(t, s, 10, mk(t, command.RecordRun, runOf("base", 1, v, 5), "base"))
	s, _ = mustApply(t, s, 11, mk(t, command.RecordRun, runOf("broken", 2, v, 0), "broken"))
	s, res := mustApply(t, s, 12, mk(t, command.RecordVerdict, command.Verdict{Feature: "support", BaselineRun: "base", CandidateRun: "broken"}, "cmp1"))
	if res.Verdict != compare.Regression {
		t.Fatalf("a broken critical case: verdict %q, want regression", res.Verdict)
	}
	g := s.Gate(mustFeature(t, s, "support"), 2)
	if g.Verdict == nil || g.Refusal == "" || !strings.Contains(g.Refusal, "critical") {
		t.Fatalf("gate %+v, want a refusal naming the critical case", g)
	}
	if _, err := promote(s, "p1", 2, false, ""); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "regression") {
		t.Fatalf("promotion of a regression: %v", err)
	}
	if _, err := promote(s, "p2", 2, true, " "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forced without a reason: %v", err)
	}
	forced, err := promote(s, "p3", 2, true, "hotfix for incident 42")
	if err != nil {
		t.Fatalf("forced promotion: %v", err)
	}
	if l := mustFeature(t, forced, "support").Labels; l.Production != 2 {
		t.Fatalf("production %d after forced promotion", l.Production)
	}
	var override *AuditRecord
	for _, a := range forced.Audit() {
		if a.Target == "gate/support@v2" {
			override = &a
		}
	}
	if override == nil || override.Reason != "hotfix for incident 42" || !strings.Contains(override.Before, "regression") {
		t.Fatalf("override not audited: %+v", override)
	}

	// An improved release passes the gate.
	s, _ = mustApply(t, s, 13, mk(t, command.RecordRun, runOf("fixed", 3, v), "fixed"))
	s, _ = mustApply(t, s, 14, mk(t, command.RecordVerdict, command.Verdict{Feature: "support", BaselineRun: "base", CandidateRun: "fixed"}, "cmp2"))
	if g := s.Gate(mustFeature(t, s, "support"), 3); g.Refusal != "" || g.Verdict.Verdict.Verdict == compare.Regression {
		t.Fatalf("gate of a release that broke nothing: %+v", g)
	}
	if _, err := promote(s, "p4", 3, false, ""); err != nil {
		t.Fatalf("promotion past an open gate: %v", err)
	}
	// Comparing a run with a missing one, or across features, is refused.
	if _, _, err := s.Apply(15, mk(t, command.RecordVerdict, command.Verdict{Feature: "support", BaselineRun: "base", CandidateRun: "nope"}, "cmp3")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("verdict on a missing run: %v", err)
	}
}

func mustFeature(t *testing.T, s *State, name string) config.Feature {
	t.Helper()
	f, ok := s.Feature(name)
	if !ok {
		t.Fatalf("no feature %s", name)
	}
	return f
}

// trafficBatch counts calls of support@vN with the given validation
// failures.
func trafficBatch(t *testing.T, agent string, seq uint64, version int, calls, invalid int64) command.Envelope {
	t.Helper()
	b := sketch.NewBuilder()
	for range calls {
		b.Add(50)
	}
	it := stats.Item{Feature: "support", Version: version, Latency: b.Sketch(),
		Counters: stats.Counters{Requests: calls, ValidationFailures: invalid, CostUSD: 0.001 * float64(calls)}}
	e := mk(t, command.CommitStats, command.Stats{Batch: stats.Batch{Agent: agent, Seq: seq, Items: []stats.Item{it}}}, fmt.Sprintf("stats-%s-%d", agent, seq))
	e.Skippable = true
	return e
}

func TestCanaryRollbackIsTakenOnce(t *testing.T) {
	for _, tc := range []struct {
		policy     *config.CanaryPolicy
		action     string
		production int
		canary     int
	}{
		{&config.CanaryPolicy{OnRegression: config.CanaryRollback, MinSamples: 100}, CanaryRolledBack, 1, 0},
		{&config.CanaryPolicy{OnRegression: config.CanaryAlert, MinSamples: 100}, CanaryAlerted, 1, 2},
	} {
		s, _ := evalState(t, 3, tc.policy)
		// Traffic before the canary must not count.
		s, _ = mustApply(t, s, 10, trafficBatch(t, "a", 1, 1, 1000, 500))
		s, _ = mustApply(t, s, 11, mk(t, command.MoveLabel, command.Label{Feature: "support", Action: config.MoveCanary, Version: 2, Weight: 50}, "canary"))
		look := command.Canary{Feature: "support", Canary: 2, Production: 1}
		begin := mk(t, command.CanaryBegin, look, "begin")
		s, _ = mustApply(t, s, 12, begin)
		rec := s.Eval.Canaries["support"]
		if rec.State.Start.Production.Requests != 1000 || rec.Began != t0 {
			t.Fatalf("analysis began from %+v", rec.State.Start.Production)
		}
		begin.RequestID = "begin-again"
		if _, res := mustApply(t, s, 13, begin); !res.Unchanged {
			t.Fatal("a second begin restarted the analysis")
		}
		// Equal rates so far: the analysis continues.
		s, _ = mustApply(t, s, 14, trafficBatch(t, "a", 2, 1, 300, 30))
		s, _ = mustApply(t, s, 15, trafficBatch(t, "a", 3, 2, 300, 30))
		decide := mk(t, command.CanaryDecide, look, "look1")
		decide.Time = t0.Add(time.Minute)
		s, res := mustApply(t, s, 16, decide)
		if res.Outcome != canary.Continue || s.Eval.Canaries["support"].Decision != nil {
			t.Fatalf("equal canary: outcome %q", res.Outcome)
		}
		// Twice production's validation failures: regression.
		s, _ = mustApply(t, s, 17, trafficBatch(t, "a", 4, 1, 600, 60))
		s, _ = mustApply(t, s, 18, trafficBatch(t, "a", 5, 2, 600, 180))
		decide = mk(t, command.CanaryDecide, look, "look2")
		decide.Time = t0.Add(2 * time.Minute)
		s, res = mustApply(t, s, 19, decide)
		rec = s.Eval.Canaries["support"]
		if res.Outcome != canary.Regression || rec.Decision == nil || rec.Action != tc.action || rec.Decision.Metric != canary.ValidationRate {
			t.Fatalf("worse canary: outcome %q action %q decision %+v", res.Outcome, rec.Action, rec.Decision)
		}
		l := mustFeature(t, s, "support").Labels
		if l.Production != tc.production || l.Canary != tc.canary {
			t.Fatalf("labels after %s: %+v", tc.action, l)
		}
		rollbacks := 0
		for _, a := range s.Audit() {
			if a.Target == "labels/support" && strings.HasPrefix(a.Reason, "automatic rollback") {
				rollbacks++
				if !strings.Contains(a.Reason, "validation_failure_rate") {
					t.Fatalf("rollback audited without its numbers: %q", a.Reason)
				}
			}
		}
		if want := map[string]int{CanaryRolledBack: 1, CanaryAlerted: 0}[tc.action]; rollbacks != want {
			t.Fatalf("%d rollbacks audited, want %d", rollbacks, want)
		}
		// Another look changes nothing: the decision was taken once.
		decide = mk(t, command.CanaryDecide, look, "look3")
		next, res, err := s.Apply(20, decide)
		switch tc.action {
		case CanaryRolledBack:
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("look at an ended canary: %v", err)
			}
		default:
			if err != nil || !res.Unchanged || len(next.Audit()) != len(s.Audit()) {
				t.Fatalf("second look at an alerted canary: %v %+v", err, res)
			}
		}
	}
}

func TestEvalStateSurvivesSnapshots(t *testing.T) {
	s, v := evalState(t, 5, &config.CanaryPolicy{OnRegression: config.CanaryRollback})
	s, _ = mustApply(t, s, 10, mk(t, command.RecordRun, runOf("base", 1, v), "base"))
	s, _ = mustApply(t, s, 11, mk(t, command.RecordRun, runOf("cand", 2, v, 3), "cand"))
	s, _ = mustApply(t, s, 12, mk(t, command.RecordVerdict, command.Verdict{Feature: "support", BaselineRun: "base", CandidateRun: "cand"}, "cmp"))
	s, _ = mustApply(t, s, 13, mk(t, command.MoveLabel, command.Label{Feature: "support", Action: config.MoveCanary, Version: 3, Weight: 10}, "canary"))
	s, _ = mustApply(t, s, 14, mk(t, command.CanaryBegin, command.Canary{Feature: "support", Canary: 3, Production: 1}, "begin"))
	got := roundTrip(t, s)
	if got.Hash() != s.Hash() {
		t.Fatal("restored state hash differs")
	}
	if got.Eval.datasetBytes != s.Eval.datasetBytes || got.Eval.datasetBytes == 0 {
		t.Fatalf("dataset bytes %d after restore, %d before", got.Eval.datasetBytes, s.Eval.datasetBytes)
	}
	if len(got.Eval.Verdicts["support"]) != 1 || got.Eval.Canaries["support"].Canary != 3 {
		t.Fatalf("evaluation state lost: %+v", got.Eval)
	}
	// Deleting the feature drops its records.
	gone, _ := mustApply(t, got, 20, mk(t, command.DeleteFeature, command.Name{Name: "support"}, "del"))
	if len(gone.Eval.Runs)+len(gone.Eval.Verdicts)+len(gone.Eval.Canaries) != 0 {
		t.Fatalf("records of a deleted feature kept: %+v", gone.Eval)
	}
}

func TestOutcomesAreBoundedAcrossRuns(t *testing.T) {
	s, v := evalState(t, dataset.MaxCases, nil)
	other := mustFeature(t, s, "support")
	other.Name, other.Eval, other.Canary = "other", nil, nil
	s, _ = mustApply(t, s, 6, mk(t, command.PutFeature, command.Feature{Feature: other}, "other"))
	// Runs alternate between two features, so more runs are kept than
	// one feature keeps.
	n := MaxStoredOutcomes/dataset.MaxCases + 2
	for i := range n {
		r := runOf(fmt.Sprintf("run-%d", i), 1, v)
		if i%2 == 1 {
			r.Summary.Feature = "other"
		}
		s, _ = mustApply(t, s, uint64(10+i), mk(t, command.RecordRun, r, fmt.Sprintf("r%d", i)))
	}
	total, kept := 0, 0
	for _, f := range []string{"support", "other"} {
		for _, r := range s.Eval.Runs[f] {
			total += len(r.Outcomes)
			if len(r.Outcomes) > 0 {
				kept++
			}
		}
	}
	if total > MaxStoredOutcomes || kept != MaxStoredOutcomes/dataset.MaxCases {
		t.Fatalf("%d outcomes in %d runs kept, bound %d", total, kept, MaxStoredOutcomes)
	}
	if r := s.Eval.Runs["support"][0]; len(r.Outcomes) != 0 || r.Summary.Cases != dataset.MaxCases {
		t.Fatal("the oldest run should keep its summary and lose its outcomes")
	}
	if _, _, err := s.Apply(100, mk(t, command.RecordVerdict, command.Verdict{Feature: "support", BaselineRun: "run-0", CandidateRun: fmt.Sprintf("run-%d", n-1)}, "cmp")); !errors.Is(err, ErrConflict) {
		t.Fatalf("comparing a run without outcomes: %v", err)
	}
}

// Every canary policy the configuration accepts is one the analysis
// accepts, at the edges of each bound, and just past them the
// configuration refuses it.
func TestCanaryPolicyBoundsAgree(t *testing.T) {
	valid := func(p config.CanaryPolicy) error {
		cfg := config.Config{
			Providers: []config.Provider{{Name: "sim", Kind: config.KindSim}},
			Models:    []config.Model{{Name: "m1", Provider: "sim"}},
			Features:  []config.Feature{{Name: "f", Releases: []config.Release{{Version: 1, Route: "m1"}}, Labels: config.Labels{Production: 1}, Canary: &p}},
		}
		return cfg.Validate()
	}
	edges := []config.CanaryPolicy{
		{MinSamples: config.MinCanarySamples}, {MinSamples: config.MaxCanarySamples},
		{MaxDuration: config.Duration(config.MinCanaryDuration)}, {MaxDuration: config.Duration(config.MaxCanaryDuration)},
		{Alpha: config.MaxCanaryAlpha}, {Alpha: 1e-6}, {Tau: 1}, {MinFeedback: 1}, {MinFeedback: config.MaxCanarySamples},
		{MaxLatencyIncrease: config.MaxCanaryIncrease, MaxCostIncrease: config.MaxCanaryIncrease},
		{},
	}
	for _, p := range edges {
		if err := valid(p); err != nil {
			t.Fatalf("%+v: the configuration refuses it: %v", p, err)
		}
		if err := CanaryPolicy(&p).Check(); err != nil {
			t.Fatalf("%+v: the configuration accepts it, the analysis refuses it: %v", p, err)
		}
	}
	beyond := []config.CanaryPolicy{
		{MinSamples: config.MinCanarySamples - 1}, {MinSamples: config.MaxCanarySamples + 1},
		{MaxDuration: config.Duration(config.MinCanaryDuration - time.Second)}, {MaxDuration: config.Duration(config.MaxCanaryDuration + time.Second)},
		{Alpha: config.MaxCanaryAlpha + 0.01}, {Tau: 1.01}, {MinFeedback: -1},
		{MaxLatencyIncrease: config.MaxCanaryIncrease + 1},
	}
	for _, p := range beyond {
		if valid(p) == nil {
			t.Fatalf("%+v: the configuration accepts a policy past its bounds", p)
		}
	}
}
