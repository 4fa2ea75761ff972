package config

import (
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"strings"
)

// ValidationError lists every problem found in a configuration.
type ValidationError []Problem

func (v ValidationError) Error() string {
	msgs := make([]string, len(v))
	for i, p := range v {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// Limits on names and sizes, so a configuration cannot grow without bound.
const (
	MaxNameLen      = 64
	MaxItems        = 10000
	MaxPricePerM    = 10000 // USD per million tokens; more is a typo
	MaxTextBytes    = 256 << 10
	MaxTemplateMsgs = 64
	// Bounds of strings that are not names or prompt text; every other
	// string of a configuration is bounded by MaxTextBytes.
	MaxDescriptionBytes     = 4 << 10  // a feature's description
	MaxToolDescriptionBytes = 16 << 10 // a tool's, which the model reads
	MaxURLLen               = 2048
	MaxEnvNameLen           = 128
	MaxUpstreamNameLen      = 256
	MaxStops                = 4 // a release's stop sequences, as a caller's
	MaxStopBytes            = 256
)

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

type checker struct{ problems ValidationError }

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (c *checker) name(path, kind, name string, seen map[string]bool) {
	switch {
	case name == "":
		c.add(path, "%s name is empty", kind)
	case len(name) > MaxNameLen:
		c.add(path, "%s name is longer than %d characters", kind, MaxNameLen)
	case !nameRE.MatchString(name):
		c.add(path, "%s name %q may hold only letters, digits and . _ : - and must start with a letter or digit", kind, name)
	case seen[name]:
		c.add(path, "%s %q is defined twice", kind, name)
	}
	seen[name] = true
}

func (c *checker) count(path string, n int) {
	if n > MaxItems {
		c.add(path, "%d entries, more than the limit of %d", n, MaxItems)
	}
}

// Validate checks names, values and every reference between objects. It
// returns a ValidationError listing all problems, or nil.
func (cfg *Config) Validate() error {
	c := &checker{}
	c.count("providers", len(cfg.Providers))
	c.count("models", len(cfg.Models))
	c.count("routes", len(cfg.Routes))
	c.count("features", len(cfg.Features))
	c.count("keys", len(cfg.Keys))
	collections := c.collections(cfg.Collections)

	providers := map[string]bool{}
	for i, p := range cfg.Providers {
		path := fmt.Sprintf("providers[%d]", i)
		c.name(path+".name", "provider", p.Name, providers)
		switch p.Kind {
		case KindOpenAI, KindAnthropic, KindGemini, KindAzure, KindBedrock, KindMistral, KindGroq, KindTogether,
			KindFireworks, KindDeepSeek, KindOpenRouter, KindVLLM, KindOllama, KindLlamaCpp:
			if p.BaseURL != "" {
				if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					c.add(path+".base_url", "%q is not an http or https URL", p.BaseURL)
				} else if why := ForbiddenHost(u.Hostname()); why != "" {
					c.add(path+".base_url", "an upstream may not be at %s: %s", u.Host, why)
				}
			}
			if p.Sim != nil {
				c.add(path+".sim", "sim settings apply only to kind %q", KindSim)
			}
		case KindSim:
			if p.Sim != nil {
				c.sim(path+".sim", *p.Sim)
			}
		default:
			c.add(path+".kind", "unknown kind %q (want one of %v)", p.Kind, Kinds)
		}
		c.providerSettings(path, p)
		if len(p.BaseURL) > MaxURLLen {
			c.add(path+".base_url", "longer than %d bytes", MaxURLLen)
		}
		if len(p.APIKeyEnv) > MaxEnvNameLen {
			c.add(path+".api_key_env", "longer than %d bytes; it names a variable", MaxEnvNameLen)
		} else if p.APIKeyEnv != "" && !envNameRE.MatchString(p.APIKeyEnv) {
			c.add(path+".api_key_env", "%q is not an environment variable name (the key itself never goes in the config)", p.APIKeyEnv)
		} else if why := ForbiddenEnv(p.APIKeyEnv); why != "" {
			c.add(path+".api_key_env", "%s", why)
		}
	}

	models := map[string]bool{}
	for i, m := range cfg.Models {
		path := fmt.Sprintf("models[%d]", i)
		c.name(path+".name", "model", m.Name, models)
		if !providers[m.Provider] {
			c.add(path+".provider", "unknown provider %q", m.Provider)
		}
		if len(m.Upstream) > MaxUpstreamNameLen {
			c.add(path+".upstream", "longer than %d bytes", MaxUpstreamNameLen)
		}
		c.price(path+".price.input", m.Price.Input)
		c.price(path+".price.output", m.Price.Output)
		c.price(path+".price.cached_input", m.Price.CachedInput)
		c.price(path+".price.reasoning", m.Price.Reasoning)
		if m.MaxOutputTokens < 0 || m.MaxOutputTokens > MaxOutputTokensLimit {
			c.add(path+".max_output_tokens", "%d is outside 0..%d", m.MaxOutputTokens, MaxOutputTokensLimit)
		}
	}

	routes := map[string]bool{}
	for i, r := range cfg.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		c.name(path+".name", "route", r.Name, routes)
		if models[r.Name] {
			c.add(path+".name", "route %q has the name of a model; clients could not tell them apart", r.Name)
		}
		if len(r.Targets) == 0 {
			c.add(path+".targets", "a route needs at least one target")
		}
		total := 0
		for j, t := range r.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", path, j)
			if !models[t.Model] {
				c.add(tp+".model", "unknown model %q", t.Model)
			}
			if t.Weight < 0 || t.Weight > 1000 {
				c.add(tp+".weight", "weight %d is outside 0..1000", t.Weight)
			}
			total += t.Weight
		}
		if len(r.Targets) > 1 && total == 0 {
			c.add(path+".targets", "all weights are 0; give at least one target a weight")
		}
		for j, f := range r.Fallbacks {
			if !models[f] {
				c.add(fmt.Sprintf("%s.fallbacks[%d]", path, j), "unknown model %q", f)
			}
		}
		if r.Retry.Attempts < 0 || r.Retry.Attempts > 10 {
			c.add(path+".retry.attempts", "%d is outside 0..10", r.Retry.Attempts)
		}
		if r.Breaker.Failures < 0 {
			c.add(path+".breaker.failures", "negative")
		}
	}

	features := map[string]bool{}
	for i, f := range cfg.Features {
		path := fmt.Sprintf("features[%d]", i)
		c.name(path+".name", "feature", f.Name, features)
		if len(f.Description) > MaxDescriptionBytes {
			c.add(path+".description", "longer than %d bytes", MaxDescriptionBytes)
		}
		if f.MaxTokens < 0 || f.MaxTokens > 1<<20 {
			c.add(path+".max_tokens", "%d is outside 0..%d", f.MaxTokens, 1<<20)
		}
		versions := map[int]bool{}
		for j, r := range f.Releases {
			rp := fmt.Sprintf("%s.releases[%d]", path, j)
			if r.Version <= 0 {
				c.add(rp+".version", "versions start at 1")
			} else if versions[r.Version] {
				c.add(rp+".version", "version %d is defined twice", r.Version)
			}
			versions[r.Version] = true
			c.release(rp, r, routes, models)
			if r.Retrieval != nil {
				c.problems = append(c.problems, CheckRetrieval(rp+".retrieval", *r.Retrieval, collections)...)
			}
		}
		if len(f.Releases) == 0 {
			c.add(path+".releases", "a feature needs at least one release")
		} else if !versions[f.Labels.Production] {
			c.add(path+".labels.production", "no release with version %d", f.Labels.Production)
		}
		if f.Labels.Canary != 0 && !versions[f.Labels.Canary] {
			c.add(path+".labels.canary", "no release with version %d", f.Labels.Canary)
		}
		if f.Labels.CanaryWeight < 0 || f.Labels.CanaryWeight > 100 {
			c.add(path+".labels.canary_weight", "%d is outside 0..100", f.Labels.CanaryWeight)
		}
		if f.Labels.CanaryWeight > 0 && f.Labels.Canary == 0 {
			c.add(path+".labels.canary_weight", "a canary weight needs a canary release")
		}
	}

	keys := map[string]bool{}
	hashes := map[string]bool{}
	for i, k := range cfg.Keys {
		path := fmt.Sprintf("keys[%d]", i)
		c.name(path+".name", "key", k.Name, keys)
		if !validHash(k.Hash) {
			c.add(path+".hash", "want sha256: and 64 hex digits (the hash of the key, never the key)")
		} else if hashes[k.Hash] {
			c.add(path+".hash", "two keys have the same hash")
		}
		hashes[k.Hash] = true
		for j, f := range k.Features {
			if !features[f] {
				c.add(fmt.Sprintf("%s.features[%d]", path, j), "unknown feature %q", f)
			}
		}
		for j, m := range k.Models {
			if !models[m] && !routes[m] {
				c.add(fmt.Sprintf("%s.models[%d]", path, j), "unknown model or route %q", m)
			}
		}
	}

	if cfg.Limits.MaxBodyBytes < 0 || cfg.Limits.MaxBodyBytes > 64<<20 {
		c.add("limits.max_body_bytes", "%d is outside 0..%d", cfg.Limits.MaxBodyBytes, 64<<20)
	}
	if cfg.Limits.MaxMessages < 0 || cfg.Limits.MaxMessages > 4096 {
		c.add("limits.max_messages", "%d is outside 0..4096", cfg.Limits.MaxMessages)
	}
	if cfg.Limits.MaxOutputTokens < 0 || cfg.Limits.MaxOutputTokens > MaxOutputTokensLimit {
		c.add("limits.max_output_tokens", "%d is outside 0..%d", cfg.Limits.MaxOutputTokens, MaxOutputTokensLimit)
	}
	if cfg.Limits.MaxChoices < 0 || cfg.Limits.MaxChoices > MaxChoicesLimit {
		c.add("limits.max_choices", "%d is outside 0..%d", cfg.Limits.MaxChoices, MaxChoicesLimit)
	}
	cfg.validatePolicy(c)
	c.stringSizes(cfg)
	cfg.validateEval(c)
	if len(c.problems) > 0 {
		return c.problems
	}
	return nil
}

