package config

import (
	"strings"
	"testing"
)

// costBase has two models and a plain route for the cost cases to use.
const costBase = `
providers:
  - {name: sim, kind: sim}
models:
  - {name: small, provider: sim, price: {input: 1, output: 2}}
  - {name: large, provider: sim, price: {input: 10, output: 30}}
  - {name: embed, provider: sim, price: {input: 0.02, output: 0}}
routes:
  - name: cheap
    targets: [{model: small, weight: 1}]
`

func TestCostSettingsValidation(t *testing.T) {
	feature := func(release string) string {
		return "features:\n  - name: chat\n    labels: {production: 1}\n    releases:\n      - {version: 1, route: cheap, " + release + "}\n"
	}
	tests := []struct {
		name string
		add  string
		want string // substring of the error; empty means valid
	}{
		{"valid cascade", `
  - name: tiered
    cascade: [cheap, large]
    escalate: {on: [invalid, length], judge: {route: small, threshold: 0.6, sample_rate: 0.1}}
` + feature("context: {max_input_tokens: 2000, strategy: summarize, summary_route: cheap}"), ""},
		{"cascade with targets", `
  - name: tiered
    cascade: [cheap, large]
    targets: [{model: small, weight: 1}]
`, "routes[1].cascade: a cascade route has tiers instead"},
		{"one tier", `
  - {name: tiered, cascade: [large]}
`, "routes[1].cascade: 1 tiers"},
		{"cascade of a cascade", `
  - {name: a, cascade: [cheap, large]}
  - {name: b, cascade: [a, large]}
`, `routes[2].cascade[0]: tier "a" is a cascade`},
		{"unknown tier", `
  - {name: a, cascade: [cheap, huge]}
`, `routes[1].cascade[1]: unknown route or model "huge"`},
		{"unknown reason", `
  - {name: a, cascade: [cheap, large], escalate: {on: [slow]}}
`, `routes[1].escalate.on[0]: unknown reason "slow"`},
		{"judge without sampling", `
  - {name: a, cascade: [cheap, large], escalate: {judge: {route: small, threshold: 0.5}}}
`, "routes[1].escalate.judge.sample_rate"},
		{"escalate without cascade", `
  - {name: a, targets: [{model: small, weight: 1}], escalate: {on: [empty]}}
`, "routes[1].escalate: only a cascade route escalates"},
		{"unknown strategy", feature("context: {max_input_tokens: 100, strategy: truncate}"), `releases[0].context.strategy: unknown strategy "truncate"`},
		{"no threshold", feature("context: {strategy: refuse}"), "releases[0].context.max_input_tokens: 0 is outside"},
		{"summary without route", feature("context: {max_input_tokens: 100, strategy: summarize}"), "releases[0].context.summary_route: summarize needs"},
		{"chunks without retrieval", feature("context: {max_input_tokens: 100, strategy: drop_chunks}"), "drop_chunks needs retrieval"},
		{"valid semantic cache", feature("semantic_cache: {embedding_route: embed, threshold: 0.9, scope: team, ttl: 1h, max_entries: 5000}"), ""},
		{"loose threshold", feature("semantic_cache: {embedding_route: embed, threshold: 0.2, ttl: 1h}"), "semantic_cache.threshold: 0.2 is outside 0.5..1"},
		{"unknown scope", feature("semantic_cache: {embedding_route: embed, threshold: 0.9, scope: org, ttl: 1h}"), `semantic_cache.scope: unknown scope "org"`},
		{"no ttl", feature("semantic_cache: {embedding_route: embed, threshold: 0.9}"), "semantic_cache.ttl: a semantic cache needs a ttl"},
		{"too many entries", feature("semantic_cache: {embedding_route: embed, threshold: 0.9, ttl: 1h, max_entries: 9999999}"), "semantic_cache.max_entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("cost.yaml", []byte(costBase+tt.add))
			checkErr(t, err, tt.want)
		})
	}
}

// A release's cost settings are part of its content: changing one changes
// its hash, so a trace names exactly the policy that served it.
func TestCostSettingsAreInTheReleaseHash(t *testing.T) {
	base := Release{Version: 1, Route: "cheap"}
	withContext := base
	withContext.Context = &ContextPolicy{MaxInputTokens: 100, Strategy: ContextRefuse}
	withCache := base
	withCache.SemanticCache = &SemanticCache{EmbeddingRoute: "embed", Threshold: 0.9, TTL: Duration(3600e9)}
	hashes := map[string]string{"base": base.Hash(), "context": withContext.Hash(), "cache": withCache.Hash()}
	seen := map[string]string{}
	for name, h := range hashes {
		if other, dup := seen[h]; dup {
			t.Fatalf("%s and %s have the same hash", name, other)
		}
		seen[h] = name
	}
	if !strings.HasPrefix(base.Hash(), "sha256:") {
		t.Fatalf("hash %s", base.Hash())
	}
}
