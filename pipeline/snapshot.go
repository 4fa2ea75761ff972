package pipeline

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"gantry/config"
	"gantry/pipeline/budget"
	"gantry/pipeline/chat"
	"gantry/pipeline/limit"
	"gantry/pipeline/policy"
	"gantry/pipeline/price"
	"gantry/pipeline/prompt"
	"gantry/pipeline/provider"
	"gantry/pipeline/provider/sim"
	"gantry/pipeline/release"
	"gantry/pipeline/validate"
)

// Snapshot is an immutable, compiled view of one configuration. The gateway
// reads it through an atomic pointer, so a configuration change is one
// pointer swap and a request sees one consistent configuration throughout.
type Snapshot struct {
	Config   *config.Config
	Limits   config.Limits
	models   map[string]*Target
	routes   map[string]*Route // routes by name, and a one-target route per model
	features map[string]*Feature
	keys     map[string]*config.Key // by hash
	modelIDs []string               // for GET /v1/models, sorted
	Loaded   time.Time
	// Policy holds the features' compiled safety policies.
	Policy *policy.Engine
	// Rate limits and budgets by key and feature, so a call finds its
	// scopes without scanning the configuration.
	limits  *limit.Index
	budgets *budget.Index
}

// Target is a model ready to call: its price and its provider.
type Target struct {
	Model    config.Model
	Provider provider.Provider
	Kind     string
	// Price is what a call costs, from the configuration or the price
	// table, and says so; an unknown price is flagged on every trace.
	Price price.Quote
}

// Route is a compiled route: its policy with defaults filled in.
type Route struct {
	config.Route
	targets   []*Target
	weights   []int
	fallbacks []*Target
	every     []*Target // targets, then fallbacks; a cascade's tiers' in order
	// tiers are a cascade's routes, cheapest first; a cascade has no
	// targets of its own.
	tiers []*Route
}

// Feature is a compiled feature with its releases.
type Feature struct {
	config.Feature
	releases map[int]*Release
}

// Release is a compiled release of a feature.
type Release struct {
	config.Release
	Feature string
	ID      string
	Hash    string
	Route   *Route
	Prompt  *prompt.Template
	Schema  *validate.Schema // nil when the release has no schema
	Tools   *validate.Tools
	// format asks the upstream for output matching the schema; tools are
	// the release's tools on the wire.
	format *chat.ResponseFormat
	tools  []chat.Tool
}

// ProviderSet builds and caches providers. Providers hold connection pools,
// so an unchanged provider is reused across snapshots.
type ProviderSet struct {
	// CanarySecret keys the leak canaries planted in system instructions;
	// every agent of a cluster uses the same one.
	CanarySecret []byte
	// Prices is the price table for models the configuration gives no
	// price; nil means the embedded one.
	Prices *price.Table
	// KeyEnv checks a provider's api_key_env against the agent's rules
	// for the variables it reads keys from, for every provider, used by a
	// model or not: a configuration naming a variable the agent would
	// never read is refused when applied, not when a model first uses
	// it. Nil checks nothing beyond validation.
	KeyEnv func(name string) error
	build  func(config.Provider) (provider.Provider, error)
	cache  map[string]cachedProvider
}

type cachedProvider struct {
	cfg config.Provider
	p   provider.Provider
}

// NewProviderSet returns a set that builds providers with build, whose
// errors name the provider.
func NewProviderSet(build func(config.Provider) (provider.Provider, error)) *ProviderSet {
	return &ProviderSet{build: build, cache: map[string]cachedProvider{}}
}

func (s *ProviderSet) prices() *price.Table {
	if s.Prices != nil {
		return s.Prices
	}
	return price.Default()
}

// ModelPrice is the price a model is charged at and where it came from,
// for listings such as GET /admin/v1/models and `gantry get models`.
func (s *Snapshot) ModelPrice(name string) (price.Quote, bool) {
	t, ok := s.models[name]
	if !ok {
		return price.Quote{}, false
	}
	return t.Price, true
}

