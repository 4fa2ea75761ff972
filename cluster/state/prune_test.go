package state

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/config"
)

// TestRevokedKeysArePrunedAndStayGone: a key revoked before the cutoff
// leaves the state, its hash stays as a tombstone, and neither the API nor
// a file that still declares it brings it back; a key revoked after the
// cutoff and a live key stay.
func TestRevokedKeysArePrunedAndStayGone(t *testing.T) {
	old, recent, live := hashOf("gk_old-key-000000001"), hashOf("gk_recent-key-0000001"), hashOf("gk_live-key-00000001")
	file := config.Config{
		Providers: []config.Provider{{Name: "sim", Kind: config.KindSim}},
		Keys:      []config.Key{{Name: "old", Hash: old}, {Name: "recent", Hash: recent}, {Name: "live", Hash: live}},
	}
	s, _ := mustApply(t, New(), 1, mk(t, command.ApplyConfig, command.Config{Config: file}, "seed"))
	s, _ = mustApply(t, s, 2, mk(t, command.RevokeKey, command.Name{Name: "old"}, "revoke-old"))
	later := mk(t, command.RevokeKey, command.Name{Name: "recent"}, "revoke-recent")
	later.Time = t0.Add(48 * time.Hour)
	s, _ = mustApply(t, s, 3, later)

	prune := mk(t, command.PruneKeys, command.Prune{RevokedBefore: t0.Add(24 * time.Hour)}, "prune")
	prune.Time = t0.Add(72 * time.Hour)
	s, _ = mustApply(t, s, 4, prune)
	names := func(s *State) []string {
		var out []string
		for _, k := range s.Config.Keys {
			out = append(out, k.Name)
		}
		return out
	}
	if got := names(s); !slices.Equal(got, []string{"recent", "live"}) {
		t.Fatalf("keys after the prune: %v, want recent and live", got)
	}
	if _, ok := s.KeyTombstones[old]; !ok || len(s.KeyRevoked) != 1 {
		t.Fatalf("tombstones %v revoked %v", s.KeyTombstones, s.KeyRevoked)
	}
	back := mk(t, command.PutKey, command.Key{Key: config.Key{Name: "old-again", Hash: old}}, "put-old")
	if _, _, err := s.Apply(5, back); !errors.Is(err, ErrInvalid) {
		t.Fatalf("putting the pruned secret again: got %v, want it refused", err)
	}
	again, _ := mustApply(t, s, 6, mk(t, command.ApplyConfig, command.Config{Config: file}, "reload"))
	if got := names(again); slices.Contains(got, "old") {
		t.Fatalf("a file still declaring the pruned key brought it back: %v", got)
	}
	if i := slices.IndexFunc(again.Config.Keys, func(k config.Key) bool { return k.Name == "recent" }); i < 0 || !again.Config.Keys[i].Revoked {
		t.Fatalf("the recently revoked key: %+v", again.Config.Keys)
	}
}

// TestPruneAfterARestoreAgrees: a replica that restored a snapshot between
// the revoke and the prune prunes the same keys at the same time as one
// that applied every command, and keeps the same tombstones.
func TestPruneAfterARestoreAgrees(t *testing.T) {
	old := hashOf("gk_old-key-000000001")
	file := config.Config{
		Providers: []config.Provider{{Name: "sim", Kind: config.KindSim}},
		Keys:      []config.Key{{Name: "old", Hash: old}},
	}
	s, _ := mustApply(t, New(), 1, mk(t, command.ApplyConfig, command.Config{Config: file}, "seed"))
	s, _ = mustApply(t, s, 2, mk(t, command.RevokeKey, command.Name{Name: "old"}, "revoke-old"))
	steps := []command.Envelope{
		mk(t, command.PruneKeys, command.Prune{RevokedBefore: t0.Add(-time.Hour)}, "prune-early"),
		mk(t, command.PruneKeys, command.Prune{RevokedBefore: t0.Add(time.Hour)}, "prune-due"),
		mk(t, command.PutKey, command.Key{Key: config.Key{Name: "old-again", Hash: old}}, "put-old"),
	}
	live, restored := s, roundTrip(t, s)
	for i, e := range steps {
		index := uint64(3 + i)
		nl, _, errLive := live.Apply(index, e)
		nr, _, errRestored := restored.Apply(index, e)
		if (errLive == nil) != (errRestored == nil) || nl.Hash() != nr.Hash() {
			t.Fatalf("%s: the live replica (%v) and the restored one (%v) disagree", e.RequestID, errLive, errRestored)
		}
		live, restored = nl, roundTrip(t, nr)
	}
	if len(live.Config.Keys) != 0 || len(restored.KeyTombstones) != 1 {
		t.Fatalf("keys %v, tombstones %v: want the revoked key pruned and its hash kept", live.Config.Keys, restored.KeyTombstones)
	}
}

// TestSnapshotHoldsEveryReplicatedField: every exported field of State is
// written to a snapshot under the same name, so a replica restored from
// one applies later commands as the others do and hashes the same.
func TestSnapshotHoldsEveryReplicatedField(t *testing.T) {
	written := map[string]bool{}
	wt := reflect.TypeFor[wire]()
	for i := range wt.NumField() {
		written[wt.Field(i).Tag.Get("json")] = true
	}
	st := reflect.TypeFor[State]()
	for i := range st.NumField() {
		f := st.Field(i)
		if f.IsExported() && !written[f.Tag.Get("json")] {
			t.Errorf("State.%s (json %q) is not in the snapshot", f.Name, f.Tag.Get("json"))
		}
	}
}