func (c *checker) price(path string, v float64) {
	if v < 0 || v > MaxPricePerM || math.IsNaN(v) {
		c.add(path, "price %v is outside 0..%d USD per million tokens", v, MaxPricePerM)
	}
}

func (c *checker) rate(path string, v float64) {
	if v < 0 || v > 1 || math.IsNaN(v) {
		c.add(path, "rate %v is outside 0..1", v)
	}
}

func (c *checker) sim(path string, s SimSettings) {
	c.rate(path+".error_rate", s.ErrorRate)
	c.rate(path+".rate_limit_rate", s.RateLimitRate)
	c.rate(path+".timeout_rate", s.TimeoutRate)
	c.rate(path+".cut_rate", s.CutRate)
	c.rate(path+".invalid_rate", s.InvalidRate)
	if s.LatencyP99 != 0 && s.LatencyP99 < s.LatencyP50 {
		c.add(path+".latency_p99", "p99 %s is below p50 %s", s.LatencyP99, s.LatencyP50)
	}
	if s.TokensPerSecond < 0 {
		c.add(path+".tokens_per_second", "negative")
	}
	if s.OutputTokens < 0 || s.OutputTokens > 1<<16 {
		c.add(path+".output_tokens", "%d is outside 0..%d", s.OutputTokens, 1<<16)
	}
}

