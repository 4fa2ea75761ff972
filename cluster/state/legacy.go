package state

import (
	"fmt"

	"gantry/config"
)

// legacyPlanMove is what a label move of payload version 1 or 2 did, kept
// so a log written then replays to the state every agent computed at the
// time. Rollback moved production even while a canary was live, to the
// release production pointed at before the move that brought it to its
// current version (or to the version the command named), and a canary of
// version 0 and weight 0 removed the canary. New moves follow
// config.PlanMove.
func legacyPlanMove(f config.Feature, history []config.LabelChange, m config.LabelMove) (config.LabelStep, error) {
	l := f.Labels
	s := config.LabelStep{Action: m.Action, Next: l}
	switch m.Action {
	case config.MovePromote:
		if m.Version == 0 {
			return s, fmt.Errorf("%w: promote needs a version", config.ErrMoveInvalid)
		}
		s.Label, s.From, s.To = config.LabelProduction, l.Production, m.Version
	case config.MoveRollback:
		to := m.Version
		if to == 0 {
			for i := len(history) - 1; i >= 0; i-- {
				c := history[i]
				if c.Label == config.LabelProduction && c.To == l.Production && c.From != 0 && c.From != l.Production {
					to = c.From
					break
				}
			}
			if to == 0 {
				return s, fmt.Errorf("%w: %s has no earlier production release to roll back to", config.ErrMoveConflict, f.Name)
			}
		}
		s.Label, s.From, s.To = config.LabelProduction, l.Production, to
	case config.MoveCanary:
		switch {
		case m.Version == 0 && m.Weight != 0:
			return s, fmt.Errorf("%w: removing the canary takes weight 0", config.ErrMoveInvalid)
		case m.Version != 0 && (m.Weight < 1 || m.Weight > 100):
			return s, fmt.Errorf("%w: canary weight %d is outside 1..100", config.ErrMoveInvalid, m.Weight)
		case m.Version != 0 && m.Version == l.Production:
			return s, fmt.Errorf("%w: v%d is already production", config.ErrMoveConflict, m.Version)
		}
		s.Label, s.From, s.To, s.Weight = config.LabelCanary, l.Canary, m.Version, m.Weight
		s.Next.Canary, s.Next.CanaryWeight = m.Version, m.Weight
		return legacyFrom(f, s, m)
	default:
		return s, fmt.Errorf("%w: unknown label action %q", config.ErrMoveInvalid, m.Action)
	}
	s.Next.Production = s.To
	if l.Canary == s.To {
		s.Next.Canary, s.Next.CanaryWeight = 0, 0
	}
	return legacyFrom(f, s, m)
}

func legacyFrom(f config.Feature, s config.LabelStep, m config.LabelMove) (config.LabelStep, error) {
	if s.To != 0 {
		if _, ok := f.Release(s.To); !ok {
			return s, fmt.Errorf("%w: %s", config.ErrMoveNotFound, config.ReleaseID(f.Name, s.To))
		}
	}
	if m.From != nil && *m.From != s.From {
		return s, fmt.Errorf("%w: %s of %s points at v%d now, not v%d; look again before moving it", config.ErrMoveConflict, s.Label, f.Name, s.From, *m.From)
	}
	return s, nil
}
