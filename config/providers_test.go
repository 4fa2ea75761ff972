package config

import (
	"strings"
	"testing"
)

func TestProviderKindsValidation(t *testing.T) {
	tests := []struct {
		name string
		p    string
		want string // substring of the error; empty means valid
	}{
		{"gemini", `{name: p, kind: gemini, api_key_env: GEMINI_API_KEY}`, ""},
		{"groq kind", `{name: p, kind: groq, api_key_env: GROQ_API_KEY}`, ""},
		{"groq as openai preset", `{name: p, kind: openai, preset: groq, api_key_env: GROQ_API_KEY}`, ""},
		{"preset on another kind", `{name: p, kind: anthropic, preset: groq}`, "providers[0].preset"},
		{"unknown preset", `{name: p, kind: openai, preset: acme}`, "providers[0].preset"},
		{"azure", `{name: p, kind: azure, base_url: "https://r.openai.azure.com", api_key_env: K, api_version: 2024-10-21, auth: entra}`, ""},
		{"azure without endpoint", `{name: p, kind: azure, api_key_env: K}`, "providers[0].base_url"},
		{"azure bad version", `{name: p, kind: azure, base_url: "https://r.openai.azure.com", api_key_env: K, api_version: latest}`, "providers[0].api_version"},
		{"auth on openai", `{name: p, kind: openai, auth: entra}`, "providers[0].auth"},
		{"bedrock", `{name: p, kind: bedrock, region: eu-central-1, aws: {access_key_id_env: TEAM_ID, secret_access_key_env: TEAM_SECRET}}`, ""},
		{"bedrock without region", `{name: p, kind: bedrock}`, "providers[0].region"},
		{"bedrock secret in config", `{name: p, kind: bedrock, region: us-east-1, aws: {secret_access_key_env: "wJalrXUtnFEMI/K7MDENG"}}`, "aws.secret_access_key_env"},
		{"region on gemini", `{name: p, kind: gemini, region: us-east-1}`, "providers[0].region"},
		{"vllm without address", `{name: p, kind: vllm}`, "providers[0].base_url"},
		{"unknown kind", `{name: p, kind: watsonx}`, "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "providers:\n  - " + tt.p + "\nmodels:\n  - {name: m, provider: p, price: {input: 1, output: 2, reasoning: 3}}\n"
			_, err := Parse("test.yaml", []byte(doc))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}
