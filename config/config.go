// Package config holds Gantry's domain types: providers, models and their
// prices, routes, features with their releases and labels, and virtual keys.
// The same types describe a YAML file today and the replicated state of the
// cluster later, so they are plain data with YAML and JSON tags and no
// behaviour beyond validation and hashing.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is one complete configuration of an agent.
type Config struct {
	Providers []Provider `yaml:"providers" json:"providers,omitempty"`
	Models    []Model    `yaml:"models" json:"models,omitempty"`
	Routes    []Route    `yaml:"routes" json:"routes,omitempty"`
	Features  []Feature  `yaml:"features" json:"features,omitempty"`
	Keys      []Key      `yaml:"keys" json:"keys,omitempty"`
	Limits    Limits     `yaml:"limits" json:"limits"`
	// Collections are the document sets releases retrieve from.
	Collections []Collection `yaml:"collections" json:"collections,omitempty"`
	Teams       []Team       `yaml:"teams" json:"teams,omitempty"`
	Budgets     []Budget     `yaml:"budgets" json:"budgets,omitempty"`
	// Alerts are the thresholds of the alerts agents raise on traffic.
	Alerts Alerts `yaml:"alerts" json:"alerts,omitzero"`
}

// Provider kinds.
const (
	KindOpenAI    = "openai"
	KindAnthropic = "anthropic"
	KindSim       = "sim"
)

// Provider is an upstream that serves models. The API key is never part of
// the configuration: APIKeyEnv names the environment variable that holds it.
type Provider struct {
	Name      string       `yaml:"name" json:"name"`
	Kind      string       `yaml:"kind" json:"kind"`
	BaseURL   string       `yaml:"base_url" json:"base_url,omitempty"`
	APIKeyEnv string       `yaml:"api_key_env" json:"api_key_env,omitempty"`
	Sim       *SimSettings `yaml:"sim" json:"sim,omitempty"`
	// Preset names an OpenAI-compatible service for kind openai (groq,
	// ollama, …), with its default base URL and quirks.
	Preset string `yaml:"preset" json:"preset,omitempty"`
	// APIVersion and Auth are Azure's: the api-version query parameter and
	// whether api_key_env holds a key or an Entra ID token.
	APIVersion string `yaml:"api_version" json:"api_version,omitempty"`
	Auth       string `yaml:"auth" json:"auth,omitempty"`
	// Region and AWS are Bedrock's: where to call, and which variables hold
	// the credentials. A Bedrock API key in api_key_env replaces AWS.
	Region string `yaml:"region" json:"region,omitempty"`
	AWS    *AWS   `yaml:"aws" json:"aws,omitempty"`
}

// SimSettings configure the simulator provider, which stands in for a model in
// demos, tests and load runs. Rates are probabilities per request in [0,1].
type SimSettings struct {
	// LatencyP50 and LatencyP99 shape a log-normal time to first token.
	LatencyP50 Duration `yaml:"latency_p50" json:"latency_p50,omitempty"`
	LatencyP99 Duration `yaml:"latency_p99" json:"latency_p99,omitempty"`
	// TokensPerSecond paces generated tokens; 0 means as fast as possible.
	TokensPerSecond float64 `yaml:"tokens_per_second" json:"tokens_per_second,omitempty"`
	// OutputTokens is the typical length of a free-text answer.
	OutputTokens  int     `yaml:"output_tokens" json:"output_tokens,omitempty"`
	ErrorRate     float64 `yaml:"error_rate" json:"error_rate,omitempty"`
	RateLimitRate float64 `yaml:"rate_limit_rate" json:"rate_limit_rate,omitempty"`
	TimeoutRate   float64 `yaml:"timeout_rate" json:"timeout_rate,omitempty"`
	CutRate       float64 `yaml:"cut_rate" json:"cut_rate,omitempty"`
	// InvalidRate is how often an answer to a JSON response format breaks
	// the requested schema (a required property left out), as a model's
	// answer sometimes does, so validation failures can be simulated.
	InvalidRate float64 `yaml:"invalid_rate" json:"invalid_rate,omitempty"`
	// EmptyRate and RefusalRate are how often an answer is empty, or
	// declines ("I'm sorry, but I can't help with that."), as a cheap
	// model's sometimes is, so quality cascades can be exercised.
	EmptyRate   float64 `yaml:"empty_rate" json:"empty_rate,omitempty"`
	RefusalRate float64 `yaml:"refusal_rate" json:"refusal_rate,omitempty"`
	// Seed makes a simulator's choices repeatable; 0 seeds from the clock.
	Seed int64 `yaml:"seed" json:"seed,omitempty"`
}

