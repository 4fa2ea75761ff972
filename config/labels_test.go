package config

import (
	"errors"
	"testing"
)

// moves applies a sequence of moves to a feature as the state machine
// does, keeping its history, and returns the step of each.
func moves(t *testing.T, f *Feature, history *[]LabelChange, ms ...LabelMove) []LabelStep {
	t.Helper()
	var out []LabelStep
	for _, m := range ms {
		s, err := PlanMove(*f, *history, m)
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		f.Labels = s.Next
		*history = append(*history, LabelChange{Action: m.Action, Label: s.Label, From: s.From, To: s.To, Weight: s.Weight})
		out = append(out, s)
	}
	return out
}

func threeReleases() Feature {
	return Feature{Name: "support-answer", Releases: []Release{{Version: 1}, {Version: 2}, {Version: 3}}, Labels: Labels{Production: 1}}
}

// The sequence that once promoted a canary: promote, rollback, canary,
// rollback. The second rollback must end the canary and leave production.
func TestRollbackDuringACanaryEndsTheCanary(t *testing.T) {
	f := threeReleases()
	h := []LabelChange{{Action: MoveCreate, Label: LabelProduction, To: 1}}
	from1 := 1
	steps := moves(t, &f, &h,
		LabelMove{Action: MovePromote, Version: 2, From: &from1},
		LabelMove{Action: MoveRollback},
		LabelMove{Action: MoveCanary, Version: 2, Weight: 25},
		LabelMove{Action: MoveRollback},
	)
	if s := steps[1]; s.Label != LabelProduction || s.From != 2 || s.To != 1 {
		t.Fatalf("first rollback %+v, want production v2 -> v1", s)
	}
	if s := steps[3]; s.Label != LabelCanary || s.From != 2 || s.To != 0 {
		t.Fatalf("rollback with a live canary %+v, want canary v2 -> none", s)
	}
	if f.Labels != (Labels{Production: 1}) {
		t.Fatalf("labels after the sequence %+v, want production v1 and no canary", f.Labels)
	}
}

// Rollbacks undo rollouts one at a time; a second rollback never brings
// back the release the first one took production away from.
func TestRollbackIsAnUndoStack(t *testing.T) {
	f := threeReleases()
	h := []LabelChange{{Action: MoveCreate, Label: LabelProduction, To: 1}}
	steps := moves(t, &f, &h,
		LabelMove{Action: MovePromote, Version: 2},
		LabelMove{Action: MovePromote, Version: 3},
		LabelMove{Action: MoveRollback},
		LabelMove{Action: MoveRollback},
	)
	if steps[2].To != 2 || steps[3].From != 2 || steps[3].To != 1 {
		t.Fatalf("rollbacks went %+v then %+v, want v3 -> v2 -> v1", steps[2], steps[3])
	}
	_, err := PlanMove(f, h, LabelMove{Action: MoveRollback})
	if !errors.Is(err, ErrMoveConflict) {
		t.Fatalf("a third rollback: %v, want a refusal saying there is nothing to undo", err)
	}
	// A promote after rollbacks is a new rollout to undo.
	moves(t, &f, &h, LabelMove{Action: MovePromote, Version: 3})
	if s := moves(t, &f, &h, LabelMove{Action: MoveRollback})[0]; s.From != 3 || s.To != 1 {
		t.Fatalf("rollback after a new promote %+v, want v3 -> v1", s)
	}
}

func TestAbortAndPromoteOfTheCanary(t *testing.T) {
	f := threeReleases()
	var h []LabelChange
	moves(t, &f, &h, LabelMove{Action: MoveCanary, Version: 3, Weight: 10})
	if s := moves(t, &f, &h, LabelMove{Action: MoveAbort})[0]; s.Label != LabelCanary || s.From != 3 || s.To != 0 || f.Labels.Production != 1 {
		t.Fatalf("abort %+v left %+v", s, f.Labels)
	}
	moves(t, &f, &h, LabelMove{Action: MoveCanary, Version: 3, Weight: 50}, LabelMove{Action: MovePromote, Version: 3})
	if f.Labels != (Labels{Production: 3}) {
		t.Fatalf("promoting the canary's release left %+v, want it production with no canary", f.Labels)
	}
}

func TestPlanMoveRefusals(t *testing.T) {
	f := threeReleases()
	f.Labels = Labels{Production: 1, Canary: 2, CanaryWeight: 10}
	two, five := 2, 5
	cases := []struct {
		name string
		m    LabelMove
		want error
	}{
		{"promote without a version", LabelMove{Action: MovePromote}, ErrMoveInvalid},
		{"promote production", LabelMove{Action: MovePromote, Version: 1}, ErrMoveConflict},
		{"promote a missing release", LabelMove{Action: MovePromote, Version: 9}, ErrMoveNotFound},
		{"promote from a stale version", LabelMove{Action: MovePromote, Version: 3, From: &two}, ErrMoveConflict},
		{"canary of weight 0", LabelMove{Action: MoveCanary, Version: 3}, ErrMoveInvalid},
		{"canary of weight 101", LabelMove{Action: MoveCanary, Version: 3, Weight: 101}, ErrMoveInvalid},
		{"canary of production", LabelMove{Action: MoveCanary, Version: 1, Weight: 5}, ErrMoveConflict},
		{"canary without a version", LabelMove{Action: MoveCanary, Weight: 5}, ErrMoveInvalid},
		{"abort from another canary", LabelMove{Action: MoveAbort, From: &five}, ErrMoveConflict},
		{"rollback to a version", LabelMove{Action: MoveRollback, Version: 1}, ErrMoveInvalid},
		{"unknown move", LabelMove{Action: "delete"}, ErrMoveInvalid},
	}
	for _, c := range cases {
		if _, err := PlanMove(f, nil, c.m); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	f.Labels = Labels{Production: 1}
	if _, err := PlanMove(f, nil, LabelMove{Action: MoveAbort}); !errors.Is(err, ErrMoveConflict) {
		t.Errorf("abort without a canary: %v, want a conflict", err)
	}
	if _, err := PlanMove(f, nil, LabelMove{Action: MoveRollback}); !errors.Is(err, ErrMoveConflict) {
		t.Errorf("rollback without history: %v, want a conflict", err)
	}
}