func (c *checker) release(path string, r Release, routes, models map[string]bool) {
	if !routes[r.Route] && !models[r.Route] {
		c.add(path+".route", "unknown route or model %q", r.Route)
	}
	if len(r.System) > MaxTextBytes {
		c.add(path+".system", "longer than %d bytes", MaxTextBytes)
	}
	if len(r.Template) > MaxTemplateMsgs {
		c.add(path+".template", "more than %d messages", MaxTemplateMsgs)
	}
	for i, m := range r.Template {
		mp := fmt.Sprintf("%s.template[%d]", path, i)
		switch m.Role {
		case "system", "user", "assistant", "developer":
		default:
			c.add(mp+".role", "unknown role %q (want system, developer, user or assistant)", m.Role)
		}
		if len(m.Content) > MaxTextBytes {
			c.add(mp+".content", "longer than %d bytes", MaxTextBytes)
		}
	}
	vars := map[string]bool{}
	for i, v := range r.Variables {
		vp := fmt.Sprintf("%s.variables[%d]", path, i)
		c.name(vp+".name", "variable", v.Name, vars)
		switch v.Type {
		case "", "string", "number", "boolean", "list", "object":
		default:
			c.add(vp+".type", "unknown type %q (want string, number, boolean, list or object)", v.Type)
		}
	}
	if r.Repair < 0 || r.Repair > 3 {
		c.add(path+".repair", "%d is outside 0..3", r.Repair)
	}
	if r.Params.MaxTokens < 0 {
		c.add(path+".params.max_tokens", "negative")
	}
	if t := r.Params.Temperature; t != nil && (*t < 0 || *t > 2) {
		c.add(path+".params.temperature", "%v is outside 0..2", *t)
	}
	if p := r.Params.TopP; p != nil && (*p < 0 || *p > 1) {
		c.add(path+".params.top_p", "%v is outside 0..1", *p)
	}
	if r.Schema != nil {
		if _, ok := r.Schema.(map[string]any); !ok {
			if b, ok := r.Schema.(bool); !ok || !b {
				c.add(path+".schema", "a JSON Schema is a mapping")
			}
		}
	}
	tools := map[string]bool{}
	for i, t := range r.Tools {
		c.name(fmt.Sprintf("%s.tools[%d].name", path, i), "tool", t.Name, tools)
		if len(t.Description) > MaxToolDescriptionBytes {
			c.add(fmt.Sprintf("%s.tools[%d].description", path, i), "longer than %d bytes", MaxToolDescriptionBytes)
		}
	}
	if len(r.Params.Stop) > MaxStops {
		c.add(path+".params.stop", "%d stop sequences, more than %d", len(r.Params.Stop), MaxStops)
	}
	for i, st := range r.Params.Stop {
		if st == "" || len(st) > MaxStopBytes {
			c.add(fmt.Sprintf("%s.params.stop[%d]", path, i), "a stop sequence is 1..%d bytes", MaxStopBytes)
		}
	}
}