// Model is a model clients may name, served by one provider.
type Model struct {
	Name     string `yaml:"name" json:"name"`
	Provider string `yaml:"provider" json:"provider"`
	// Upstream is the provider's own model id; empty means Name.
	Upstream string `yaml:"upstream" json:"upstream,omitempty"`
	Price    Price  `yaml:"price" json:"price"`
	// MaxOutputTokens is the most output the model can produce in one
	// call; a caller asking for more is refused. 0 means the global limit.
	MaxOutputTokens int `yaml:"max_output_tokens" json:"max_output_tokens,omitempty"`
}

// UpstreamName is the model id sent to the provider.
func (m Model) UpstreamName() string {
	if m.Upstream != "" {
		return m.Upstream
	}
	return m.Name
}

// Price is in US dollars per million tokens.
type Price struct {
	Input       float64 `yaml:"input" json:"input"`
	Output      float64 `yaml:"output" json:"output"`
	CachedInput float64 `yaml:"cached_input" json:"cached_input,omitempty"`
	// Reasoning prices reasoning tokens, which are part of output tokens;
	// 0 means the output price.
	Reasoning float64 `yaml:"reasoning" json:"reasoning,omitempty"`
}

// IsZero reports whether no price is set, so the price table decides.
func (p Price) IsZero() bool { return p == Price{} }

// Cost of a call in US dollars. Cached input tokens are part of input tokens
// and are charged at the cached price when one is set.
func (p Price) Cost(input, cached, output int) float64 {
	cachedPrice := p.CachedInput
	if cachedPrice == 0 {
		cachedPrice = p.Input
	}
	if cached > input {
		cached = input
	}
	return (float64(input-cached)*p.Input + float64(cached)*cachedPrice + float64(output)*p.Output) / 1e6
}

// Route is an alias clients may name as a model: a weighted choice among
// targets, then an ordered fallback chain, under one retry and timeout policy.
type Route struct {
	Name      string   `yaml:"name" json:"name"`
	Targets   []Target `yaml:"targets" json:"targets"`
	Fallbacks []string `yaml:"fallbacks" json:"fallbacks,omitempty"`
	Retry     Retry    `yaml:"retry" json:"retry"`
	// Timeout bounds one attempt; Deadline bounds the whole call, attempts,
	// backoff and fallbacks included. The client's own deadline also applies.
	Timeout  Duration `yaml:"timeout" json:"timeout,omitempty"`
	Deadline Duration `yaml:"deadline" json:"deadline,omitempty"`
	Breaker  Breaker  `yaml:"breaker" json:"breaker"`
	// Cascade, instead of targets, lists tiers (models or plain routes),
	// cheapest first: a call escalates to the next tier when its answer
	// is not good enough (see Escalate).
	Cascade  []string    `yaml:"cascade" json:"cascade,omitempty"`
	Escalate *Escalation `yaml:"escalate" json:"escalate,omitempty"`
}

// Target is one model of a route with its share of traffic.
type Target struct {
	Model  string `yaml:"model" json:"model"`
	Weight int    `yaml:"weight" json:"weight"`
}

// Retry is how often one target is tried before the route falls back.
type Retry struct {
	// Attempts per target, the first included; 0 means the default (2).
	Attempts   int      `yaml:"attempts" json:"attempts,omitempty"`
	Backoff    Duration `yaml:"backoff" json:"backoff,omitempty"`
	MaxBackoff Duration `yaml:"max_backoff" json:"max_backoff,omitempty"`
}

// Breaker opens a target's circuit after Failures consecutive failures and
// lets one probe through after Cooldown.
type Breaker struct {
	Failures int      `yaml:"failures" json:"failures,omitempty"`
	Cooldown Duration `yaml:"cooldown" json:"cooldown,omitempty"`
}

