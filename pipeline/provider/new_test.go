package provider

import (
	"strings"
	"testing"

	"gantry/config"
)

func TestNew(t *testing.T) {
	env := map[string]string{"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-ant-1", "BLANK_API_KEY": "  ",
		"GROQ_API_KEY": "sk-groq", "GEMINI_API_KEY": "sk-gem", "AZURE_OPENAI_API_KEY": "sk-az", "BEDROCK_API_KEY": "sk-br",
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "sk-secret", "TEAM_AWS_ID": "AKIDTEAM", "TEAM_AWS_SECRET": "sk-team"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		p       config.Provider
		want    string // the provider's type, or "" for an error
		errText string
	}{
		{"sim is not an upstream", config.Provider{Name: "sim", Kind: config.KindSim}, "", "package sim"},
		{"openai", config.Provider{Name: "openai", Kind: config.KindOpenAI, APIKeyEnv: "OPENAI_API_KEY"}, "*provider.OpenAI", ""},
		{"ollama without key", config.Provider{Name: "ollama", Kind: config.KindOpenAI, BaseURL: "http://localhost:11434/v1"}, "*provider.OpenAI", ""},
		{"anthropic", config.Provider{Name: "claude", Kind: config.KindAnthropic, APIKeyEnv: "ANTHROPIC_API_KEY"}, "*provider.Anthropic", ""},
		{"unset key", config.Provider{Name: "openai", Kind: config.KindOpenAI, APIKeyEnv: "MISSING_API_KEY"}, "", "MISSING_API_KEY"},
		{"blank key", config.Provider{Name: "openai", Kind: config.KindOpenAI, APIKeyEnv: "BLANK_API_KEY"}, "", "BLANK_API_KEY"},
		{"credentials in the url", config.Provider{Name: "vllm", Kind: config.KindOpenAI, BaseURL: "http://u:p@host/v1"}, "", "credentials"},
		{"not http", config.Provider{Name: "vllm", Kind: config.KindOpenAI, BaseURL: "ftp://host/v1"}, "", "not an http"},
		{"unknown kind", config.Provider{Name: "x", Kind: "watsonx"}, "", "unknown kind"},
		{"groq preset kind", config.Provider{Name: "groq", Kind: config.KindGroq, APIKeyEnv: "GROQ_API_KEY"}, "*provider.OpenAI", ""},
		{"groq as openai preset", config.Provider{Name: "groq", Kind: config.KindOpenAI, Preset: config.KindGroq, APIKeyEnv: "GROQ_API_KEY"}, "*provider.OpenAI", ""},
		{"groq without key", config.Provider{Name: "groq", Kind: config.KindGroq}, "", "needs a key"},
		{"ollama preset without key", config.Provider{Name: "local", Kind: config.KindOllama}, "*provider.OpenAI", ""},
		{"vllm without address", config.Provider{Name: "vllm", Kind: config.KindVLLM}, "", "base_url"},
		{"gemini", config.Provider{Name: "gem", Kind: config.KindGemini, APIKeyEnv: "GEMINI_API_KEY"}, "*provider.Gemini", ""},
		{"gemini without key", config.Provider{Name: "gem", Kind: config.KindGemini}, "", "needs a key"},
		{"azure key", config.Provider{Name: "az", Kind: config.KindAzure, BaseURL: "https://r.openai.azure.com", APIKeyEnv: "AZURE_OPENAI_API_KEY"}, "*provider.Azure", ""},
		{"azure entra", config.Provider{Name: "az", Kind: config.KindAzure, BaseURL: "https://r.openai.azure.com", APIKeyEnv: "AZURE_OPENAI_API_KEY", Auth: config.AzureAuthEntra}, "*provider.Azure", ""},
		{"azure without endpoint", config.Provider{Name: "az", Kind: config.KindAzure, APIKeyEnv: "AZURE_OPENAI_API_KEY"}, "", "base_url"},
		{"bedrock default credentials", config.Provider{Name: "br", Kind: config.KindBedrock, Region: "us-east-1"}, "*provider.Bedrock", ""},
		{"bedrock named credentials", config.Provider{Name: "br", Kind: config.KindBedrock, Region: "us-east-1", AWS: &config.AWS{AccessKeyIDEnv: "TEAM_AWS_ID", SecretAccessKeyEnv: "TEAM_AWS_SECRET"}}, "*provider.Bedrock", ""},
		{"bedrock missing credentials", config.Provider{Name: "br", Kind: config.KindBedrock, Region: "us-east-1", AWS: &config.AWS{AccessKeyIDEnv: "NOPE_ID", SecretAccessKeyEnv: "NOPE_SECRET"}}, "", "NOPE_SECRET"},
		{"bedrock api key", config.Provider{Name: "br", Kind: config.KindBedrock, Region: "eu-west-1", APIKeyEnv: "BEDROCK_API_KEY"}, "*provider.Bedrock", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.p, getenv, nil)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) || !strings.Contains(err.Error(), tt.p.Name) {
					t.Fatalf("got %v, want an error naming %q and %q", err, tt.p.Name, tt.errText)
				}
				if strings.Contains(err.Error(), "sk-") {
					t.Fatalf("error %q shows a key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := kindOf(p); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func kindOf(p Provider) string {
	switch p.(type) {
	case *OpenAI:
		return "*provider.OpenAI"
	case *Anthropic:
		return "*provider.Anthropic"
	case *Gemini:
		return "*provider.Gemini"
	case *Azure:
		return "*provider.Azure"
	case *Bedrock:
		return "*provider.Bedrock"
	}
	return "unknown"
}
