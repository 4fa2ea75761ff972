package tui

import (
	"strings"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
	"gantry/eval/canary"
	"gantry/eval/compare"
	evalrun "gantry/eval/run"
)

// fixtureEvals: a regression of support-answer v3 that broke a critical
// case, an improvement of summarize v2, and their runs.
func fixtureEvals() EvalsMsg {
	reg := api.Verdict{Verdict: compare.Verdict{Verdict: compare.Regression, Feature: "support-answer", Baseline: 2, Candidate: 3,
		BaselineRun: "run-2a", CandidateRun: "run-3a", Dataset: "support-smoke", DatasetVersion: 4, Cases: 40, Paired: 40,
		BaselinePassRate: 0.95, CandidatePassRate: 0.8,
		Reasons:          []string{"1 critical case(s) do not pass: refund-policy", "7 cases broke and 1 were fixed: McNemar p = 0.0703 < 0.05"},
		CriticalFailures: []string{"refund-policy"},
		Regressions: []compare.CaseDiff{
			{Case: "refund-policy", Critical: true, Baseline: evalrun.Pass, Candidate: evalrun.Fail, BaselineScore: 1, CandidateScore: 0.5},
			{Case: "order-status-late", Baseline: evalrun.Pass, Candidate: evalrun.Fail, BaselineScore: 1, CandidateScore: 0.33},
			{Case: "address-change", Baseline: evalrun.Pass, Candidate: evalrun.Fail, BaselineScore: 1, CandidateScore: 0.66},
		},
		Improvements: []compare.CaseDiff{{Case: "greeting", Baseline: evalrun.Fail, Candidate: evalrun.Pass, BaselineScore: 0.5, CandidateScore: 1}},
		McNemar:      compare.McNemar{Broke: 7, Fixed: 1, PValue: 0.0703}},
		Recorded: clock.Add(-20 * time.Minute), RecordedBy: "token:bob", Index: 990}
	imp := api.Verdict{Verdict: compare.Verdict{Verdict: compare.Improved, Feature: "summarize", Baseline: 1, Candidate: 2,
		Dataset: "summaries", DatasetVersion: 1, Cases: 25, Paired: 25, BaselinePassRate: 0.6, CandidatePassRate: 0.92,
		Reasons:      []string{"8 cases were fixed and 0 broke: McNemar p = 0.0078 < 0.05"},
		Improvements: []compare.CaseDiff{{Case: "long-thread", Baseline: evalrun.Fail, Candidate: evalrun.Pass, BaselineScore: 0, CandidateScore: 1}},
		McNemar:      compare.McNemar{Fixed: 8, PValue: 0.0078}},
		Recorded: clock.Add(-3 * time.Hour), RecordedBy: "token:carol", Index: 700}
	runOf := func(id, feature string, rel, passed, cases, crit int, ds string, age time.Duration, index uint64) api.Run {
		return api.Run{Summary: evalrun.Summary{RunID: id, Feature: feature, Release: rel, Dataset: ds, DatasetVersion: 4, Cases: cases,
			Passed: passed, Failed: cases - passed, CriticalFailed: crit, P95Ms: 1840, CostUSD: 0.0421}, Recorded: clock.Add(-age), Index: index, Comparable: true}
	}
	return EvalsMsg{
		Verdicts: []api.Verdict{imp, reg},
		Runs: []api.Run{
			runOf("run-3a", "support-answer", 3, 32, 40, 1, "support-smoke", 21*time.Minute, 985),
			runOf("run-2a", "support-answer", 2, 38, 40, 0, "support-smoke", 25*time.Minute, 980),
			runOf("run-s2", "summarize", 2, 23, 25, 0, "summaries", 3*time.Hour, 690),
		},
	}
}

// gatedFeatures are the fixture features with support-answer gated on a
// dataset, its canary under analysis, v3's gate refusing it, and a
// feature whose canary the analysis rolled back minutes ago.
func gatedFeatures() []api.Feature {
	fs := fixtureFeatures()
	ev := fixtureEvals()
	sa := &fs[0]
	sa.Eval = &config.EvalPolicy{Dataset: "support-smoke", Gate: true}
	for i := range sa.Releases {
		if sa.Releases[i].Version == 3 {
			v := ev.Verdicts[1]
			sa.Releases[i].Gate = &api.Gate{Feature: sa.Name, Version: 3, Gated: true, Dataset: "support-smoke", Verdict: &v,
				Refusal: "the latest comparison of support-answer@v3 with v2 on dataset support-smoke v4 is a regression"}
		}
	}
	sa.CanaryAnalysis = &api.Canary{Feature: sa.Name, Live: true, Canary: 3, Production: 2, Weight: 10, OnRegression: config.CanaryRollback,
		Analysed: true, Began: clock.Add(-2 * time.Hour),
		Now: &canary.Decision{Outcome: canary.Continue, Reason: "90 canary calls in 2h0m0s, no significant regression so far"}}
	tr := api.Feature{Name: "triage", Labels: config.Labels{Production: 4},
		Releases: []api.Release{{Version: 4, ID: "triage@v4"}, {Version: 5, ID: "triage@v5"}},
		CanaryAnalysis: &api.Canary{Feature: "triage", Canary: 5, Production: 4, OnRegression: config.CanaryRollback, Analysed: true,
			Began: clock.Add(-12 * time.Minute), Decided: clock.Add(-4 * time.Minute), Action: "rolled_back",
			Decision: &canary.Decision{Outcome: canary.Regression, Metric: canary.ValidationRate,
				Reason: "validation_failure_rate 18.06% against production's 7.28% (always-valid p = 0.0047)"}}}
	withRollback(&tr)
	return append(fs, tr)
}

