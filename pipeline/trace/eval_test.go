package trace

import (
	"errors"
	"strings"
	"testing"
)

func TestStoreEvaluations(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Limits{})
	prod, ev := mk(1), mk(2)
	ev.EvalRun, ev.EvalCase = "run-1", "case-a"
	s.Add(prod)
	s.Add(ev)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	one := 1.0
	results := []Evaluation{
		{Name: "icontains", ScoreLabel: EvalPass, Explanation: `contains "order"`},
		{Name: "llm-rubric", ScoreValue: &one, ScoreLabel: EvalPass},
	}
	if err := s.Evaluate(ev.ID, results); err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	if err := s.Evaluate(prod.ID, results); !errors.Is(err, ErrNotEvaluation) {
		t.Fatalf("results on production traffic: got %v, want ErrNotEvaluation", err)
	}
	if err := s.Evaluate("ffff", results); !errors.Is(err, ErrNotFound) {
		t.Fatalf("results on an unknown trace: got %v, want ErrNotFound", err)
	}
	bad := []Evaluation{{Name: "equals", ScoreLabel: "maybe"}}
	if err := s.Evaluate(ev.ID, bad); err == nil || !strings.Contains(err.Error(), "score label") {
		t.Fatalf("bad label: got %v", err)
	}
	many := make([]Evaluation, MaxEvaluations-1)
	for i := range many {
		many[i] = Evaluation{Name: "equals", ScoreLabel: EvalFail}
	}
	if err := s.Evaluate(ev.ID, many); err == nil {
		t.Fatalf("%d results accepted on a trace holding 2, more than %d", len(many), MaxEvaluations)
	}
	closeStore(t, s)

	// The results survive a restart, attached to their trace.
	s = open(t, dir, Limits{})
	got, ok := s.Get(ev.ID)
	if !ok {
		t.Fatal("evaluation trace lost on reopen")
	}
	if len(got.Evaluations) != 2 || got.Evaluations[1].Name != "llm-rubric" || *got.Evaluations[1].ScoreValue != 1 || got.Evaluations[0].Time.IsZero() {
		t.Fatalf("evaluations after reopen: %+v", got.Evaluations)
	}
	if sum := got.Summary(); sum.EvalRun != "run-1" {
		t.Fatalf("summary eval run %q, want run-1", sum.EvalRun)
	}
}

func TestTraceEvaluation(t *testing.T) {
	cases := []struct {
		run, label string
		want       bool
	}{{"", "production", false}, {"", "canary", false}, {"run-1", "production", true}, {"", LabelPinned, true}}
	for _, tc := range cases {
		tr := &Trace{EvalRun: tc.run, Label: tc.label}
		if got := tr.Evaluation(); got != tc.want {
			t.Fatalf("run %q label %q: evaluation %v, want %v", tc.run, tc.label, got, tc.want)
		}
	}
}
