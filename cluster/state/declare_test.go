package state

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gantry/cluster/command"
	"gantry/config"
)

// declFile is a configuration file as an operator keeps it.
func declFile() config.Config {
	r := release("r1")
	r.Version = 1
	return config.Config{
		Providers: []config.Provider{{Name: "sim", Kind: config.KindSim}},
		Models: []config.Model{
			{Name: "m1", Provider: "sim", Price: config.Price{Input: 1, Output: 2}},
			{Name: "m2", Provider: "sim", Price: config.Price{Input: 3, Output: 4}},
		},
		Routes:   []config.Route{{Name: "r1", Targets: []config.Target{{Model: "m1", Weight: 1}}}},
		Features: []config.Feature{{Name: "support", Description: "answers", Releases: []config.Release{r}, Labels: config.Labels{Production: 1}}},
		Keys:     []config.Key{{Name: "ops", Hash: hashOf("gk_ops-key-00000001")}},
	}
}

func declare(t *testing.T, s *State, index uint64, file config.Config, prune bool, force string) (*State, error) {
	t.Helper()
	next, _, err := s.Apply(index, mk(t, command.ApplyConfig, command.Config{Config: file, Prune: prune, Force: force}, "apply-"+string(rune('a'+index))))
	return next, err
}

func mustDeclare(t *testing.T, s *State, index uint64, file config.Config, prune bool) *State {
	t.Helper()
	next, err := declare(t, s, index, file, prune, "")
	if err != nil {
		t.Fatalf("apply at %d: %v", index, err)
	}
	return next
}

// What operators do at run time survives a reload of the same file, and a
// reload of an unchanged file changes nothing at all.
func TestReloadKeepsWhatOperatorsDid(t *testing.T) {
	file := declFile()
	s := mustDeclare(t, New(), 1, file, false)
	s, _ = mustApply(t, s, 2, mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "rel"))
	s, _ = mustApply(t, s, 3, mk(t, command.MoveLabel, command.Label{Feature: "support", Action: config.MovePromote, Version: 2}, "promote"))
	s, _ = mustApply(t, s, 4, mk(t, command.PutKey, command.Key{Key: config.Key{Name: "app", Hash: hashOf("gk_app-key-00000001")}}, "key"))
	s, _ = mustApply(t, s, 5, mk(t, command.RevokeKey, command.Name{Name: "ops"}, "revoke"))

	audit := s.AuditLen()
	again := mustDeclare(t, s, 6, file, false)
	if !reflect.DeepEqual(again.Config, s.Config) || again.ConfigIndex != s.ConfigIndex {
		t.Fatalf("a reload of the same file changed the configuration:\n%+v\n%+v", s.Config, again.Config)
	}
	if again.AuditLen() != audit {
		t.Fatalf("a reload of the same file wrote %d audit records", again.AuditLen()-audit)
	}
	f, _ := again.Feature("support")
	if f.Labels.Production != 2 || len(f.Releases) != 2 {
		t.Fatalf("after the reload support is %+v, want production v2 and both releases", f.Labels)
	}
	if i := slices.IndexFunc(again.Config.Keys, func(k config.Key) bool { return k.Name == "ops" }); i < 0 || !again.Config.Keys[i].Revoked {
		t.Fatalf("the revoked key came back: %+v", again.Config.Keys)
	}
	if !slices.ContainsFunc(again.Config.Keys, func(k config.Key) bool { return k.Name == "app" }) {
		t.Fatal("a key made through the API was deleted by a reload")
	}
}