func (s *ProviderSet) get(c config.Provider) (provider.Provider, error) {
	if old, ok := s.cache[c.Name]; ok && sameProvider(old.cfg, c) {
		return old.p, nil
	}
	p, err := s.buildOne(c)
	if err != nil {
		return nil, err // the builder names the provider
	}
	s.cache[c.Name] = cachedProvider{cfg: c, p: p}
	return p, nil
}

// buildOne builds the simulator itself, so the sim kind works wherever a
// set is used, and every upstream kind with the set's builder.
func (s *ProviderSet) buildOne(c config.Provider) (provider.Provider, error) {
	if c.Kind == config.KindSim {
		var set config.SimSettings
		if c.Sim != nil {
			set = *c.Sim
		}
		return sim.New(set), nil
	}
	return s.build(c)
}

func sameProvider(a, b config.Provider) bool {
	if a.Name != b.Name || a.Kind != b.Kind || a.BaseURL != b.BaseURL || a.APIKeyEnv != b.APIKeyEnv ||
		a.Preset != b.Preset || a.APIVersion != b.APIVersion || a.Auth != b.Auth || a.Region != b.Region {
		return false
	}
	if (a.AWS == nil) != (b.AWS == nil) || a.AWS != nil && *a.AWS != *b.AWS {
		return false
	}
	if (a.Sim == nil) != (b.Sim == nil) {
		return false
	}
	return a.Sim == nil || *a.Sim == *b.Sim
}

// Compile validates cfg and builds a snapshot. Providers come from set; a
// snapshot is only built when every part compiles, so a bad change never
// replaces a good configuration.
func Compile(cfg *config.Config, set *ProviderSet) (*Snapshot, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Snapshot{
		Config:   cfg,
		Limits:   cfg.Limits.WithDefaults(),
		models:   map[string]*Target{},
		routes:   map[string]*Route{},
		features: map[string]*Feature{},
		keys:     map[string]*config.Key{},
		Loaded:   time.Now(),
	}
	providers := map[string]config.Provider{}
	for _, p := range cfg.Providers {
		providers[p.Name] = p
		if p.APIKeyEnv != "" && set.KeyEnv != nil {
			if err := set.KeyEnv(p.APIKeyEnv); err != nil {
				return nil, fmt.Errorf("provider %q: %w", p.Name, err)
			}
		}
	}
	for _, m := range cfg.Models {
		pc := providers[m.Provider]
		p, err := set.get(pc)
		if err != nil {
			return nil, err
		}
		kind := pc.Kind
		if preset := pc.PresetName(); preset != "" {
			kind = preset
		}
		t := &Target{Model: m, Provider: p, Kind: pc.Kind, Price: set.prices().Quote(m, kind)}
		s.models[m.Name] = t
		s.routes[m.Name] = &Route{
			Route:   config.Route{Name: m.Name, Targets: []config.Target{{Model: m.Name, Weight: 1}}}.WithDefaults(),
			targets: []*Target{t},
			weights: []int{1},
			every:   []*Target{t},
		}
		s.modelIDs = append(s.modelIDs, m.Name)
	}
	for _, rc := range cfg.Routes {
		if len(rc.Cascade) > 0 {
			continue // after the routes its tiers name
		}
		r := &Route{Route: rc.WithDefaults()}
		for _, t := range rc.Targets {
			r.targets = append(r.targets, s.models[t.Model])
			r.weights = append(r.weights, t.Weight)
		}
		for _, f := range rc.Fallbacks {
			r.fallbacks = append(r.fallbacks, s.models[f])
		}
		r.every = append(append([]*Target(nil), r.targets...), r.fallbacks...)
		s.routes[rc.Name] = r
		s.modelIDs = append(s.modelIDs, rc.Name)
	}
	for _, rc := range cfg.Routes {
		if len(rc.Cascade) == 0 {
			continue
		}
		r := &Route{Route: rc.WithDefaults()}
		for _, t := range rc.Cascade {
			r.tiers = append(r.tiers, s.routes[t])
			r.every = append(r.every, s.routes[t].every...)
		}
		s.routes[rc.Name] = r
		s.modelIDs = append(s.modelIDs, rc.Name)
	}
	for _, fc := range cfg.Features {
		f := &Feature{Feature: fc, releases: map[int]*Release{}}
		for _, rc := range fc.Releases {
			rel, err := s.compileRelease(fc.Name, rc)
			if err != nil {
				return nil, err
			}
			f.releases[rc.Version] = rel
		}
		s.features[fc.Name] = f
		s.modelIDs = append(s.modelIDs, FeaturePrefix+fc.Name)
	}
	eng, err := policy.New(cfg, set.CanarySecret)
	if err != nil {
		return nil, err
	}
	s.Policy = eng
	for i := range cfg.Keys {
		k := &cfg.Keys[i]
		s.keys[k.Hash] = k
	}
	sort.Strings(s.modelIDs)
	s.limits, s.budgets = limit.NewIndex(cfg), budget.NewIndex(cfg)
	return s, nil
}

