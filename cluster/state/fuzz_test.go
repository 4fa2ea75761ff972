package state

import (
	"gantry/eval/sketch"

	"bytes"
	"strings"
	"testing"

	"gantry/cluster/command"
	"gantry/cluster/stats"
	"gantry/config"
)

// fuzzSeeds are log entries of every kind of command, valid and hostile.
func fuzzSeeds(f *testing.F) [][]byte {
	var out [][]byte
	add := func(e command.Envelope) {
		b, err := command.Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	for i, c := range []struct {
		typ     command.Type
		payload any
	}{
		{command.PutProvider, command.Provider{Provider: config.Provider{Name: "openai", Kind: config.KindOpenAI, APIKeyEnv: "OPENAI_API_KEY"}}},
		{command.PutModel, command.Model{Model: config.Model{Name: "m2", Provider: "sim"}}},
		{command.PutRoute, command.Route{Route: config.Route{Name: "r2", Targets: []config.Target{{Model: "m1", Weight: 1}}}}},
		{command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}},
		{command.MoveLabel, command.Label{Feature: "support", Action: config.MoveCanary, Version: 1, Weight: 5}},
		{command.PutKey, command.Key{Key: config.Key{Name: "k", Hash: hashOf("k")}}},
		{command.PutToken, command.TokenPayload{Token: command.Token{Name: "t", Hash: hashOf("t"), Role: config.RoleViewer}}},
		{command.PutMember, command.Member{ID: "n1", RaftAddr: "127.0.0.1:7401", HTTPAddr: "http://127.0.0.1:7400"}},
		{command.PutObject, command.Object{Kind: "budgets", Object: []byte(`{"name":"b","scope":"global","period":"day","limit_usd":5}`)}},
		{command.GrantSpend, command.Grant{Budget: "b", Agent: "n1", Amount: 1}},
		{command.CommitSpend, map[string]any{"batch": map[string]any{"agent": "n1", "seq": 1, "items": []any{map[string]any{"budget": "b", "amount": 0.5}}}}},
		{command.CommitStats, command.Stats{Batch: stats.Batch{Agent: "n1", Seq: 1, Items: []stats.Item{{Feature: "support", Version: 1,
			Counters: stats.Counters{Requests: 3}, Latency: sketch.Sketch{Bins: []sketch.Bin{{Index: sketch.MinIndex, Count: 1}, {Index: sketch.MaxIndex, Count: 2}}}}}}}},
		{command.DeleteRoute, command.Name{Name: "r1"}},
	} {
		e := mk(f, c.typ, c.payload, "seed"+string(rune('a'+i)))
		add(e)
	}
	add(rawCommand(command.CommitStats, "h", `{"batch":{"agent":"x","seq":1,"items":[{"feature":"support","version":1,"requests":2,"latency":{"bins":[[-2000000000,1],[2000000000,1]]}}]}}`))
	add(rawCommand("future_command", "f", `{}`))
	return out
}

// FuzzApplyCommand decodes arbitrary log entries and applies those that
// decode to a state holding a feature. Nothing may panic (Apply turns a
// handler's panic into an "internal error", which is a bug here), a
// refused command leaves the state as it was, and an applied one leaves a
// state every reader can read, encode and decode.
func FuzzApplyCommand(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		env, err := command.Decode(entry)
		if err != nil {
			return
		}
		s := seeded(t)
		next, _, err := s.Apply(2, env)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("a handler panicked: %v", err)
			}
			if next != s {
				t.Fatal("a refused command changed the state")
			}
			return
		}
		if err := next.Stats.Check(); err != nil {
			t.Fatalf("an applied command left stats its readers cannot trust: %v", err)
		}
		if err := next.Spend.Check(); err != nil {
			t.Fatalf("an applied command left a spend ledger its readers cannot trust: %v", err)
		}
		if n := readEverything(t, next); n > 256<<20 {
			t.Fatalf("reading the state allocated %d bytes", n)
		}
	})
}

// FuzzDecodeSnapshot decodes arbitrary snapshots. What decodes must be
// readable by every reader, and encode to a snapshot that decodes to the
// same state.
func FuzzDecodeSnapshot(f *testing.F) {
	s := seeded(f)
	for _, e := range fuzzSeeds(f) {
		if env, err := command.Decode(e); err == nil {
			if next, _, err := s.Apply(s.Index+1, env); err == nil {
				s = next
			}
		}
	}
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":1,"index":1,"config":{},"config_index":0,"spend":{},"stats":{"releases":{"a@v1":{"feature":"a","version":1,"requests":1,"latency":{"bins":[[-2000000000,1],[2000000000,1]]},"updated":"2026-01-01T00:00:00Z"}}},"audit_seq":0,"request_seq":0}`))
	f.Add([]byte(`{"format":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		if n := readEverything(t, st); n > 256<<20 {
			t.Fatalf("reading the state allocated %d bytes", n)
		}
		var a, b bytes.Buffer
		if err := st.Encode(&a); err != nil {
			t.Fatal(err)
		}
		back, err := Decode(bytes.NewReader(a.Bytes()))
		if err != nil {
			t.Fatalf("a decoded state does not decode after encoding: %v", err)
		}
		if err := back.Encode(&b); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("encode, decode, encode is not stable: %v", err)
		}
	})
}
