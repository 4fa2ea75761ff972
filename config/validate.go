package config

import (
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	case !validNameChars(name):
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
		path := index("providers", i)
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
		path := index("models", i)
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

	// plain are what a tier, a judge or a summary may name: models and
	// routes that are not cascades.
	cascades, plain := map[string]bool{}, map[string]bool{}
	for m := range models {
		plain[m] = true
	}
	for _, r := range cfg.Routes {
		if len(r.Cascade) > 0 {
			cascades[r.Name] = true
		} else if r.Name != "" {
			plain[r.Name] = true
		}
	}
	routes := map[string]bool{}
	for i, r := range cfg.Routes {
		path := index("routes", i)
		c.name(path+".name", "route", r.Name, routes)
		if models[r.Name] {
			c.add(path+".name", "route %q has the name of a model; clients could not tell them apart", r.Name)
		}
		c.cascade(path, r, models, cascades, plain)
		if len(r.Targets) == 0 && len(r.Cascade) == 0 {
			c.add(path+".targets", "a route needs at least one target or a cascade")
		}
		total := 0
		for j, t := range r.Targets {
			tp := index(path+".targets", j)
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
	outputCap := cfg.outputCaps()
	for i, f := range cfg.Features {
		path := index("features", i)
		c.name(path+".name", "feature", f.Name, features)
		if len(f.Description) > MaxDescriptionBytes {
			c.add(path+".description", "longer than %d bytes", MaxDescriptionBytes)
		}
		outCap := min(cfg.Limits.WithDefaults().MaxOutputTokens, MaxOutputTokensLimit)
		if f.MaxTokens < 0 || f.MaxTokens > outCap {
			c.add(path+".max_tokens", "%d is outside 0..%d (limits.max_output_tokens, the most any call may ask for)", f.MaxTokens, outCap)
		}
		versions := map[int]bool{}
		for j, r := range f.Releases {
			rp := index(path+".releases", j)
			if r.Version <= 0 {
				c.add(rp+".version", "versions start at 1")
			} else if versions[r.Version] {
				c.add(rp+".version", "version %d is defined twice", r.Version)
			}
			versions[r.Version] = true
			c.release(rp, r, routes, models)
			c.costRelease(rp, r, plain)
			// A release's output cap obeys the limits a caller's does.
			if r.Params.MaxTokens > outCap {
				c.add(rp+".params.max_tokens", "%d is more than limits.max_output_tokens (%d), the most any call may ask for", r.Params.MaxTokens, outCap)
			} else if limit, model := outputCap(r.Route); limit > 0 && r.Params.MaxTokens > limit {
				c.add(rp+".params.max_tokens", "%d is more than model %s produces in one call (%d)", r.Params.MaxTokens, model, limit)
			}
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
		path := index("keys", i)
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
	c.alerts(cfg.Alerts)
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
	c.rate(path+".empty_rate", s.EmptyRate)
	c.rate(path+".refusal_rate", s.RefusalRate)
	if s.EmptyRate+s.RefusalRate > 1 {
		c.add(path+".refusal_rate", "empty_rate and refusal_rate add up to more than 1")
	}
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

// outputCaps returns what caps the output of a route or model: the
// smallest max_output_tokens of the models it may call, and that model; 0
// when none declares one.
func (cfg *Config) outputCaps() func(routeOrModel string) (int, string) {
	caps := map[string]int{}
	for _, m := range cfg.Models {
		caps[m.Name] = m.MaxOutputTokens
	}
	routes := map[string]Route{}
	for _, r := range cfg.Routes {
		routes[r.Name] = r
	}
	return func(name string) (int, string) {
		names := []string{name}
		if r, ok := routes[name]; ok {
			names = names[:0]
			for _, t := range r.Targets {
				names = append(names, t.Model)
			}
			names = append(names, r.Fallbacks...)
		}
		limit, which := 0, ""
		for _, n := range names {
			if m := caps[n]; m > 0 && (limit == 0 || m < limit) {
				limit, which = m, n
			}
		}
		return limit, which
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
		mp := index(path+".template", i)
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
		vp := index(path+".variables", i)
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
	// at is the path so far, one step per level, made into a string only
	// when a problem is reported: every configuration change checks every
	// string, and most never need their path.
	at := make([]pathSeg, 0, 16)
	var walk func(v reflect.Value, depth int)
	step := func(v reflect.Value, s pathSeg, depth int) {
		at = append(at, s)
		walk(v, depth+1)
		at = at[:len(at)-1]
	}
	walk = func(v reflect.Value, depth int) {
		if depth > 64 || !v.IsValid() {
			return
		}
		switch v.Kind() {
		case reflect.String:
			if v.Len() > MaxTextBytes {
				c.add(pathOf(at), "a string of %d bytes, more than the limit of %d", v.Len(), MaxTextBytes)
			}
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), depth+1)
			}
		case reflect.Struct:
			for i, name := range fieldNames(v.Type()) {
				if name != "" {
					step(v.Field(i), pathSeg{name: name, index: -1}, depth)
				}
			}
		case reflect.Slice, reflect.Array:
			if k := v.Type().Elem().Kind(); k != reflect.String && k != reflect.Struct && k != reflect.Pointer && k != reflect.Interface &&
				k != reflect.Slice && k != reflect.Map {
				return // numbers and flags: nothing to check inside
			}
			for i := 0; i < v.Len(); i++ {
				step(v.Index(i), pathSeg{index: i}, depth)
			}
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				k := fmt.Sprint(it.Key().Interface())
				if len(k) > MaxTextBytes {
					c.add(pathOf(at), "a key of %d bytes, more than the limit of %d", len(k), MaxTextBytes)
					continue
				}
				step(it.Value(), pathSeg{name: k, index: -1}, depth)
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), 0)
}

// pathSeg is one step of the path to a value: a named field or key, or a
// list index (index >= 0).
type pathSeg struct {
	name  string
	index int
}

func pathOf(at []pathSeg) string {
	path := ""
	for _, s := range at {
		if s.index >= 0 {
			path = fmt.Sprintf("%s[%d]", path, s.index)
		} else {
			path = joinPath(path, s.name)
		}
	}
	return path
}

// fieldNames are the YAML names of a struct type's fields, "" for the
// unexported; cached, since the same few types are walked every time.
func fieldNames(t reflect.Type) []string {
	if names, ok := fieldNameCache.Load(t); ok {
		return names.([]string)
	}
	names := make([]string, t.NumField())
	for i := range names {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			name = strings.ToLower(f.Name)
		}
		names[i] = name
	}
	fieldNameCache.Store(t, names)
	return names
}

var fieldNameCache sync.Map // reflect.Type -> []string

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// ValidName reports whether s is a valid name of a configuration object:
// 1..MaxNameLen letters, digits and . _ : -, starting with a letter or digit.
func ValidName(s string) bool {
	return s != "" && len(s) <= MaxNameLen && validNameChars(s)
}

// validNameChars reports whether a non-empty name is letters, digits and
// . _ : -, starting with a letter or digit. A loop, not a regular
// expression: every configuration change checks every name.
func validNameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return s != ""
}

// index is path[i], made without fmt: validation builds one per object.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// ValidateKey checks one key of a configuration that Validate accepted
// before only that key changed: the same rules Validate applies to it, at
// the cost of that key rather than of the whole configuration. The
// cluster changes keys at run time one at a time; checking everything for
// each would make every key change cost as much as every key.
func (cfg *Config) ValidateKey(name string) error {
	c := &checker{}
	c.count("keys", len(cfg.Keys))
	i := -1
	for j, k := range cfg.Keys {
		if k.Name == name {
			i = j
		}
	}
	if i < 0 {
		return nil
	}
	k := cfg.Keys[i]
	path := index("keys", i)
	c.name(path+".name", "key", k.Name, map[string]bool{})
	if !validHash(k.Hash) {
		c.add(path+".hash", "want sha256: and 64 hex digits (the hash of the key, never the key)")
	}
	for j, other := range cfg.Keys {
		switch {
		case j == i:
		case other.Name == k.Name:
			c.add(path+".name", "key %q is defined twice", k.Name)
		case other.Hash == k.Hash:
			c.add(path+".hash", "two keys have the same hash")
		}
	}
	for j, f := range k.Features {
		if !slices.ContainsFunc(cfg.Features, func(x Feature) bool { return x.Name == f }) {
			c.add(index(path+".features", j), "unknown feature %q", f)
		}
	}
	for j, m := range k.Models {
		if !slices.ContainsFunc(cfg.Models, func(x Model) bool { return x.Name == m }) && !slices.ContainsFunc(cfg.Routes, func(r Route) bool { return r.Name == m }) {
			c.add(index(path+".models", j), "unknown model or route %q", m)
		}
	}
	c.rateLimit(path+".rate_limit", k.RateLimit)
	if k.MaxBudgetUSD < 0 || k.MaxBudgetUSD > MaxBudgetUSD || math.IsNaN(k.MaxBudgetUSD) {
		c.add(path+".max_budget_usd", "%v is outside 0..%g USD", k.MaxBudgetUSD, MaxBudgetUSD)
	}
	if k.Team != "" && len(cfg.Teams) > 0 && !slices.ContainsFunc(cfg.Teams, func(t Team) bool { return t.Name == k.Team }) {
		c.add(path+".team", "unknown team %q", k.Team)
	}
	one := Config{Keys: []Key{k}}
	n := len(c.problems)
	c.stringSizes(&one)
	for j := n; j < len(c.problems); j++ {
		c.problems[j].Path = path + strings.TrimPrefix(c.problems[j].Path, "keys[0]")
	}
	if len(c.problems) > 0 {
		return c.problems
	}
	return nil
}