func (s *Snapshot) compileRelease(feature string, rc config.Release) (*Release, error) {
	where := fmt.Sprintf("feature %s release %d", feature, rc.Version)
	comp, err := release.Compile(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	rel := &Release{Release: rc, Feature: feature, ID: config.ReleaseID(feature, rc.Version), Hash: comp.Hash,
		Route: s.routes[rc.Route], Prompt: comp.Template, Schema: comp.Schema}
	if len(rc.Tools) > 0 {
		rel.Tools = comp.Tools
	}
	if rc.Schema != nil {
		raw, err := json.Marshal(rc.Schema)
		if err != nil {
			return nil, fmt.Errorf("%s: schema: %w", where, err)
		}
		strict := false
		rel.format = &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: schemaName(feature), Schema: raw, Strict: &strict}}
	}
	for _, t := range rc.Tools {
		var params json.RawMessage
		if t.Parameters != nil {
			if params, err = json.Marshal(t.Parameters); err != nil {
				return nil, fmt.Errorf("%s: tool %s: %w", where, t.Name, err)
			}
		}
		rel.tools = append(rel.tools, chat.Tool{Type: "function", Function: chat.Function{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	return rel, nil
}

// schemaName makes a feature name fit OpenAI's pattern for schema names.
func schemaName(feature string) string {
	b := []byte(feature)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// all lists the route's targets and then its fallbacks. The slice is
// shared; callers must not change it.
func (r *Route) all() []*Target {
	return r.every
}

// ChatLimits are the configured bounds of a chat request, for decoding it.
func (s *Snapshot) ChatLimits() chat.Limits {
	return chat.Limits{MaxMessages: s.Limits.MaxMessages, MaxOutputTokens: s.Limits.MaxOutputTokens, MaxChoices: s.Limits.MaxChoices}
}

// outputCap is the most output every model of the route can produce in one
// call, 0 when none of them says.
func (r *Route) outputCap() (limit int, model string) {
	for _, t := range r.all() {
		if m := t.Model.MaxOutputTokens; m > 0 && (limit == 0 || m < limit) {
			limit, model = m, t.Model.Name
		}
	}
	return limit, model
}

// choicesUnsupported names a model of the route whose provider cannot
// answer with more than one choice, or "" when all can.
func (r *Route) choicesUnsupported() string {
	for _, t := range r.all() {
		if !provider.SupportsChoices(t.Kind) {
			return t.Model.Name
		}
	}
	return ""
}

// Route resolves a model or route name. A bare model is a route of one
// target with the default policy.
func (s *Snapshot) Route(name string) (*Route, bool) {
	r, ok := s.routes[name]
	return r, ok
}

// Key finds a virtual key by the hash of its secret.
func (s *Snapshot) Key(hash string) (*config.Key, bool) {
	k, ok := s.keys[hash]
	return k, ok
}

// FeaturePrefix marks a model name that names a feature.
const FeaturePrefix = "feature/"

// ModelIDs lists every name a client may send as model, sorted.
func (s *Snapshot) ModelIDs() []string { return s.modelIDs }

// Feature returns a compiled feature.
func (s *Snapshot) Feature(name string) (*Feature, bool) {
	f, ok := s.features[name]
	return f, ok
}

// Release returns a compiled release of the feature.
func (f *Feature) Release(version int) *Release { return f.releases[version] }
