package price

import (
	"math"
	"strings"
	"testing"

	"gantry/config"
)

func TestQuote(t *testing.T) {
	tab := Default()
	tests := []struct {
		name   string
		model  config.Model
		kind   string
		source Source
		entry  string
		input  float64
	}{
		{"config wins", config.Model{Name: "gpt-4o", Price: config.Price{Input: 9, Output: 9}}, config.KindOpenAI, SourceConfig, "", 9},
		{"exact", config.Model{Name: "gpt-4o"}, config.KindOpenAI, SourceTable, "gpt-4o", 2.50},
		{"dated version", config.Model{Name: "fast", Upstream: "gpt-4o-mini-2024-07-18"}, config.KindOpenAI, SourceTable, "gpt-4o-mini", 0.15},
		{"azure bills as openai, by model name", config.Model{Name: "gpt-4.1", Upstream: "prod-deployment-7"}, config.KindAzure, SourceTable, "gpt-4.1", 2.00},
		{"anthropic dated", config.Model{Name: "claude", Upstream: "claude-sonnet-4-5-20250929"}, config.KindAnthropic, SourceTable, "claude-sonnet-4-5", 3.00},
		{"gemini models/ prefix", config.Model{Name: "g", Upstream: "models/gemini-2.5-flash"}, config.KindGemini, SourceTable, "gemini-2.5-flash", 0.30},
		{"gemini flash-lite is not flash", config.Model{Name: "gemini-2.5-flash-lite"}, config.KindGemini, SourceTable, "gemini-2.5-flash-lite", 0.10},
		{"bedrock cross-region profile", config.Model{Name: "b", Upstream: "us.anthropic.claude-3-5-haiku-20241022-v1:0"}, config.KindBedrock, SourceTable, "anthropic.claude-3-5-haiku", 0.80},
		{"bedrock version suffix", config.Model{Name: "nova", Upstream: "amazon.nova-lite-v1:0"}, config.KindBedrock, SourceTable, "amazon.nova-lite-v1", 0.06},
		{"deepseek", config.Model{Name: "deepseek-chat"}, config.KindDeepSeek, SourceTable, "deepseek-chat", 0.28},
		{"self-hosted", config.Model{Name: "llama3.2"}, config.KindOllama, SourceSelfHosted, "", 0},
		{"unknown model", config.Model{Name: "gpt-9-ultra"}, config.KindOpenAI, SourceUnknown, "", 0},
		{"unknown kind", config.Model{Name: "sim-large"}, config.KindSim, SourceUnknown, "", 0},
		{"no prefix without a separator", config.Model{Name: "o3x"}, config.KindOpenAI, SourceUnknown, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tab.Quote(tt.model, tt.kind)
			if q.Source != tt.source || q.Entry != tt.entry || q.Price.Input != tt.input {
				t.Fatalf("got %s %q input %v, want %s %q input %v", q.Source, q.Entry, q.Price.Input, tt.source, tt.entry, tt.input)
			}
			if q.Known() != (tt.source != SourceUnknown) {
				t.Fatalf("known: got %v", q.Known())
			}
		})
	}
}

func TestQuoteString(t *testing.T) {
	q := Default().Quote(config.Model{Name: "gpt-4o"}, config.KindOpenAI)
	if got := q.String(); got != "table v1 2025-10-01 (gpt-4o)" {
		t.Fatalf("got %q", got)
	}
	if got := (Quote{}).String(); got != "unknown" {
		t.Fatalf("zero quote: got %q", got)
	}
}

func TestCost(t *testing.T) {
	q := Quote{Price: config.Price{Input: 2, CachedInput: 0.5, Output: 8, Reasoning: 10}, Source: SourceConfig}
	// 1000 input of which 400 cached, 500 output of which 200 reasoning.
	want := (600*2 + 400*0.5 + 300*8 + 200*10) / 1e6
	if got := q.Cost(1000, 400, 500, 200); math.Abs(got-want) > 1e-12 {
		t.Fatalf("got %v, want %v", got, want)
	}
	plain := Quote{Price: config.Price{Input: 2, Output: 8}, Source: SourceTable}
	if got, want := plain.Cost(1000, 400, 500, 200), (1000*2+500*8)/1e6; math.Abs(got-want) > 1e-12 {
		t.Fatalf("without cached and reasoning prices: got %v, want %v", got, want)
	}
	if got := plain.Cost(10, 50, 10, 50); got < 0 || math.IsNaN(got) {
		t.Fatalf("counts that exceed their totals: got %v", got)
	}
}

func TestParseRefusesBadTables(t *testing.T) {
	for name, doc := range map[string]string{
		"no version":     "date: \"2025-01-01\"\nproviders: {}\n",
		"negative price": "version: 1\ndate: \"2025-01-01\"\nproviders: {openai: {m: {input: -1, output: 1}}}\n",
		"unknown field":  "version: 1\ndate: \"2025-01-01\"\ncurrency: EUR\n",
	} {
		if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "price table") {
			t.Fatalf("%s: got %v, want an error", name, err)
		}
	}
}

// TestEveryKindIsPriced keeps the table in step with the providers: every
// kind that bills per token has entries or borrows another's.
func TestEveryKindIsPriced(t *testing.T) {
	tab := Default()
	for _, kind := range config.Kinds {
		if kind == config.KindSim {
			continue
		}
		_, borrowed := tab.sameAs[kind]
		if len(tab.prices[kind]) == 0 && !borrowed && !contains(tab.selfHosted, kind) {
			t.Fatalf("kind %s has no prices in the table", kind)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
