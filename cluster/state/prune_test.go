package state

import (
	"errors"
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
