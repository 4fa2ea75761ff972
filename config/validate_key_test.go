package config

import (
	"strings"
	"testing"
)

// ValidateKey must judge a changed key exactly as Validate judges the
// whole configuration: it stands in for it in the cluster.
func TestValidateKeyAgreesWithValidate(t *testing.T) {
	base := Example()
	base.Keys = []Key{{Name: "a", Hash: HashKey("gk_aaaaaaaaaaaaaaaa")}, {Name: "b", Hash: HashKey("gk_bbbbbbbbbbbbbbbb"), Team: ""}}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  Key
		ok   bool
	}{
		{"good", Key{Name: "c", Hash: HashKey("gk_cccccccccccccccc")}, true},
		{"good with features and models", Key{Name: "c", Hash: HashKey("gk_cccccccccccccccc"), Features: []string{base.Features[0].Name}, Models: []string{base.Models[0].Name, base.Routes[0].Name}}, true},
		{"bad name", Key{Name: "no spaces", Hash: HashKey("gk_cccccccccccccccc")}, false},
		{"empty name", Key{Hash: HashKey("gk_cccccccccccccccc")}, false},
		{"name taken", Key{Name: "a", Hash: HashKey("gk_cccccccccccccccc")}, false},
		{"bad hash", Key{Name: "c", Hash: "sha256:xyz"}, false},
		{"hash taken", Key{Name: "c", Hash: HashKey("gk_aaaaaaaaaaaaaaaa")}, false},
		{"unknown feature", Key{Name: "c", Hash: HashKey("gk_cccccccccccccccc"), Features: []string{"nope"}}, false},
		{"unknown model", Key{Name: "c", Hash: HashKey("gk_cccccccccccccccc"), Models: []string{"nope"}}, false},
		{"budget out of range", Key{Name: "c", Hash: HashKey("gk_cccccccccccccccc"), MaxBudgetUSD: -1}, false},
		{"bad rate limit", Key{Name: "c", Hash: HashKey("gk_cccccccccccccccc"), RateLimit: &RateLimit{RPM: -1}}, false},
		{"long string", Key{Name: "c", Hash: HashKey("gk_cccccccccccccccc"), Features: []string{strings.Repeat("f", MaxTextBytes+1)}}, false},
	}
	for _, tc := range cases {
		cfg := *base
		cfg.Keys = append(append([]Key(nil), base.Keys...), tc.key)
		full, one := cfg.Validate(), cfg.ValidateKey(tc.key.Name)
		if (full == nil) != tc.ok || (one == nil) != tc.ok {
			t.Errorf("%s: Validate %v, ValidateKey %v; want ok %v from both", tc.name, full, one, tc.ok)
		}
	}
}
