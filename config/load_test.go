package config

import (
	"fmt"
	"strings"
	"testing"
)

// laughs is the billion laughs in YAML: each level a list of ten aliases
// of the one before, levels deep, under a field the checker walks.
func laughs(levels int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [\"lol\"]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "providers: *a%d\n", levels)
	return b.String()
}

func TestParseRefusesAliasBombs(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"billion laughs", laughs(9), "aliases expand"},
		{"under a known field", "providers: &p\n  - &x {name: a, kind: sim}\n" + strings.Repeat("  - *x\n", 1), ""},
		{"wide repetition", "x: &x " + strings.Repeat("[", 1) + strings.Repeat("a,", 2000) + "a]\nproviders: [" + strings.TrimSuffix(strings.Repeat("*x,", 20), ",") + "]\n", "aliases expand"},
		{"many aliases", "x: &x a\ny: [" + strings.TrimSuffix(strings.Repeat("*x,", MaxAliases+1), ",") + "]\n", "aliases, more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bomb.yaml", []byte(tc.doc))
			if tc.want == "" {
				if err != nil && strings.Contains(err.Error(), "alias") {
					t.Fatalf("a modest use of aliases was refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestParseKeepsOrdinaryAnchors: anchors that share a block between
// routes are what they are for, and parse.
func TestParseKeepsOrdinaryAnchors(t *testing.T) {
	doc := `
providers:
  - {name: sim, kind: sim}
models:
  - {name: m1, provider: sim, price: {input: 1, output: 2}}
  - {name: m2, provider: sim, price: {input: 1, output: 2}}
routes:
  - name: a
    targets: [{model: m1, weight: 1}]
    retry: &retry {attempts: 3, backoff: 200ms}
  - name: b
    targets: [{model: m2, weight: 1}]
    retry: *retry
`
	cfg, err := Parse("ok.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routes[1].Retry.Attempts != 3 {
		t.Fatalf("the alias did not carry the block: %+v", cfg.Routes[1].Retry)
	}
}

// BenchmarkParseAliasBomb is the cost of refusing the billion laughs, and
// of an ordinary configuration for comparison.
func BenchmarkParseAliasBomb(b *testing.B) {
	for _, bc := range []struct{ name, doc string }{{"billion-laughs", laughs(9)}, {"example", string(exampleYAML)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.doc)))
			for b.Loop() {
				Parse("x.yaml", []byte(bc.doc))
			}
		})
	}
}

// TestStringsAreBounded: every string of a configuration has a limit, and
// going past one names the path.
func TestStringsAreBounded(t *testing.T) {
	base := func() *Config {
		return &Config{
			Providers: []Provider{{Name: "sim", Kind: KindSim}},
			Models:    []Model{{Name: "m", Provider: "sim"}},
			Features: []Feature{{Name: "f", Labels: Labels{Production: 1},
				Releases: []Release{{Version: 1, Route: "m", Tools: []Tool{{Name: "t"}}}}}},
		}
	}
	cases := []struct {
		name, path string
		edit       func(*Config)
	}{
		{"feature description", "features[0].description", func(c *Config) { c.Features[0].Description = strings.Repeat("d", MaxDescriptionBytes+1) }},
		{"tool description", "features[0].releases[0].tools[0].description", func(c *Config) {
			c.Features[0].Releases[0].Tools[0].Description = strings.Repeat("d", MaxToolDescriptionBytes+1)
		}},
		{"base url", "providers[0].base_url", func(c *Config) {
			c.Providers[0] = Provider{Name: "sim", Kind: KindOpenAI, BaseURL: "https://x.example/" + strings.Repeat("p", MaxURLLen)}
		}},
		{"upstream model name", "models[0].upstream", func(c *Config) { c.Models[0].Upstream = strings.Repeat("u", MaxUpstreamNameLen+1) }},
		{"stop sequence", "features[0].releases[0].params.stop[0]", func(c *Config) {
			c.Features[0].Releases[0].Params.Stop = []string{strings.Repeat("s", MaxStopBytes+1)}
		}},
		{"a string inside a schema", "features[0].releases[0].schema.description", func(c *Config) {
			c.Features[0].Releases[0].Schema = map[string]any{"description": strings.Repeat("x", MaxTextBytes+1)}
		}},
		{"a retrieval-less release's system prompt", "features[0].releases[0].system", func(c *Config) {
			c.Features[0].Releases[0].System = strings.Repeat("x", MaxTextBytes+1)
		}},
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("the base configuration: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.path+":") {
				t.Fatalf("got %v, want a problem at %s", err, tc.path)
			}
		})
	}
}