// stringSizes bounds every string of the configuration that no rule above
// bounds more tightly, schemas and tool parameters included, and names
// where a longer one is.
func (c *checker) stringSizes(cfg *Config) {
	var walk func(v reflect.Value, path string, depth int)
	walk = func(v reflect.Value, path string, depth int) {
		if depth > 64 || !v.IsValid() {
			return
		}
		switch v.Kind() {
		case reflect.String:
			if v.Len() > MaxTextBytes {
				c.add(path, "a string of %d bytes, more than the limit of %d", v.Len(), MaxTextBytes)
			}
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path, depth+1)
			}
		case reflect.Struct:
			t := v.Type()
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "" || name == "-" {
					name = strings.ToLower(f.Name)
				}
				walk(v.Field(i), joinPath(path, name), depth+1)
			}
		case reflect.Slice, reflect.Array:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				k := fmt.Sprint(it.Key().Interface())
				if len(k) > MaxTextBytes {
					c.add(path, "a key of %d bytes, more than the limit of %d", len(k), MaxTextBytes)
					continue
				}
				walk(it.Value(), joinPath(path, k), depth+1)
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "", 0)
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// ValidName reports whether s is a valid name of a configuration object:
// 1..MaxNameLen letters, digits and . _ : -, starting with a letter or digit.
func ValidName(s string) bool {
	return s != "" && len(s) <= MaxNameLen && nameRE.MatchString(s)
}
