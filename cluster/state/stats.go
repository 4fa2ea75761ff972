package state

import (
	"fmt"

	"gantry/cluster/command"
)

// commitStats adds an agent's batch of per-release counters. Like spend it
// is not audited: one batch per agent every few seconds would push
// configuration changes out of the audit log within hours.
func commitStats(tx *txn) error {
	var p command.Stats
	if err := tx.decode(&p); err != nil {
		return err
	}
	table, _, err := tx.next.Stats.Commit(p.Batch.Agent, p.Batch.Seq, p.Batch.Items, tx.next.hasRelease, tx.env.Time)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	tx.next.Stats = table
	return nil
}

// hasRelease reports whether the configuration has the release.
func (s *State) hasRelease(feature string, version int) bool {
	f, ok := s.Feature(feature)
	if !ok {
		return false
	}
	_, ok = f.Release(version)
	return ok
}