// A changed declaration takes effect, keeping labels and the releases
// operators made; what the file stops declaring stays until a prune, which
// never removes what the API made.
func TestApplyChangesOnlyWhatTheFileChanged(t *testing.T) {
	file := declFile()
	s := mustDeclare(t, New(), 1, file, false)
	s, _ = mustApply(t, s, 2, mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "rel"))
	s, _ = mustApply(t, s, 3, mk(t, command.MoveLabel, command.Label{Feature: "support", Action: config.MovePromote, Version: 2}, "promote"))
	s, _ = mustApply(t, s, 4, mk(t, command.PutKey, command.Key{Key: config.Key{Name: "app", Hash: hashOf("gk_app-key-00000001")}}, "key"))

	edited := declFile()
	edited.Features[0].Description = "answers support questions"
	edited.Features[0].Labels = config.Labels{Production: 1} // a file never moves a label
	edited.Routes[0].Retry = config.Retry{Attempts: 3}
	edited.Models = edited.Models[:1] // m2 no longer declared
	next := mustDeclare(t, s, 5, edited, false)
	f, _ := next.Feature("support")
	if f.Description != "answers support questions" || f.Labels.Production != 2 || len(f.Releases) != 2 {
		t.Fatalf("support after the apply: %q production v%d, %d releases; want the new description, v2, 2 releases", f.Description, f.Labels.Production, len(f.Releases))
	}
	if r := next.Config.Routes[0]; r.Retry.Attempts != 3 {
		t.Fatalf("route r1 retry %+v, want the file's 3 attempts", r.Retry)
	}
	if len(next.Config.Models) != 2 {
		t.Fatalf("models %v: without prune a model the file stopped declaring stays", next.Config.Models)
	}
	targets := auditTargets(next, s.AuditSeq)
	if !slices.Equal(targets, []string{"routes/r1", "features/support"}) {
		t.Fatalf("audit names %v, want each changed object", targets)
	}

	pruned := mustDeclare(t, next, 6, edited, true)
	if len(pruned.Config.Models) != 1 || !slices.ContainsFunc(pruned.Config.Keys, func(k config.Key) bool { return k.Name == "app" }) {
		t.Fatalf("after prune models %v keys %v: want m2 gone and the API's key kept", pruned.Config.Models, pruned.Config.Keys)
	}
	if got := auditTargets(pruned, next.AuditSeq); !slices.Equal(got, []string{"models/m2"}) {
		t.Fatalf("prune audit %v, want models/m2", got)
	}
}

func auditTargets(s *State, after uint64) []string {
	var out []string
	for _, a := range s.Audit() {
		if a.Seq > after {
			out = append(out, a.Target)
		}
	}
	return out
}

func TestApplyGuardsAgainstMassDeletion(t *testing.T) {
	s := mustDeclare(t, New(), 1, declFile(), false)
	if _, err := declare(t, s, 2, config.Config{}, true, ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "declares nothing") {
		t.Fatalf("an empty file: %v, want a refusal saying it declares nothing", err)
	}
	other := config.Config{Limits: config.Limits{MaxMessages: 10}}
	if _, err := declare(t, s, 2, other, true, ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "remove every provider") {
		t.Fatalf("a prune of everything: %v, want a refusal naming what would go", err)
	}
	next, err := declare(t, s, 2, other, true, "decommissioning the staging cluster")
	if err != nil {
		t.Fatalf("a forced prune: %v", err)
	}
	a := next.Audit()
	if last := a[len(a)-1]; !strings.Contains(last.Reason, "decommissioning the staging cluster") {
		t.Fatalf("the forced apply's audit record %+v lacks its reason", last)
	}
}

// A key rotated or revoked through the API is the API's: a file that
// still lists it, even changed, leaves it as the operator left it.
func TestRuntimeKeyChangesAreTheAPIs(t *testing.T) {
	file := declFile()
	s := mustDeclare(t, New(), 1, file, false)
	rotated := config.Key{Name: "ops", Hash: hashOf("gk_ops-key-00000002")}
	s, _ = mustApply(t, s, 2, mk(t, command.PutKey, command.Key{Key: rotated}, "rotate"))
	edited := declFile()
	edited.Keys[0].Features = []string{"support"}
	next := mustDeclare(t, s, 3, edited, true)
	if i := slices.IndexFunc(next.Config.Keys, func(k config.Key) bool { return k.Name == "ops" }); i < 0 || next.Config.Keys[i].Hash != rotated.Hash {
		t.Fatalf("keys after the apply %+v: want the rotated key as the operator left it", next.Config.Keys)
	}
}

// Every list of a configuration is declared by a file; a new kind of
// object must say how.
func TestEveryConfigListIsDeclared(t *testing.T) {
	kinds := map[string]bool{}
	for _, k := range declKinds {
		kinds[k.name] = true
	}
	typ := reflect.TypeOf(config.Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.Slice {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !kinds[name] {
			t.Errorf("config.Config.%s (%s) has no row in declKinds", f.Name, name)
		}
	}
}