// Defaults applied where a route leaves a policy unset.
const (
	DefaultAttempts        = 2
	DefaultBackoff         = 100 * time.Millisecond
	DefaultMaxBackoff      = 2 * time.Second
	DefaultAttemptTimeout  = 60 * time.Second
	DefaultDeadline        = 120 * time.Second
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
	DefaultMaxTokens       = 1024
	DefaultMaxBodyBytes    = 4 << 20
	DefaultMaxMessages     = 256
	// DefaultMaxOutputTokens bounds max_tokens where the configuration
	// sets no limit: more than any model of 2026 produces in one call.
	DefaultMaxOutputTokens = 128 << 10
	// DefaultMaxChoices bounds n.
	DefaultMaxChoices = 8
	// MaxOutputTokensLimit and MaxChoicesLimit bound what a configuration
	// may allow (chat.HardMaxOutputTokens and chat.HardMaxChoices).
	MaxOutputTokensLimit = 1 << 20
	MaxChoicesLimit      = 128
)

// WithDefaults fills unset policy fields.
func (r Route) WithDefaults() Route {
	if r.Retry.Attempts == 0 {
		r.Retry.Attempts = DefaultAttempts
	}
	if r.Retry.Backoff == 0 {
		r.Retry.Backoff = Duration(DefaultBackoff)
	}
	if r.Retry.MaxBackoff == 0 {
		r.Retry.MaxBackoff = Duration(DefaultMaxBackoff)
	}
	if r.Timeout == 0 {
		r.Timeout = Duration(DefaultAttemptTimeout)
	}
	if r.Deadline == 0 {
		r.Deadline = Duration(DefaultDeadline)
	}
	if r.Breaker.Failures == 0 {
		r.Breaker.Failures = DefaultBreakerFailures
	}
	if r.Breaker.Cooldown == 0 {
		r.Breaker.Cooldown = Duration(DefaultBreakerCooldown)
	}
	return r
}

// Feature is a product capability backed by a model, with its numbered
// releases and the labels that point at them.
type Feature struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	// MaxTokens caps output tokens when a caller sets none, so a worst-case
	// cost always exists; 0 means DefaultMaxTokens.
	MaxTokens int        `yaml:"max_tokens" json:"max_tokens,omitempty"`
	Releases  []Release  `yaml:"releases" json:"releases"`
	Labels    Labels     `yaml:"labels" json:"labels"`
	RateLimit *RateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	Safety    *Safety    `yaml:"safety" json:"safety,omitempty"`
	// Eval names the feature's evaluation dataset and whether promotion
	// is gated on it; Canary how a live canary is judged (see eval.go).
	Eval   *EvalPolicy   `yaml:"eval" json:"eval,omitempty"`
	Canary *CanaryPolicy `yaml:"canary" json:"canary,omitempty"`
}

// OutputCap is the output-token cap of the feature.
func (f Feature) OutputCap() int {
	if f.MaxTokens > 0 {
		return f.MaxTokens
	}
	return DefaultMaxTokens
}

// Release returns the release with the given version.
func (f Feature) Release(version int) (Release, bool) {
	for _, r := range f.Releases {
		if r.Version == version {
			return r, true
		}
	}
	return Release{}, false
}

// Labels point a feature's traffic at releases by version. A canary takes
// CanaryWeight percent of users; everyone else gets Production.
type Labels struct {
	Production   int `yaml:"production" json:"production"`
	Canary       int `yaml:"canary" json:"canary,omitempty"`
	CanaryWeight int `yaml:"canary_weight" json:"canary_weight,omitempty"`
}

// Message is a templated chat message of a release.
type Message struct {
	Role    string `yaml:"role" json:"role"`
	Content string `yaml:"content" json:"content"`
}

// Variable declares a template variable.
type Variable struct {
	Name     string `yaml:"name" json:"name"`
	Type     string `yaml:"type" json:"type,omitempty"` // string (default), number, boolean, list, object
	Required bool   `yaml:"required" json:"required,omitempty"`
}

// Params are sampling parameters a release pins.
type Params struct {
	Temperature *float64 `yaml:"temperature" json:"temperature,omitempty"`
	TopP        *float64 `yaml:"top_p" json:"top_p,omitempty"`
	MaxTokens   int      `yaml:"max_tokens" json:"max_tokens,omitempty"`
	Stop        []string `yaml:"stop" json:"stop,omitempty"`
}

// Tool is a function a release offers the model.
type Tool struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	Parameters  any    `yaml:"parameters" json:"parameters,omitempty"`
}

// CachePolicy enables the exact-match response cache for a release.
type CachePolicy struct {
	TTL Duration `yaml:"ttl" json:"ttl"`
}

