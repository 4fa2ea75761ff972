package config

import (
	"errors"
	"fmt"
	"time"
)

// Label names: where a feature's traffic goes.
const (
	LabelProduction = "production"
	LabelCanary     = "canary"
)

// Label moves an operator asks for. Each has one meaning, defined here by
// PlanMove and used by the state machine, the admin API, the CLI and the
// console alike.
const (
	// MovePromote points production at a version; a canary of that same
	// version ends, since it is production now.
	MovePromote = "promote"
	// MoveCanary points the canary at a version other than production,
	// with 1 to 100 percent of the traffic.
	MoveCanary = "canary"
	// MoveAbort ends a live canary; production stays where it is.
	MoveAbort = "abort"
	// MoveRollback undoes the last rollout. With a live canary it ends the
	// canary and leaves production alone. Without one, production returns
	// to the version it pointed at before the last promote (or apply) that
	// moved it; each rollback undoes one more, like an undo stack, so a
	// second rollback never brings back the release the first one left.
	// With nothing left to undo it is refused, saying so.
	MoveRollback = "rollback"
)

// Actions in a label history that no operator asked for as a move: a
// feature placed by its creation or by a configuration file.
const (
	MoveCreate = "create"
	MoveApply  = "apply"
)

// MaxCanaryWeight is the largest share of traffic a canary can take, in
// percent.
const MaxCanaryWeight = 100

// Errors of PlanMove, for the callers that map them to a status.
var (
	// ErrMoveInvalid: the move is malformed or names a release that cannot
	// be moved to.
	ErrMoveInvalid = errors.New("invalid label move")
	// ErrMoveConflict: the labels are not where the move expects them,
	// or there is nothing to move.
	ErrMoveConflict = errors.New("label move conflicts with the labels as they are")
	// ErrMoveNotFound: the move names a release the feature does not have.
	ErrMoveNotFound = errors.New("release not found")
)

// LabelChange is one move of a feature's labels as its history keeps it:
// who moved which label from which version to which, when and why. From
// and To are release versions, 0 meaning none.
type LabelChange struct {
	Index  uint64    `json:"index"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Label  string    `json:"label"`
	From   int       `json:"from"`
	To     int       `json:"to"`
	Weight int       `json:"weight,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// LabelMove asks to move a feature's labels.
type LabelMove struct {
	Action  string // one of the Move* constants an operator asks for
	Version int    // promote and canary: the release to point at
	Weight  int    // canary: percent of traffic, 1..MaxCanaryWeight
	// From, when set, is where the label the move changes must point now
	// (0 for a canary that points nowhere), or the move is refused.
	From *int
}

// LabelStep is what a move does: the label it changes, from and to which
// version (To 0 ends a canary), the canary's weight after it, and the
// feature's labels after it.
type LabelStep struct {
	Action string
	Label  string
	From   int
	To     int
	Weight int
	Next   Labels
}

// Live reports whether a canary takes traffic.
func (l Labels) Live() bool { return l.Canary != 0 && l.CanaryWeight > 0 }

// PlanMove works out what move m does to feature f, given the history of
// its labels, oldest first. It changes nothing; the state machine applies
// the step it returns, and clients show it before they ask.
func PlanMove(f Feature, history []LabelChange, m LabelMove) (LabelStep, error) {
	l := f.Labels
	s := LabelStep{Action: m.Action}
	switch m.Action {
	case MovePromote:
		if m.Version == 0 {
			return s, fmt.Errorf("%w: promote needs a version", ErrMoveInvalid)
		}
		if m.Version == l.Production {
			return s, fmt.Errorf("%w: v%d is already production of %s", ErrMoveConflict, m.Version, f.Name)
		}
		s.Label, s.From, s.To = LabelProduction, l.Production, m.Version
		s.Next = l
		s.Next.Production = m.Version
		if l.Canary == m.Version {
			s.Next.Canary, s.Next.CanaryWeight = 0, 0
		}
	case MoveCanary:
		switch {
		case m.Version == 0:
			return s, fmt.Errorf("%w: a canary needs a version; %s ends one", ErrMoveInvalid, MoveAbort)
		case m.Weight < 1 || m.Weight > MaxCanaryWeight:
			return s, fmt.Errorf("%w: canary weight %d is outside 1..%d; %s ends a canary", ErrMoveInvalid, m.Weight, MaxCanaryWeight, MoveAbort)
		case m.Version == l.Production:
			return s, fmt.Errorf("%w: v%d is production of %s; a canary tries another release", ErrMoveConflict, m.Version, f.Name)
		}
		s.Label, s.From, s.To, s.Weight = LabelCanary, l.Canary, m.Version, m.Weight
		s.Next = l
		s.Next.Canary, s.Next.CanaryWeight = m.Version, m.Weight
	case MoveAbort:
		if !l.Live() {
			return s, fmt.Errorf("%w: %s has no live canary to end", ErrMoveConflict, f.Name)
		}
		s = endCanary(l, m.Action)
	case MoveRollback:
		if m.Version != 0 || m.Weight != 0 {
			return s, fmt.Errorf("%w: rollback takes no version or weight; %s moves production to a version", ErrMoveInvalid, MovePromote)
		}
		if l.Live() {
			s = endCanary(l, m.Action)
			break
		}
		to := undoTarget(history)
		if to == 0 || to == l.Production {
			return s, fmt.Errorf("%w: %s has no earlier production release to roll back to", ErrMoveConflict, f.Name)
		}
		s.Label, s.From, s.To = LabelProduction, l.Production, to
		s.Next = l
		s.Next.Production = to
		if l.Canary == to {
			s.Next.Canary, s.Next.CanaryWeight = 0, 0
		}
	default:
		return s, fmt.Errorf("%w: unknown label move %q (want %s, %s, %s or %s)", ErrMoveInvalid, m.Action, MovePromote, MoveCanary, MoveAbort, MoveRollback)
	}
	if s.To != 0 {
		if _, ok := f.Release(s.To); !ok {
			return s, fmt.Errorf("%w: %s", ErrMoveNotFound, ReleaseID(f.Name, s.To))
		}
	}
	if m.From != nil && *m.From != s.From {
		return s, fmt.Errorf("%w: %s of %s points at v%d now, not v%d; look again before moving it", ErrMoveConflict, s.Label, f.Name, s.From, *m.From)
	}
	return s, nil
}

func endCanary(l Labels, action string) LabelStep {
	next := l
	next.Canary, next.CanaryWeight = 0, 0
	return LabelStep{Action: action, Label: LabelCanary, From: l.Canary, To: 0, Next: next}
}

// undoTarget is where a rollback takes production: the history's
// production moves replayed as an undo stack, where each rollout pushes
// the version it left and each rollback pops one. 0 when the stack is
// empty.
func undoTarget(history []LabelChange) int {
	var stack []int
	for _, c := range history {
		if c.Label != LabelProduction {
			continue
		}
		if c.Action == MoveRollback {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if c.From != 0 && c.From != c.To {
			stack = append(stack, c.From)
		}
	}
	if len(stack) == 0 {
		return 0
	}
	return stack[len(stack)-1]
}
