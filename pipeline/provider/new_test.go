package provider

import (
	"strings"
	"testing"

	"gantry/config"
)

func TestNew(t *testing.T) {
	env := map[string]string{"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-ant-1", "BLANK_API_KEY": "  "}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		p       config.Provider
		want    string // the provider's type, or "" for an error
		errText string
	}{
		{"sim", config.Provider{Name: "sim", Kind: config.KindSim, Sim: &config.SimSettings{Seed: 1}}, "*provider.Sim", ""},
		{"sim without settings", config.Provider{Name: "sim", Kind: config.KindSim}, "*provider.Sim", ""},
		{"openai", config.Provider{Name: "openai", Kind: config.KindOpenAI, APIKeyEnv: "OPENAI_API_KEY"}, "*provider.OpenAI", ""},
		{"ollama without key", config.Provider{Name: "ollama", Kind: config.KindOpenAI, BaseURL: "http://localhost:11434/v1"}, "*provider.OpenAI", ""},
		{"anthropic", config.Provider{Name: "claude", Kind: config.KindAnthropic, APIKeyEnv: "ANTHROPIC_API_KEY"}, "*provider.Anthropic", ""},
		{"unset key", config.Provider{Name: "openai", Kind: config.KindOpenAI, APIKeyEnv: "MISSING_API_KEY"}, "", "MISSING_API_KEY"},
		{"blank key", config.Provider{Name: "openai", Kind: config.KindOpenAI, APIKeyEnv: "BLANK_API_KEY"}, "", "BLANK_API_KEY"},
		{"credentials in the url", config.Provider{Name: "vllm", Kind: config.KindOpenAI, BaseURL: "http://u:p@host/v1"}, "", "credentials"},
		{"not http", config.Provider{Name: "vllm", Kind: config.KindOpenAI, BaseURL: "ftp://host/v1"}, "", "not an http"},
		{"unknown kind", config.Provider{Name: "x", Kind: "bedrock"}, "", "unknown kind"},
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
	case *Sim:
		return "*provider.Sim"
	case *OpenAI:
		return "*provider.OpenAI"
	case *Anthropic:
		return "*provider.Anthropic"
	}
	return "unknown"
}
