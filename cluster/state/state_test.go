package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/config"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// mk builds an envelope as the state machine sees it.
func mk(t testing.TB, typ command.Type, payload any, id string) command.Envelope {
	t.Helper()
	e, err := command.New(typ, payload)
	if err != nil {
		t.Fatalf("build %s: %v", typ, err)
	}
	e.RequestID = id
	e.Actor = "user:ops"
	e.Time = t0
	return e
}

func mustApply(t testing.TB, s *State, index uint64, e command.Envelope) (*State, Result) {
	t.Helper()
	next, res, err := s.Apply(index, e)
	if err != nil {
		t.Fatalf("apply %s: %v", e.Type, err)
	}
	return next, res
}

func hashOf(s string) string { return config.HashKey(s) }

func release(route string) config.Release {
	return config.Release{System: "Be brief.", Template: []config.Message{{Role: "user", Content: "{{.q}}"}}, Route: route}
}

// seeded is a state with a provider, a model, a route and a feature.
// roundTrip is s written to a snapshot and read back.
func roundTrip(t *testing.T, s *State) *State {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func seeded(t testing.TB) *State {
	t.Helper()
	cfg := config.Config{
		Providers: []config.Provider{{Name: "sim", Kind: config.KindSim}},
		Models:    []config.Model{{Name: "m1", Provider: "sim", Price: config.Price{Input: 1, Output: 2}}},
		Routes:    []config.Route{{Name: "r1", Targets: []config.Target{{Model: "m1", Weight: 1}}}},
		Features: []config.Feature{{Name: "support", Releases: []config.Release{func() config.Release {
			r := release("r1")
			r.Version = 1
			return r
		}()}, Labels: config.Labels{Production: 1}}},
	}
	s, _ := mustApply(t, New(), 1, mk(t, command.ApplyConfig, command.Config{Config: cfg}, "seed"))
	return s
}

func TestApplyEveryCommand(t *testing.T) {
	type step struct {
		name    string
		typ     command.Type
		payload any
		wantErr error
		check   func(t *testing.T, s *State, r Result)
	}
	steps := []step{
		{name: "put provider", typ: command.PutProvider, payload: command.Provider{Provider: config.Provider{Name: "openai", Kind: config.KindOpenAI, BaseURL: "https://api.example.com/v1", APIKeyEnv: "OPENAI_API_KEY"}},
			check: func(t *testing.T, s *State, _ Result) {
				if got := len(s.Config.Providers); got != 2 {
					t.Fatalf("providers = %d, want 2", got)
				}
			}},
		{name: "put model of unknown provider", typ: command.PutModel, payload: command.Model{Model: config.Model{Name: "m2", Provider: "nope"}}, wantErr: ErrInvalid},
		{name: "put model", typ: command.PutModel, payload: command.Model{Model: config.Model{Name: "gpt", Provider: "openai", Price: config.Price{Input: 2, Output: 8}}},
			check: func(t *testing.T, s *State, _ Result) {
				if got := s.Config.Models[1].Price.Output; got != 8 {
					t.Fatalf("price = %v, want 8", got)
				}
			}},
		{name: "update model", typ: command.PutModel, payload: command.Model{Model: config.Model{Name: "gpt", Provider: "openai", Price: config.Price{Input: 2, Output: 9}}},
			check: func(t *testing.T, s *State, _ Result) {
				if got, want := len(s.Config.Models), 2; got != want {
					t.Fatalf("models = %d, want %d", got, want)
				}
				if got := s.Config.Models[1].Price.Output; got != 9 {
					t.Fatalf("price = %v, want 9", got)
				}
			}},
		{name: "put route", typ: command.PutRoute, payload: command.Route{Route: config.Route{Name: "r2", Targets: []config.Target{{Model: "gpt", Weight: 1}}, Fallbacks: []string{"m1"}}},
			check: func(t *testing.T, s *State, _ Result) {
				if got := s.Config.Routes[1].Fallbacks[0]; got != "m1" {
					t.Fatalf("fallback = %q", got)
				}
			}},
		{name: "delete provider in use", typ: command.DeleteProvider, payload: command.Name{Name: "openai"}, wantErr: ErrInvalid},
		{name: "delete unknown route", typ: command.DeleteRoute, payload: command.Name{Name: "nope"}, wantErr: ErrNotFound},
		{name: "create release", typ: command.CreateRelease, payload: command.Release{Feature: "support", Release: release("r2")},
			check: func(t *testing.T, s *State, r Result) {
				f, _ := s.Feature("support")
				if r.Version != 2 || len(f.Releases) != 2 {
					t.Fatalf("version %d, releases %d; want 2, 2", r.Version, len(f.Releases))
				}
				if r.Hash != f.Releases[1].Hash() {
					t.Fatalf("result hash %s, release hash %s", r.Hash, f.Releases[1].Hash())
				}
			}},
		{name: "create release with a taken version", typ: command.CreateRelease, payload: command.Release{Feature: "support", Release: func() config.Release { r := release("r1"); r.Version = 2; return r }()}, wantErr: ErrConflict},
		{name: "create release on unknown route", typ: command.CreateRelease, payload: command.Release{Feature: "support", Release: release("nope")}, wantErr: ErrInvalid},
		{name: "create release of unknown feature", typ: command.CreateRelease, payload: command.Release{Feature: "nope", Release: release("r1")}, wantErr: ErrNotFound},
		{name: "canary", typ: command.MoveLabel, payload: command.Label{Feature: "support", Action: config.MoveCanary, Version: 2, Weight: 10, Reason: "try r2"},
			check: func(t *testing.T, s *State, _ Result) {
				f, _ := s.Feature("support")
				if f.Labels != (config.Labels{Production: 1, Canary: 2, CanaryWeight: 10}) {
					t.Fatalf("labels = %+v", f.Labels)
				}
			}},
		{name: "canary weight out of range", typ: command.MoveLabel, payload: command.Label{Feature: "support", Action: config.MoveCanary, Version: 2, Weight: 101}, wantErr: ErrInvalid},
		{name: "promote", typ: command.MoveLabel, payload: command.Label{Feature: "support", Action: config.MovePromote, Version: 2, Reason: "canary healthy"},
			check: func(t *testing.T, s *State, _ Result) {
				f, _ := s.Feature("support")
				if f.Labels != (config.Labels{Production: 2}) {
					t.Fatalf("labels = %+v, want production 2 and no canary", f.Labels)
				}
			}},
		{name: "promote unknown version", typ: command.MoveLabel, payload: command.Label{Feature: "support", Action: config.MovePromote, Version: 9}, wantErr: ErrNotFound},
		{name: "rollback to previous", typ: command.MoveLabel, payload: command.Label{Feature: "support", Action: config.MoveRollback, Reason: "errors up"},
			check: func(t *testing.T, s *State, _ Result) {
				f, _ := s.Feature("support")
				if f.Labels.Production != 1 {
					t.Fatalf("production = %d, want 1", f.Labels.Production)
				}
				h := s.LabelHistory["support"]
				last := h[len(h)-1]
				want := LabelChange{Index: last.Index, Time: t0, Actor: "user:ops", Action: config.MoveRollback, Label: "production", From: 2, To: 1, Reason: "errors up"}
				if last != want {
					t.Fatalf("last label change = %+v, want %+v", last, want)
				}
			}},
		{name: "unknown label action", typ: command.MoveLabel, payload: command.Label{Feature: "support", Action: "launch", Version: 1}, wantErr: ErrInvalid},
		{name: "put feature", typ: command.PutFeature, payload: command.Feature{Feature: config.Feature{Name: "summary", Releases: []config.Release{func() config.Release { r := release("r1"); r.Version = 1; return r }()}, Labels: config.Labels{Production: 1}}},
			check: func(t *testing.T, s *State, _ Result) {
				if _, ok := s.Feature("summary"); !ok {
					t.Fatal("feature summary missing")
				}
			}},
		{name: "update feature description", typ: command.PutFeature, payload: command.Feature{Feature: config.Feature{Name: "summary", Description: "Summaries", MaxTokens: 300}},
			check: func(t *testing.T, s *State, _ Result) {
				f, _ := s.Feature("summary")
				if f.Description != "Summaries" || f.MaxTokens != 300 || len(f.Releases) != 1 {
					t.Fatalf("feature = %+v", f)
				}
			}},
		{name: "rewrite releases of existing feature", typ: command.PutFeature, payload: command.Feature{Feature: config.Feature{Name: "summary", Releases: []config.Release{release("r2")}}}, wantErr: ErrConflict},
		{name: "put key", typ: command.PutKey, payload: command.Key{Key: config.Key{Name: "team-a", Hash: hashOf("gk_x"), Features: []string{"support"}}},
			check: func(t *testing.T, s *State, _ Result) {
				if got := s.Config.Keys[0].Hash; got != hashOf("gk_x") {
					t.Fatalf("hash = %q", got)
				}
			}},
		{name: "put key without a hash", typ: command.PutKey, payload: command.Key{Key: config.Key{Name: "raw", Hash: "gk_plaintext"}}, wantErr: ErrInvalid},
		{name: "revoke key", typ: command.RevokeKey, payload: command.Name{Name: "team-a"},
			check: func(t *testing.T, s *State, _ Result) {
				if !s.Config.Keys[0].Revoked {
					t.Fatal("key not revoked")
				}
			}},
		{name: "put token", typ: command.PutToken, payload: command.TokenPayload{Token: command.Token{Name: "alice", Hash: hashOf("tok"), Role: config.RoleOperator}},
			check: func(t *testing.T, s *State, _ Result) {
				tok, ok := s.Token(hashOf("tok"))
				if !ok || tok.Role != config.RoleOperator {
					t.Fatalf("token = %+v, %v", tok, ok)
				}
			}},
		{name: "put token with unknown role", typ: command.PutToken, payload: command.TokenPayload{Token: command.Token{Name: "bob", Hash: hashOf("b"), Role: "root"}}, wantErr: ErrInvalid},
		{name: "revoke token", typ: command.RevokeToken, payload: command.Name{Name: "alice"},
			check: func(t *testing.T, s *State, _ Result) {
				if tok, _ := s.Token(hashOf("tok")); !tok.Revoked {
					t.Fatal("token not revoked")
				}
			}},
		{name: "put budget object", typ: command.PutObject, payload: command.Object{Kind: "budgets", Object: json.RawMessage(`{"name":"daily","scope":"global","period":"day","limit_usd":50}`)},
			check: func(t *testing.T, s *State, _ Result) {
				if len(s.Config.Budgets) != 1 || s.Config.Budgets[0].LimitUSD != 50 {
					t.Fatalf("budgets = %+v", s.Config.Budgets)
				}
			}},
		{name: "put invalid budget object", typ: command.PutObject, payload: command.Object{Kind: "budgets", Object: json.RawMessage(`{"name":"bad","scope":"galaxy","period":"day","limit_usd":50}`)}, wantErr: ErrInvalid},
		{name: "put object with unknown field", typ: command.PutObject, payload: command.Object{Kind: "budgets", Object: json.RawMessage(`{"name":"x","colour":"red"}`)}, wantErr: ErrInvalid},
		{name: "put object of dedicated kind", typ: command.PutObject, payload: command.Object{Kind: "keys", Object: json.RawMessage(`{"name":"k"}`)}, wantErr: ErrInvalid},
		{name: "delete budget object", typ: command.DeleteObject, payload: command.ObjectName{Kind: "budgets", Name: "daily"},
			check: func(t *testing.T, s *State, _ Result) {
				if len(s.Config.Budgets) != 0 {
					t.Fatalf("budgets = %+v", s.Config.Budgets)
				}
			}},
		{name: "put member", typ: command.PutMember, payload: command.Member{ID: "a1", RaftAddr: "127.0.0.1:7401", HTTPAddr: "http://127.0.0.1:7400"},
			check: func(t *testing.T, s *State, _ Result) {
				if m, ok := s.Member("a1"); !ok || m.HTTPAddr != "http://127.0.0.1:7400" {
					t.Fatalf("member = %+v, %v", m, ok)
				}
			}},
		{name: "put member with bad url", typ: command.PutMember, payload: command.Member{ID: "a2", RaftAddr: "127.0.0.1:7401", HTTPAddr: "ftp://x"}, wantErr: ErrInvalid},
		{name: "delete member", typ: command.DeleteMember, payload: command.Name{Name: "a1"},
			check: func(t *testing.T, s *State, _ Result) {
				if _, ok := s.Member("a1"); ok {
					t.Fatal("member still present")
				}
			}},
		{name: "delete route", typ: command.DeleteRoute, payload: command.Name{Name: "r2"}, wantErr: ErrInvalid}, // release v2 uses it
		{name: "delete feature", typ: command.DeleteFeature, payload: command.Name{Name: "summary"},
			check: func(t *testing.T, s *State, _ Result) {
				if _, ok := s.LabelHistory["summary"]; ok {
					t.Fatal("label history of a deleted feature kept")
				}
			}},
	}
	s := seeded(t)
	index := uint64(10)
	for i, st := range steps {
		index++
		before := s
		beforeHash, _ := s.computeHashes()
		next, res, err := s.Apply(index, mk(t, st.typ, st.payload, fmt.Sprintf("req-%d", i)))
		if st.wantErr != nil {
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
			}
			if next != s {
				t.Fatalf("%s: a rejected command returned a new state", st.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if next.Index != index || res.Index != index {
			t.Fatalf("%s: index %d, result index %d, want %d", st.name, next.Index, res.Index, index)
		}
		audit := next.Audit()
		last := audit[len(audit)-1]
		if last.Command != st.typ || last.RequestID != fmt.Sprintf("req-%d", i) || last.Actor != "user:ops" || !last.Time.Equal(t0) {
			t.Fatalf("%s: audit record %+v", st.name, last)
		}
		st.check(t, next, res)
		if after, _ := before.computeHashes(); after != beforeHash {
			t.Fatalf("%s: applying changed the previous state", st.name)
		}
		s = next
	}
}

func TestDuplicateRequestIsAppliedOnce(t *testing.T) {
	s := seeded(t)
	e := mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "same")
	s1, r1 := mustApply(t, s, 2, e)
	s2, r2 := mustApply(t, s1, 3, e)
	if s2 != s1 {
		t.Fatal("a repeated request id changed the state")
	}
	if !r2.Duplicate || r2.Version != r1.Version || r2.Index != r1.Index {
		t.Fatalf("repeat result %+v, first %+v", r2, r1)
	}
	f, _ := s2.Feature("support")
	if len(f.Releases) != 2 {
		t.Fatalf("releases = %d, want 2", len(f.Releases))
	}
}

func TestUnknownCommands(t *testing.T) {
	tests := []struct {
		name      string
		typ       command.Type
		version   int
		skippable bool
		wantErr   error
		skipped   bool
	}{
		{"unknown skippable type", "put_widget", 1, true, nil, true},
		{"unknown type", "put_widget", 1, false, ErrUnknownCommand, false},
		{"newer version skippable", command.PutProvider, 2, true, nil, true},
		{"newer version", command.PutProvider, 2, false, ErrUnknownCommand, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seeded(t)
			e := mk(t, tt.typ, map[string]string{"name": "x"}, "u1")
			e.Version, e.Skippable = tt.version, tt.skippable
			next, res, err := s.Apply(5, e)
			if !errors.Is(err, tt.wantErr) || (err != nil && tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if res.Skipped != tt.skipped || next != s {
				t.Fatalf("skipped = %v (want %v), state changed = %v", res.Skipped, tt.skipped, next != s)
			}
		})
	}
}

func TestBadInputIsRejectedNotPanicking(t *testing.T) {
	s := seeded(t)
	base := mk(t, command.PutProvider, command.Provider{}, "b")
	tests := []struct {
		name string
		mut  func(e *command.Envelope)
	}{
		{"no request id", func(e *command.Envelope) { e.RequestID = "" }},
		{"no time", func(e *command.Envelope) { e.Time = time.Time{} }},
		{"no type", func(e *command.Envelope) { e.Type = "" }},
		{"payload of the wrong shape", func(e *command.Envelope) { e.Payload = json.RawMessage(`[1,2]`) }},
		{"empty payload", func(e *command.Envelope) { e.Payload = nil }},
		{"null payload", func(e *command.Envelope) { e.Payload = json.RawMessage(`null`) }},
		{"huge request id", func(e *command.Envelope) { e.RequestID = strings.Repeat("x", 200) }},
		{"label of a feature with no releases", func(e *command.Envelope) {
			e.Type = command.MoveLabel
			e.Payload = json.RawMessage(`{"feature":"support","action":"rollback"}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			tt.mut(&e)
			next, _, err := s.Apply(9, e)
			if err == nil {
				t.Fatal("bad command accepted")
			}
			if next != s {
				t.Fatal("bad command changed the state")
			}
		})
	}
}

func TestSecretsNeverEnterTheLog(t *testing.T) {
	tests := []struct {
		name    string
		typ     command.Type
		payload any
	}{
		{"key in base url user info", command.PutProvider, command.Provider{Provider: config.Provider{Name: "o", Kind: config.KindOpenAI, BaseURL: "https://user:secret@api.example.com"}}},
		{"key in base url query", command.PutProvider, command.Provider{Provider: config.Provider{Name: "o", Kind: config.KindOpenAI, BaseURL: "https://api.example.com/v1?api_key=abc"}}},
		{"key pasted into api_key_env", command.PutProvider, command.Provider{Provider: config.Provider{Name: "o", Kind: config.KindOpenAI, APIKeyEnv: "sk_live_51Habcdefghijklmnop"}}},
		{"openai key in a release", command.CreateRelease, command.Release{Feature: "support", Release: config.Release{System: "use sk-proj-abcdefghijklmnopqrstuvwxyz", Route: "r1"}}},
		{"virtual key as a key hash", command.PutKey, command.Key{Key: config.Key{Name: "k", Hash: "gk_" + strings.Repeat("A", 43)}}},
		{"secret inside a whole config", command.ApplyConfig, command.Config{Config: config.Config{Providers: []config.Provider{{Name: "o", Kind: config.KindOpenAI, BaseURL: "https://x:y@h"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seeded(t)
			_, _, err := s.Apply(9, mk(t, tt.typ, tt.payload, "s"))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestApplyConfigKeepsReleasesImmutable(t *testing.T) {
	s := seeded(t)
	cfg := s.Config
	changed := cfg
	changed.Features = []config.Feature{cfg.Features[0]}
	changed.Features[0].Releases = []config.Release{cfg.Features[0].Releases[0]}
	changed.Features[0].Releases[0].System = "Be verbose."
	if _, _, err := s.Apply(5, mk(t, command.ApplyConfig, command.Config{Config: changed}, "c1")); !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	example := *config.Example()
	next, _ := mustApply(t, New(), 5, mk(t, command.ApplyConfig, command.Config{Config: example}, "c2"))
	if got, want := len(next.Config.Features), len(example.Features); got != want {
		t.Fatalf("features = %d, want %d", got, want)
	}
	targets := map[string]bool{}
	for _, a := range next.Audit() {
		targets[a.Target] = true
	}
	for _, want := range []string{"providers/sim", "routes/default", "features/support-answer", "features/ticket-triage"} {
		if !targets[want] {
			t.Fatalf("no audit record of %s in %v: an apply records each object it adds", want, targets)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := seeded(t)
	for i := range 20 {
		s, _ = mustApply(t, s, uint64(10+i), mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, fmt.Sprintf("r%d", i)))
	}
	s, _ = mustApply(t, s, 40, mk(t, command.MoveLabel, command.Label{Feature: "support", Action: config.MoveCanary, Version: 3, Weight: 5}, "canary"))
	s, _ = mustApply(t, s, 41, mk(t, command.PutToken, command.TokenPayload{Token: command.Token{Name: "t", Hash: hashOf("t"), Role: config.RoleAdmin}}, "tok"))
	got := roundTrip(t, s)
	if got.Hash() != s.Hash() {
		t.Fatal("restored state hash differs")
	}
	// The restored state remembers request ids.
	again, res := mustApply(t, got, 50, mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "r3"))
	if !res.Duplicate || again != got {
		t.Fatalf("request id forgotten after restore: %+v", res)
	}
	if _, err := Decode(strings.NewReader(`{"format":99}`)); err == nil {
		t.Fatal("a newer snapshot format was accepted")
	}
}

func TestBounds(t *testing.T) {
	s := seeded(t)
	n := MaxRequests + 10
	for i := range n {
		s, _ = mustApply(t, s, uint64(10+i), mk(t, command.PutMember, command.Member{ID: fmt.Sprintf("n%d", i%3), RaftAddr: fmt.Sprintf("127.0.0.1:%d", 1000+i), HTTPAddr: "http://127.0.0.1:1"}, fmt.Sprintf("q%d", i)))
	}
	if got := s.requests.len(); got != MaxRequests {
		t.Fatalf("remembered requests = %d, want %d", got, MaxRequests)
	}
	if _, ok := s.Applied("q0"); ok {
		t.Fatal("oldest request id still remembered")
	}
	if _, ok := s.Applied(fmt.Sprintf("q%d", n-1)); !ok {
		t.Fatal("newest request id forgotten")
	}
	audit := s.Audit()
	if got := len(audit); got != MaxAudit || s.AuditLen() != MaxAudit {
		t.Fatalf("audit records = %d (len %d), want %d", got, s.AuditLen(), MaxAudit)
	}
	for i, a := range audit {
		if want := s.AuditSeq - uint64(MaxAudit-1-i); a.Seq != want {
			t.Fatalf("audit[%d].Seq = %d, want %d", i, a.Seq, want)
		}
	}
}

func TestLabelHistoryBound(t *testing.T) {
	s := seeded(t)
	s, _ = mustApply(t, s, 2, mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "rel"))
	for i := range MaxLabelHistory + 5 {
		p := command.Label{Feature: "support", Action: config.MoveAbort}
		if i%2 == 0 {
			p.Action, p.Version, p.Weight = config.MoveCanary, 2, 10
		}
		s, _ = mustApply(t, s, uint64(3+i), mk(t, command.MoveLabel, p, fmt.Sprintf("l%d", i)))
	}
	if got := len(s.LabelHistory["support"]); got != MaxLabelHistory {
		t.Fatalf("label history = %d, want %d", got, MaxLabelHistory)
	}
}

func TestObjectKindsFollowTheConfig(t *testing.T) {
	kinds := ObjectKinds()
	has := func(k string) bool {
		for _, x := range kinds {
			if x == k {
				return true
			}
		}
		return false
	}
	if !has("budgets") {
		t.Fatalf("kinds %v lack budgets", kinds)
	}
	for k := range dedicated {
		if has(k) {
			t.Fatalf("kinds %v include %s, which has its own command", kinds, k)
		}
	}
}

// Two operators look at production v1 and move it at once: the first move
// applies, the second is refused at apply time because production no
// longer points where its author saw it.
func TestLabelMoveFromIsCheckedWhenItApplies(t *testing.T) {
	s := seeded(t)
	s, _ = mustApply(t, s, 2, mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "rel2"))
	s, _ = mustApply(t, s, 3, mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "rel3"))
	from := 1
	move := func(to int, id string) command.Envelope {
		p := command.Label{Feature: "support", Action: config.MovePromote, Version: to, From: &from}
		e := mk(t, command.MoveLabel, p, id)
		return e
	}
	s, _ = mustApply(t, s, 4, move(2, "alice"))
	next, _, err := s.Apply(5, move(3, "bob"))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "points at v2 now, not v1") {
		t.Fatalf("second move from v1: err %v, want a conflict naming v2", err)
	}
	if next != s {
		t.Fatal("a refused move changed the state")
	}
	if f, _ := s.Feature("support"); f.Labels.Production != 2 {
		t.Fatalf("production v%d, want v2", f.Labels.Production)
	}

	// A canary that points nowhere is From 0.
	none := 0
	c := command.Label{Feature: "support", Action: config.MoveCanary, Version: 3, Weight: 10, From: &none}
	e := mk(t, command.MoveLabel, c, "canary")
	s, _ = mustApply(t, s, 6, e)
	if _, _, err := s.Apply(7, func() command.Envelope { e.RequestID = "again"; return e }()); !errors.Is(err, ErrConflict) {
		t.Fatalf("canary from nowhere while v3 is canary: err %v, want a conflict", err)
	}
	if !Known(command.MoveLabel, 4) || Known(command.MoveLabel, 5) {
		t.Fatal("MoveLabel is payload version 4")
	}
}

// A log written before label moves meant what they mean now replays to the
// state every agent computed then: a version 2 rollback during a canary
// promoted the canary. The same sequence at version 3 ends the canary.
func TestLabelMovesOfAnOlderLogReplayAsTheyApplied(t *testing.T) {
	for _, tc := range []struct {
		version int
		want    config.Labels
	}{
		{2, config.Labels{Production: 2}}, // the canary promoted, as the old rule did
		{3, config.Labels{Production: 1}},
	} {
		s := seeded(t)
		s, _ = mustApply(t, s, 2, mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "rel"))
		seq := []command.Label{
			{Feature: "support", Action: config.MovePromote, Version: 2},
			{Feature: "support", Action: config.MoveRollback},
			{Feature: "support", Action: config.MoveCanary, Version: 2, Weight: 25},
			{Feature: "support", Action: config.MoveRollback},
		}
		for i, p := range seq {
			e := mk(t, command.MoveLabel, p, fmt.Sprintf("v%d-%d", tc.version, i))
			e.Version = tc.version
			s, _ = mustApply(t, s, uint64(3+i), e)
		}
		if f, _ := s.Feature("support"); f.Labels != tc.want {
			t.Fatalf("payload version %d: labels %+v, want %+v", tc.version, f.Labels, tc.want)
		}
	}
}

// TestSectionHashesSayWhereReplicasDiffer: two states that differ only in
// their budget ledger differ in the hash of the spend section alone.
func TestSectionHashesSayWhereReplicasDiffer(t *testing.T) {
	s := seeded(t)
	other := s.clone()
	other.Spend.Seqs = map[string]uint64{"n3": 1}
	if s.Hash() == other.Hash() {
		t.Fatal("the states hash the same")
	}
	a, b := s.SectionHashes(), other.SectionHashes()
	var differ []string
	for name := range a {
		if a[name] != b[name] {
			differ = append(differ, name)
		}
	}
	if len(differ) != 1 || differ[0] != "spend" || len(a) != reflect.TypeFor[wire]().NumField() {
		t.Fatalf("sections that differ: %v of %d; want spend alone, of every section", differ, len(a))
	}
}
