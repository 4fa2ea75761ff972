package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"gantry/cluster/command"
)

func logEntry(t *testing.T, index uint64, typ command.Type, payload any, id string, skippable bool) *raft.Log {
	t.Helper()
	e, err := command.New(typ, payload)
	if err != nil {
		t.Fatal(err)
	}
	e.RequestID, e.Time, e.Skippable = id, time.Unix(100, 0).UTC(), skippable
	data, err := command.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
}

func TestFSMHaltsOnAnUnknownCommand(t *testing.T) {
	tests := []struct {
		name     string
		entry    func(t *testing.T) *raft.Log
		wantHalt bool
	}{
		{"unknown type", func(t *testing.T) *raft.Log {
			return logEntry(t, 2, "put_widget", map[string]string{"name": "d"}, "u", false)
		}, true},
		{"unknown format byte", func(t *testing.T) *raft.Log {
			return &raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{7, '{', '}'}}
		}, true},
		{"unknown skippable type", func(t *testing.T) *raft.Log {
			return logEntry(t, 2, "put_widget", map[string]string{"name": "d"}, "u", true)
		}, false},
		{"invalid payload", func(t *testing.T) *raft.Log {
			return logEntry(t, 2, command.PutModel, []int{1}, "u", false)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFSM(discardLogger())
			if r := f.Apply(logEntry(t, 1, command.ApplyConfig, command.Config{Config: seedConfig()}, "seed", false)).(fsmResponse); r.err != nil {
				t.Fatal(r.err)
			}
			before := f.state.Load()
			f.Apply(tt.entry(t))
			if got := f.halted.Load() != nil; got != tt.wantHalt {
				t.Fatalf("halted = %v, want %v", got, tt.wantHalt)
			}
			if f.state.Load() != before {
				t.Fatal("state changed")
			}
			r := f.Apply(logEntry(t, 3, command.CreateRelease, newRelease("later"), "later", false)).(fsmResponse)
			if tt.wantHalt {
				if !errors.Is(r.err, ErrHalted) || f.state.Load() != before {
					t.Fatalf("after halt: err %v, state changed %v", r.err, f.state.Load() != before)
				}
				return
			}
			if r.err != nil || r.result.Version != 2 {
				t.Fatalf("after a harmless entry: %+v, %v", r.result, r.err)
			}
		})
	}
}

func TestFSMIgnoresNonCommandEntries(t *testing.T) {
	f := newFSM(discardLogger())
	before := f.state.Load()
	if r := f.Apply(&raft.Log{Index: 1, Type: raft.LogNoop}); r != nil {
		t.Fatalf("response %v", r)
	}
	if f.state.Load() != before || f.state.Load().Index != 0 {
		t.Fatal("a no-op entry changed the state")
	}
}