// Release is an immutable record of everything that shapes a feature's
// behaviour. Version numbers it within its feature; its hash identifies its
// content.
type Release struct {
	Version   int        `yaml:"version" json:"version"`
	System    string     `yaml:"system" json:"system,omitempty"`
	Template  []Message  `yaml:"template" json:"template,omitempty"`
	Variables []Variable `yaml:"variables" json:"variables,omitempty"`
	Route     string     `yaml:"route" json:"route"`
	Params    Params     `yaml:"params" json:"params"`
	// Schema is a JSON Schema (2020-12) the output must satisfy.
	Schema any `yaml:"schema" json:"schema,omitempty"`
	// Repair is how many times an invalid output is sent back to the model
	// with the validation errors before the call fails.
	Repair int          `yaml:"repair" json:"repair,omitempty"`
	Tools  []Tool       `yaml:"tools" json:"tools,omitempty"`
	Cache  *CachePolicy `yaml:"cache" json:"cache,omitempty"`
	// Retrieval, when set, adds context from a collection to the prompt.
	Retrieval *Retrieval `yaml:"retrieval" json:"retrieval,omitempty"`
	// Context bounds the input tokens of a call (see ContextPolicy).
	Context *ContextPolicy `yaml:"context" json:"context,omitempty"`
	// SemanticCache answers similar requests from earlier answers.
	SemanticCache *SemanticCache `yaml:"semantic_cache" json:"semantic_cache,omitempty"`
}

// ID names a release within the whole configuration.
func ReleaseID(feature string, version int) string {
	return fmt.Sprintf("%s@v%d", feature, version)
}

// ReleaseVersion reads the version from a release id such as
// support-answer@v2; 0 when it has none.
func ReleaseVersion(id string) int {
	i := strings.LastIndexByte(id, '@')
	if i <= 0 || !strings.HasPrefix(id[i+1:], "v") {
		return 0
	}
	n, err := strconv.Atoi(id[i+2:])
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// Key is a virtual key: what a caller presents instead of a provider key.
// Only the hash of the secret is kept.
type Key struct {
	Name      string     `yaml:"name" json:"name"`
	Hash      string     `yaml:"hash" json:"hash"`
	Team      string     `yaml:"team" json:"team,omitempty"`
	Features  []string   `yaml:"features" json:"features,omitempty"`
	Models    []string   `yaml:"models" json:"models,omitempty"`
	Expires   *Time      `yaml:"expires" json:"expires,omitempty"`
	Revoked   bool       `yaml:"revoked" json:"revoked,omitempty"`
	RateLimit *RateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	// MaxBudgetUSD is a lifetime spend cap of the key; 0 means none.
	MaxBudgetUSD float64 `yaml:"max_budget_usd" json:"max_budget_usd,omitempty"`
	// Eval lets the key run evaluations: pin a call to any release of a
	// feature it may call (X-Gantry-Release) and mark calls as evaluation
	// traffic, which production counters leave out. Off by default: a
	// pinned call reaches releases no label serves, and unmarked traffic
	// is what canary analysis relies on.
	Eval bool `yaml:"eval" json:"eval,omitempty"`
}

// Limits are size limits of the gateway.
type Limits struct {
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	MaxMessages  int   `yaml:"max_messages" json:"max_messages,omitempty"`
	// MaxOutputTokens bounds max_tokens (and max_completion_tokens) of
	// every call; a model's own max_output_tokens may bound it further.
	MaxOutputTokens int `yaml:"max_output_tokens" json:"max_output_tokens,omitempty"`
	// MaxChoices bounds n, the choices one call asks for.
	MaxChoices int `yaml:"max_choices" json:"max_choices,omitempty"`
}

// WithDefaults fills unset limits.
func (l Limits) WithDefaults() Limits {
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxMessages == 0 {
		l.MaxMessages = DefaultMaxMessages
	}
	if l.MaxOutputTokens == 0 {
		l.MaxOutputTokens = DefaultMaxOutputTokens
	}
	if l.MaxChoices == 0 {
		l.MaxChoices = DefaultMaxChoices
	}
	return l
}

// Duration is a time.Duration written as "250ms" or "2s".
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 250ms, 2s, 1m)", b)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// Time is a time written in RFC 3339.
type Time struct{ time.Time }

func (t Time) MarshalText() ([]byte, error) { return []byte(t.UTC().Format(time.RFC3339)), nil }

func (t *Time) UnmarshalText(b []byte) error {
	v, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		return fmt.Errorf("invalid time %q (want RFC 3339, e.g. 2027-01-31T00:00:00Z)", b)
	}
	t.Time = v
	return nil
}
