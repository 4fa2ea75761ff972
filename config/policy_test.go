package config

import (
	"strings"
	"testing"
)

// policyBase is a valid configuration the policy cases add to.
const policyBase = `
providers:
  - {name: sim, kind: sim}
models:
  - {name: small, provider: sim, price: {input: 1, output: 2}}
routes:
  - name: cheap
    targets: [{model: small, weight: 1}]
features:
  - name: chat
    releases: [{version: 1, route: cheap}]
    labels: {production: 1}
keys:
  - name: app
    hash: sha256:0000000000000000000000000000000000000000000000000000000000000000
    team: core
`

func TestPolicyValidation(t *testing.T) {
	tests := []struct {
		name string
		add  string
		want string // substring of the error; empty means valid
	}{
		{"valid budgets and safety", `
teams: [{name: core, rate_limit: {rpm: 60, tpm: 10000, max_concurrent: 4}}]
budgets:
  - {name: all, scope: global, period: month, limit_usd: 100, soft_threshold: 0.8}
  - {name: core, scope: team, match: core, period: day, limit_usd: 5, action: downgrade, downgrade_route: cheap}
  - {name: per-user, scope: user, period: day, limit_usd: 0.5, action: alert}
`, ""},
		{"unknown scope", `budgets: [{name: b, scope: org, period: day, limit_usd: 1}]`, "budgets[0].scope: unknown scope"},
		{"negative limit", `budgets: [{name: b, scope: global, period: day, limit_usd: -1}]`, "budgets[0].limit_usd"},
		{"absurd limit", `budgets: [{name: b, scope: global, period: day, limit_usd: 1e12}]`, "budgets[0].limit_usd"},
		{"unknown period", `budgets: [{name: b, scope: global, period: week, limit_usd: 1}]`, "budgets[0].period"},
		{"downgrade to unknown route", `budgets: [{name: b, scope: global, period: day, limit_usd: 1, action: downgrade, downgrade_route: nope}]`, "budgets[0].downgrade_route: unknown route"},
		{"threshold of one", `budgets: [{name: b, scope: global, period: day, limit_usd: 1, soft_threshold: 1}]`, "budgets[0].soft_threshold"},
		{"unknown feature", `budgets: [{name: b, scope: feature, match: other, period: day, limit_usd: 1}]`, "budgets[0].match: unknown feature"},
		{"global with match", `budgets: [{name: b, scope: global, match: x, period: day, limit_usd: 1}]`, "budgets[0].match"},
		{"negative rpm", `teams: [{name: core, rate_limit: {rpm: -1}}]`, "teams[0].rate_limit.rpm"},
		{"unknown team", `teams: [{name: other}]`, "keys[0].team: unknown team"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(policyBase+tt.add))
			checkErr(t, err, tt.want)
		})
	}
}

func TestFeatureSafetyValidation(t *testing.T) {
	tests := []struct {
		name   string
		safety string
		want   string
	}{
		{"valid", `{pii: {default: redact, rules: {card: block, ip: off}}, injection: {action: block, threshold: 0.7}, deny_list: [secret project], max_input_tokens: 8000, leak_canary: true}`, ""},
		{"unknown recognizer", `{pii: {rules: {dna: block}}}`, "features[0].safety.pii.rules.dna: unknown recognizer"},
		{"unknown action", `{pii: {default: shred}}`, "features[0].safety.pii.default: unknown action"},
		{"redact injection", `{injection: {action: redact, threshold: 0.5}}`, "features[0].safety.injection.action"},
		{"threshold zero", `{injection: {action: block, threshold: 0}}`, "features[0].safety.injection.threshold"},
		{"blank deny term", `{deny_list: ["  "]}`, "features[0].safety.deny_list[0]"},
		{"negative max tokens", `{max_input_tokens: -5}`, "features[0].safety.max_input_tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(policyBase, "labels: {production: 1}", "labels: {production: 1}\n    safety: "+tt.safety, 1)
			src += "teams: [{name: core}]\n"
			_, err := Parse("policy.yaml", []byte(src))
			checkErr(t, err, tt.want)
		})
	}
}

func TestPIIPolicyAction(t *testing.T) {
	var none *PIIPolicy
	if got := none.Action("email"); got != SafetyOff {
		t.Fatalf("nil policy: got %q, want off", got)
	}
	p := &PIIPolicy{Default: SafetyRedact, Rules: map[string]string{"card": SafetyBlock}}
	if got := p.Action("card"); got != SafetyBlock {
		t.Fatalf("card: got %q, want block", got)
	}
	if got := p.Action("email"); got != SafetyRedact {
		t.Fatalf("email: got %q, want redact", got)
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
