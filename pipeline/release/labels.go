package release

import (
	"errors"
	"fmt"
	"time"

	"gantry/config"
)

// Label names.
const (
	Production = "production"
	Canary     = "canary"
)

// LabelMove is one change of a feature's label: the record the cluster
// replicates and the history operators read. From and To are release
// versions, 0 meaning none; Weight is the canary's traffic share after the
// move (canary moves only).
type LabelMove struct {
	Feature string    `json:"feature"`
	Label   string    `json:"label"`
	From    int       `json:"from"`
	To      int       `json:"to"`
	Weight  int       `json:"weight,omitempty"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"`
}

// Actor is who moves a label, when, and why; it is copied into each move.
type Actor struct {
	By     string
	At     time.Time
	Reason string
}

// Errors a caller can branch on.
var (
	// ErrConflict means a move was planned against labels that have since
	// changed; plan it again against the current feature.
	ErrConflict = errors.New("labels changed since the move was planned")
	// ErrNoop means the move would change nothing.
	ErrNoop = errors.New("nothing to change")
	// ErrNoHistory means there is no earlier production release to go back to.
	ErrNoHistory = errors.New("no earlier production release")
)

func (a Actor) move(f config.Feature, label string, from, to, weight int) LabelMove {
	return LabelMove{Feature: f.Name, Label: label, From: from, To: to, Weight: weight, By: a.By, At: a.At, Reason: a.Reason}
}

func hasVersion(f config.Feature, v int) bool {
	_, ok := f.Release(v)
	return ok
}

// Promote plans pointing production at version. Promoting the running canary
// also ends the canary, so all traffic moves at once.
func Promote(f config.Feature, version int, a Actor) ([]LabelMove, error) {
	if !hasVersion(f, version) {
		return nil, fmt.Errorf("promote %s: no release with version %d", f.Name, version)
	}
	if f.Labels.Production == version {
		return nil, fmt.Errorf("promote %s: v%d is already production: %w", f.Name, version, ErrNoop)
	}
	var moves []LabelMove
	if f.Labels.Canary == version {
		moves = append(moves, a.move(f, Canary, version, 0, 0))
	}
	return append(moves, a.move(f, Production, f.Labels.Production, version, 0)), nil
}

// Rollback plans pointing production back at the release it pointed at
// before its latest move, as history records it, and ends any canary.
func Rollback(f config.Feature, history []LabelMove, a Actor) ([]LabelMove, error) {
	prev := 0
	for i := len(history) - 1; i >= 0; i-- {
		m := history[i]
		if m.Feature == f.Name && m.Label == Production && m.To == f.Labels.Production {
			prev = m.From
			break
		}
	}
	if prev == 0 || !hasVersion(f, prev) {
		return nil, fmt.Errorf("rollback %s from v%d: %w", f.Name, f.Labels.Production, ErrNoHistory)
	}
	var moves []LabelMove
	if f.Labels.Canary != 0 {
		moves = append(moves, a.move(f, Canary, f.Labels.Canary, 0, 0))
	}
	return append(moves, a.move(f, Production, f.Labels.Production, prev, 0)), nil
}

// StartCanary plans sending weight percent of users (1..100) to version.
// Calling it again with a new weight changes the share; users already on
// the canary stay on it when the weight grows.
func StartCanary(f config.Feature, version, weight int, a Actor) ([]LabelMove, error) {
	switch {
	case !hasVersion(f, version):
		return nil, fmt.Errorf("canary %s: no release with version %d", f.Name, version)
	case version == f.Labels.Production:
		return nil, fmt.Errorf("canary %s: v%d is production; a canary is another release", f.Name, version)
	case weight < 1 || weight > 100:
		return nil, fmt.Errorf("canary %s: weight %d is outside 1..100", f.Name, weight)
	case f.Labels.Canary == version && f.Labels.CanaryWeight == weight:
		return nil, fmt.Errorf("canary %s: v%d already takes %d%%: %w", f.Name, version, weight, ErrNoop)
	}
	return []LabelMove{a.move(f, Canary, f.Labels.Canary, version, weight)}, nil
}

// Apply performs moves on a feature and returns the result; f itself is not
// changed. Every move must start from the label's current value (else
// ErrConflict) and end at an existing release, so replicas that apply the
// same moves in the same order reach the same labels.
func Apply(f config.Feature, moves ...LabelMove) (config.Feature, error) {
	l := f.Labels
	for i, m := range moves {
		if m.Feature != f.Name {
			return f, fmt.Errorf("move %d is for feature %q, not %q", i, m.Feature, f.Name)
		}
		if m.To != 0 && !hasVersion(f, m.To) {
			return f, fmt.Errorf("move %d: %s has no release with version %d", i, f.Name, m.To)
		}
		switch m.Label {
		case Production:
			if l.Production != m.From {
				return f, fmt.Errorf("move %d: production is v%d, the move starts from v%d: %w", i, l.Production, m.From, ErrConflict)
			}
			if m.To == 0 {
				return f, fmt.Errorf("move %d: production always points at a release", i)
			}
			if m.To == l.Canary {
				return f, fmt.Errorf("move %d: v%d is the canary; end it first", i, m.To)
			}
			l.Production = m.To
		case Canary:
			if l.Canary != m.From {
				return f, fmt.Errorf("move %d: canary is v%d, the move starts from v%d: %w", i, l.Canary, m.From, ErrConflict)
			}
			if m.To == 0 {
				l.Canary, l.CanaryWeight = 0, 0
				break
			}
			if m.To == l.Production {
				return f, fmt.Errorf("move %d: v%d is production", i, m.To)
			}
			if m.Weight < 1 || m.Weight > 100 {
				return f, fmt.Errorf("move %d: canary weight %d is outside 1..100", i, m.Weight)
			}
			l.Canary, l.CanaryWeight = m.To, m.Weight
		default:
			return f, fmt.Errorf("move %d: unknown label %q (want production or canary)", i, m.Label)
		}
	}
	f.Labels = l
	return f, nil
}

// History returns the moves of one feature's label, oldest first; an empty
// label means all labels.
func History(moves []LabelMove, feature, label string) []LabelMove {
	var out []LabelMove
	for _, m := range moves {
		if m.Feature == feature && (label == "" || m.Label == label) {
			out = append(out, m)
		}
	}
	return out
}