// FuzzParse parses arbitrary YAML as a configuration file. It must never
// panic, and whatever it accepts must validate. The seeds hold the billion
// laughs family: nested aliases, wide repetition, merge keys, an alias to
// itself, and the example configuration.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		string(exampleYAML),
		laughs(3), laughs(6), laughs(9),
		"x: &x [a,a,a,a,a,a,a,a,a,a]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x,*x]\nproviders: [*y,*y,*y,*y,*y,*y,*y,*y,*y,*y]\n",
		"base: &b {name: sim, kind: sim}\nproviders:\n  - <<: *b\n    name: other\n",
		"a: &a [*a]\n",
		"providers: &p [{name: s, kind: sim}]\nmodels: *p\n",
		"limits: {max_body_bytes: 99999999999999999999}\n",
		"features:\n  - name: f\n    description: " + strings.Repeat("d", 5000) + "\n",
		"%YAML 1.1\n---\nproviders: []\n...\n---\nmodels: []\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a configuration that does not validate: %v", err)
		}
	})
}

func TestUpstreamReachValidated(t *testing.T) {
	for _, tc := range []struct {
		base, env, want string
	}{
		{"http://169.254.169.254/latest/meta-data/", "", "link-local"},
		{"http://[fd00:ec2::254]/latest/", "", "metadata address"},
		{"http://metadata.google.internal/computeMetadata/v1/", "", "metadata service"},
		{"http://[::ffff:a9fe:a9fe]/", "", "link-local"},
		{"http://2852039166/", "", "unusual form"},
		{"http://0251.0376.0251.0376/", "", "unusual form"},
		{"", "GANTRY_CLUSTER_SECRET", "agent's own secrets"},
		{"", "AWS_SECRET_ACCESS_KEY", "cloud credentials"},
		{"", "google_application_credentials", "GOOGLE_"},
		{"http://127.0.0.1:11434/v1", "OPENAI_API_KEY", ""},
		{"http://10.1.2.3:8000/v1", "", ""},
		{"https://bad.cafe/v1", "", ""},
	} {
		cfg := &Config{Providers: []Provider{{Name: "p", Kind: KindOpenAI, BaseURL: tc.base, APIKeyEnv: tc.env}}}
		err := cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Fatalf("%s %s: %v", tc.base, tc.env, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s %s: %v, want a problem saying %q", tc.base, tc.env, err, tc.want)
		}
	}
}

// A release's and a feature's output caps obey the limits a caller's does:
// the configured limits.max_output_tokens and each model's own cap.
func TestOutputCapsBounded(t *testing.T) {
	base := func() *Config {
		return &Config{
			Providers: []Provider{{Name: "sim", Kind: KindSim}},
			Models:    []Model{{Name: "m", Provider: "sim"}, {Name: "small", Provider: "sim", MaxOutputTokens: 4096}},
			Routes:    []Route{{Name: "r", Targets: []Target{{Model: "m", Weight: 1}}, Fallbacks: []string{"small"}}},
			Features: []Feature{{Name: "f", Labels: Labels{Production: 1},
				Releases: []Release{{Version: 1, Route: "m"}}}},
		}
	}
	cases := []struct {
		name, path string
		edit       func(*Config)
	}{
		{"release above the default limit", "features[0].releases[0].params.max_tokens", func(c *Config) {
			c.Features[0].Releases[0].Params.MaxTokens = DefaultMaxOutputTokens + 1
		}},
		{"release of 10^15", "features[0].releases[0].params.max_tokens", func(c *Config) {
			c.Features[0].Releases[0].Params.MaxTokens = 1e15
		}},
		{"release above a configured limit", "features[0].releases[0].params.max_tokens", func(c *Config) {
			c.Limits.MaxOutputTokens = 1000
			c.Features[0].Releases[0].Params.MaxTokens = 1001
		}},
		{"release above its model's cap", "features[0].releases[0].params.max_tokens", func(c *Config) {
			c.Features[0].Releases[0].Route = "small"
			c.Features[0].Releases[0].Params.MaxTokens = 5000
		}},
		{"release above a fallback's cap", "features[0].releases[0].params.max_tokens", func(c *Config) {
			c.Features[0].Releases[0].Route = "r"
			c.Features[0].Releases[0].Params.MaxTokens = 5000
		}},
		{"feature above the limit", "features[0].max_tokens", func(c *Config) {
			c.Limits.MaxOutputTokens = 1000
			c.Features[0].MaxTokens = 2000
		}},
	}
	ok := base()
	ok.Features[0].Releases[0].Route = "r"
	ok.Features[0].Releases[0].Params.MaxTokens = 4096
	if err := ok.Validate(); err != nil {
		t.Fatalf("a release at its route's cap: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.path+":") {
				t.Fatalf("got %v, want a problem at %s", err, tc.path)
			}
		})
	}
}
