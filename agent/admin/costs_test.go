package admin

import (
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/eval/run"
)

// The cost of a passing case comes from the latest run of each release in
// the window; older runs and runs before the window do not count.
func TestPassingCasesUseTheLatestRunOfEachRelease(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	rec := func(index uint64, release, passed int, cost float64, at time.Time) state.RunRecord {
		return state.RunRecord{Run: command.Run{Summary: run.Summary{Feature: "triage", Release: release, Passed: passed, CostUSD: cost}}, Index: index, Time: at}
	}
	runs := map[string][]state.RunRecord{"triage": {
		rec(1, 1, 10, 0.10, now.Add(-30*time.Hour)), // before the window
		rec(2, 1, 8, 0.08, now.Add(-2*time.Hour)),
		rec(3, 2, 5, 0.50, now.Add(-3*time.Hour)),
		rec(4, 1, 9, 0.12, now.Add(-time.Hour)), // the latest of v1
	}}
	byRelease := passingByGroup(runs, "release", now.Add(-24*time.Hour))
	if p := byRelease["triage@v1"]; p.passed != 9 || p.cost != 0.12 {
		t.Fatalf("v1 %+v, want the latest run's 9 passing cases for 0.12", p)
	}
	if p := byRelease["triage@v2"]; p.passed != 5 || p.cost != 0.50 {
		t.Fatalf("v2 %+v", p)
	}
	byFeature := passingByGroup(runs, "feature", now.Add(-24*time.Hour))
	if p := byFeature["triage"]; p.passed != 14 || p.cost < 0.6199 || p.cost > 0.6201 {
		t.Fatalf("feature %+v, want both releases' latest runs", p)
	}
	if len(passingByGroup(runs, "release", now.Add(-10*time.Minute))) != 0 {
		t.Fatal("runs before the window counted")
	}
}
