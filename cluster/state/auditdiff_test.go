package state

import (
	"reflect"
	"strings"
	"testing"

	"gantry/config"
)

func TestFieldDiff(t *testing.T) {
	before := config.Model{Name: "gpt", Provider: "openai", Price: config.Price{Input: 2.5, Output: 10}}
	after := before
	after.Price.Output, after.Upstream = 12, "gpt-2026"
	got := fieldDiff(before, after)
	want := []AuditChange{{Field: "price.output", Before: "10", After: "12"}, {Field: "upstream", After: `"gpt-2026"`}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("model diff %+v, want %+v", got, want)
	}
	k1 := config.Key{Name: "ci", Team: "a", Hash: config.HashKey("gk_one-secret-value-000")}
	k2 := k1
	k2.Hash, k2.Team = config.HashKey("gk_two-secret-value-000"), "b"
	got = fieldDiff(k1, k2)
	want = []AuditChange{{Field: "hash", Before: "(secret)", After: "(secret)"}, {Field: "team", Before: `"a"`, After: `"b"`}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("key diff %+v, want %+v", got, want)
	}
	if d := fieldDiff("production=v1", "production=v2"); d != nil {
		t.Fatalf("strings have no fields: %+v", d)
	}
	// A new object lists its fields; a large one is cut with a count.
	big := map[string]int{}
	for i := range 40 {
		big[strings.Repeat("f", i+1)] = i
	}
	got = fieldDiff(nil, big)
	if len(got) != maxAuditChanges || !strings.HasPrefix(got[len(got)-1].Field, "(25 more") {
		t.Fatalf("diff of a 40-field object: %d changes, last %+v", len(got), got[len(got)-1])
	}
}