func TestGoldenEvalViews(t *testing.T) {
	keys := DefaultKeyMap()
	cases := []struct {
		name  string
		setup func(t *testing.T, a *App)
	}{
		{"evals", func(t *testing.T, a *App) {
			send(t, a, fixtureEvals())
			press(t, a, keys.Command)
			typeText(t, a, "evals")
			press(t, a, keys.Open)
			press(t, a, keys.Down) // the older, improved verdict first on screen
			press(t, a, keys.Up)   // back to the regression
		}},
		{"evals-empty", func(t *testing.T, a *App) {
			send(t, a, EvalsMsg{})
			press(t, a, keys.Command)
			typeText(t, a, "evaluations")
			press(t, a, keys.Open)
		}},
		{"overview-canary-analysis", func(t *testing.T, a *App) {
			send(t, a, FeaturesMsg(gatedFeatures()))
		}},
		{"releases-canary-gate", func(t *testing.T, a *App) {
			send(t, a, FeaturesMsg(gatedFeatures()))
			press(t, a, keys.Releases)
			press(t, a, keys.Down) // support-answer v3
		}},
		{"confirm-promote-gated", func(t *testing.T, a *App) {
			send(t, a, FeaturesMsg(gatedFeatures()))
			press(t, a, keys.Releases)
			press(t, a, keys.Down)
			press(t, a, keys.Promote)
			send(t, a, DiffMsg{Request: DiffRequest{Feature: "support-answer", A: 2, B: 3}, Diff: fixtureDiff()})
		}},
	}
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		for _, c := range cases {
			name := c.name + "-" + itoa(size.w) + "x" + itoa(size.h)
			t.Run(name, func(t *testing.T) {
				a := loaded(t, false, size.w, size.h)
				c.setup(t, a)
				got := a.View()
				checkScreen(t, got, size.w, size.h)
				golden(t, name, got)
			})
		}
	}
}

func TestEvalsViewCriticalFirstAndAnchored(t *testing.T) {
	a := loaded(t, false, 120, 40)
	k := a.Keys()
	send(t, a, fixtureEvals())
	press(t, a, k.Command)
	typeText(t, a, "evals")
	press(t, a, k.Open)
	if a.Current() != ViewEvals {
		t.Fatalf(":evals shows %v", a.Current())
	}
	v := a.View()
	// The newest verdict is selected, its failing critical case listed
	// before the other cases that broke.
	crit, other := strings.Index(v, "refund-policy"), strings.Index(v, "order-status-late")
	if !strings.Contains(v, "> support-answer") || crit < 0 || other < 0 || crit > other {
		t.Fatalf("critical case not first:\n%s", v)
	}
	if !strings.Contains(v, "critical cases failing: refund-policy") {
		t.Fatalf("no critical failures line:\n%s", v)
	}
	// The cursor stays on its verdict when a newer one arrives.
	press(t, a, k.Down)
	ev := fixtureEvals()
	newer := ev.Verdicts[0]
	newer.Index, newer.Feature = 1200, "classify"
	ev.Verdicts = append(ev.Verdicts, newer)
	send(t, a, ev)
	if v := a.View(); !strings.Contains(v, "> summarize") {
		t.Fatalf("cursor left summarize after a newer verdict arrived:\n%s", v)
	}
}

func TestGatedPromotionNeedsAReasonAndForces(t *testing.T) {
	a := loaded(t, false, 120, 40)
	k := a.Keys()
	send(t, a, FeaturesMsg(gatedFeatures()))
	toRelease(t, a, "support-answer@v3")
	press(t, a, k.Promote)
	v := a.View()
	for _, want := range []string{"gate      on support-smoke: REGRESSION vs v2, refused unless forced",
		"1 critical case(s) do not pass: refund-policy", "type a reason to force the promotion"} {
		if !strings.Contains(v, want) {
			t.Fatalf("gated dialog lacks %q:\n%s", want, v)
		}
	}
	press(t, a, k.NextField) // Cancel -> Confirm
	none[ActionRequest](t, press(t, a, k.Confirm))
	if a.dialog == nil {
		t.Fatal("a gated promotion was sent without a reason")
	}
	press(t, a, k.PrevField) // -> Cancel
	press(t, a, k.PrevField) // -> reason
	typeText(t, a, "hotfix")
	press(t, a, k.NextField)
	press(t, a, k.NextField)
	got := only[ActionRequest](t, press(t, a, k.Confirm))
	if !got.Force || got.CLI != "gantry release promote support-answer 3 --from 2 --force hotfix" {
		t.Fatalf("request %+v", got)
	}
	if m := got.LabelMove(); !m.Force || m.Check() != nil {
		t.Fatalf("label move %+v: %v", m, m.Check())
	}
	// A release the gate lets through is promoted as before, unforced.
	fs := gatedFeatures()
	fs[0].Releases[2].Gate.Refusal = ""
	fs[0].Releases[2].Gate.Verdict.Verdict.Verdict = compare.NoRegression
	send(t, a, FeaturesMsg(fs))
	press(t, a, k.Promote)
	press(t, a, k.NextField)
	if got := only[ActionRequest](t, press(t, a, k.Confirm)); got.Force || got.Reason != "" {
		t.Fatalf("promotion past an open gate: %+v", got)
	}
}
