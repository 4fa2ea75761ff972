package config

import (
	"strings"
	"testing"
)

func TestFeatureEvalAndCanaryValidation(t *testing.T) {
	tests := []struct {
		name string
		add  string // lines of the feature
		want string // substring of the error; empty means valid
	}{
		{"valid", "eval: {dataset: chat-smoke, gate: true}\n    canary: {on_regression: rollback, min_samples: 200, min_feedback: 20, max_duration: 10m, alpha: 0.05, tau: 0.05, max_latency_increase: 0.3, max_cost_increase: 0.5}", ""},
		{"defaults", "eval: {dataset: chat-smoke}\n    canary: {}", ""},
		{"no dataset", "eval: {gate: true}", "features[0].eval.dataset: evaluation needs a dataset name"},
		{"bad dataset name", "eval: {dataset: Chat Smoke}", "features[0].eval.dataset"},
		{"unknown action", "canary: {on_regression: page}", "features[0].canary.on_regression"},
		{"too few samples", "canary: {min_samples: 5}", "features[0].canary.min_samples"},
		{"too short", "canary: {max_duration: 30s}", "features[0].canary.max_duration"},
		{"too long", "canary: {max_duration: 200h}", "features[0].canary.max_duration"},
		{"alpha too large", "canary: {alpha: 0.5}", "features[0].canary.alpha"},
		{"negative alpha", "canary: {alpha: -0.01}", "features[0].canary.alpha"},
		{"tau above one", "canary: {tau: 2}", "features[0].canary.tau"},
		{"negative increase", "canary: {max_cost_increase: -1}", "features[0].canary.max_cost_increase"},
		{"unknown field", "canary: {on_regresion: rollback}", "on_regresion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(policyBase, "labels: {production: 1}", "labels: {production: 1}\n    "+tt.add, 1)
			_, err := Parse("eval.yaml", []byte(src))
			checkErr(t, err, tt.want)
		})
	}
}

func TestCanaryAction(t *testing.T) {
	var none *CanaryPolicy
	for _, tc := range []struct {
		p    *CanaryPolicy
		want string
	}{{none, CanaryAlert}, {&CanaryPolicy{}, CanaryAlert}, {&CanaryPolicy{OnRegression: CanaryRollback}, CanaryRollback}} {
		if got := tc.p.Action(); got != tc.want {
			t.Fatalf("%+v: action %q, want %q", tc.p, got, tc.want)
		}
	}
}
