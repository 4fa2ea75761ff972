package config

import (
	"fmt"
	"math"
)

// Context strategies: what a release does when its rendered input is longer
// than its context policy allows.
const (
	// ContextRefuse refuses the call before anything is spent.
	ContextRefuse = "refuse"
	// ContextDropOldest drops the oldest conversation turns, keeping the
	// system instructions and the last KeepLast turns.
	ContextDropOldest = "drop_oldest"
	// ContextDropChunks drops retrieved chunks, lowest score first.
	ContextDropChunks = "drop_chunks"
	// ContextSummarize replaces the older turns with a summary written by
	// SummaryRoute, cached by the hash of the turns it replaces.
	ContextSummarize = "summarize"
)

// ContextStrategies lists the strategies, for error messages.
var ContextStrategies = []string{ContextRefuse, ContextDropOldest, ContextDropChunks, ContextSummarize}

// Bounds of the cost settings.
const (
	MaxContextPolicyTokens = 2 << 20
	MaxKeepLast            = 256
	MaxSummaryTokens       = 4096
	DefaultKeepLast        = 4
	DefaultSummaryCap      = 256
	MaxCascadeTiers        = 4
	MaxSemanticEntries     = 1 << 20
	// DefaultSemanticEntries bounds a release's semantic cache when its
	// policy sets no size.
	DefaultSemanticEntries = 10000
)

// ContextPolicy bounds the input of a release's calls. When the rendered
// messages count more than MaxInputTokens, Strategy shrinks them (or
// refuses the call); a call that is still too long after shrinking is
// refused.
type ContextPolicy struct {
	MaxInputTokens int    `yaml:"max_input_tokens" json:"max_input_tokens"`
	Strategy       string `yaml:"strategy" json:"strategy"`
	// KeepLast is how many of the latest turns drop_oldest and summarize
	// keep verbatim; 0 means DefaultKeepLast.
	KeepLast int `yaml:"keep_last" json:"keep_last,omitempty"`
	// SummaryRoute is the (cheap) route or model summarize writes with,
	// and SummaryMaxTokens caps each summary (0: DefaultSummaryCap).
	SummaryRoute     string `yaml:"summary_route" json:"summary_route,omitempty"`
	SummaryMaxTokens int    `yaml:"summary_max_tokens" json:"summary_max_tokens,omitempty"`
}

// Keep is the number of latest turns kept verbatim.
func (p ContextPolicy) Keep() int {
	if p.KeepLast > 0 {
		return p.KeepLast
	}
	return DefaultKeepLast
}

// SummaryCap is the output cap of one summary.
func (p ContextPolicy) SummaryCap() int {
	if p.SummaryMaxTokens > 0 {
		return p.SummaryMaxTokens
	}
	return DefaultSummaryCap
}

// Escalation reasons: why a cascade moved to its next tier.
const (
	EscalateInvalid = "invalid" // the answer failed the release's output validation
	EscalateEmpty   = "empty"   // the answer has no text and no tool call
	EscalateRefusal = "refusal" // the model declined to answer
	EscalateLength  = "length"  // the answer was cut by the output cap
	EscalateJudge   = "judge"   // a judge route scored the answer below its threshold
)

// EscalationReasons are the reasons a cascade may list under escalate.on.
var EscalationReasons = []string{EscalateInvalid, EscalateEmpty, EscalateRefusal, EscalateLength}

// Escalation says when a cascade route moves to its next tier.
type Escalation struct {
	// On lists the reasons; empty means all of EscalationReasons.
	On []string `yaml:"on" json:"on,omitempty"`
	// Judge, when set, scores a sample of first-tier answers.
	Judge *Judge `yaml:"judge" json:"judge,omitempty"`
}

// Escalates reports whether the route escalates for reason.
func (e *Escalation) Escalates(reason string) bool {
	if reason == EscalateJudge {
		return e != nil && e.Judge != nil
	}
	if e == nil || len(e.On) == 0 {
		return true
	}
	for _, r := range e.On {
		if r == reason {
			return true
		}
	}
	return false
}

// Judge scores answers with a model: Route is asked for a score between 0
// and 1 for SampleRate of the answers, and an answer scored below
// Threshold escalates.
type Judge struct {
	Route      string  `yaml:"route" json:"route"`
	Threshold  float64 `yaml:"threshold" json:"threshold"`
	SampleRate float64 `yaml:"sample_rate" json:"sample_rate"`
}

// Semantic cache scopes: who may receive an answer another call paid for.
// Every scope is within one feature and one release hash.
const (
	// ScopeRelease shares answers among every caller of the release;
	// ScopeTeam (callers of one team) and ScopeUser (one end user) are the
	// budget scopes' names.
	ScopeRelease = "release"
)

// SemanticCache lets a release answer a call with the answer to an earlier,
// similar one: the normalised request is embedded through EmbeddingRoute
// and compared with earlier requests of the same scope.
type SemanticCache struct {
	EmbeddingRoute string `yaml:"embedding_route" json:"embedding_route"`
	// Threshold is the least cosine similarity of a hit.
	Threshold float64 `yaml:"threshold" json:"threshold"`
	// Scope is release (default), team or user.
	Scope      string   `yaml:"scope" json:"scope,omitempty"`
	TTL        Duration `yaml:"ttl" json:"ttl"`
	MaxEntries int      `yaml:"max_entries" json:"max_entries,omitempty"`
	// Tools and Streams allow calls that offer tools, and streamed calls,
	// which are never cached otherwise.
	Tools   bool `yaml:"tools" json:"tools,omitempty"`
	Streams bool `yaml:"streams" json:"streams,omitempty"`
}

// ScopeOrDefault is the scope with its default.
func (s SemanticCache) ScopeOrDefault() string {
	if s.Scope == "" {
		return ScopeRelease
	}
	return s.Scope
}

// Entries is the size bound with its default.
func (s SemanticCache) Entries() int {
	if s.MaxEntries > 0 {
		return s.MaxEntries
	}
	return DefaultSemanticEntries
}

// costRelease checks a release's context policy and semantic cache.
// plain are the routes and models a cheap helper call may use: every model
// and every route that is not a cascade.
func (c *checker) costRelease(path string, r Release, plain map[string]bool) {
	if p := r.Context; p != nil {
		cp := path + ".context"
		if p.MaxInputTokens < 1 || p.MaxInputTokens > MaxContextPolicyTokens {
			c.add(cp+".max_input_tokens", "%d is outside 1..%d", p.MaxInputTokens, MaxContextPolicyTokens)
		}
		switch p.Strategy {
		case ContextRefuse, ContextDropOldest, ContextDropChunks, ContextSummarize:
		case "":
			c.add(cp+".strategy", "missing (want one of %v)", ContextStrategies)
		default:
			c.add(cp+".strategy", "unknown strategy %q (want one of %v)", p.Strategy, ContextStrategies)
		}
		if p.KeepLast < 0 || p.KeepLast > MaxKeepLast {
			c.add(cp+".keep_last", "%d is outside 0..%d", p.KeepLast, MaxKeepLast)
		}
		if p.SummaryMaxTokens < 0 || p.SummaryMaxTokens > MaxSummaryTokens {
			c.add(cp+".summary_max_tokens", "%d is outside 0..%d", p.SummaryMaxTokens, MaxSummaryTokens)
		}
		switch {
		case p.Strategy == ContextSummarize && p.SummaryRoute == "":
			c.add(cp+".summary_route", "summarize needs a summary_route (a cheap route or model)")
		case p.Strategy != ContextSummarize && p.SummaryRoute != "":
			c.add(cp+".summary_route", "only the summarize strategy uses a summary route")
		case p.SummaryRoute != "" && !plain[p.SummaryRoute]:
			c.add(cp+".summary_route", "unknown route or model %q (a cascade cannot summarise)", p.SummaryRoute)
		}
		if p.Strategy == ContextDropChunks && r.Retrieval == nil {
			c.add(cp+".strategy", "drop_chunks needs retrieval: the release retrieves no chunks to drop")
		}
	}
	if s := r.SemanticCache; s != nil {
		sp := path + ".semantic_cache"
		if !plain[s.EmbeddingRoute] {
			c.add(sp+".embedding_route", "unknown route or model %q", s.EmbeddingRoute)
		}
		if math.IsNaN(s.Threshold) || s.Threshold < 0.5 || s.Threshold > 1 {
			c.add(sp+".threshold", "%v is outside 0.5..1 (a cosine similarity; lower would serve unrelated answers)", s.Threshold)
		}
		switch s.Scope {
		case "", ScopeRelease, ScopeTeam, ScopeUser:
		default:
			c.add(sp+".scope", "unknown scope %q (want release, team or user)", s.Scope)
		}
		if s.TTL <= 0 {
			c.add(sp+".ttl", "a semantic cache needs a ttl")
		}
		if s.MaxEntries < 0 || s.MaxEntries > MaxSemanticEntries {
			c.add(sp+".max_entries", "%d is outside 0..%d", s.MaxEntries, MaxSemanticEntries)
		}
	}
}

// cascade checks a cascade route: two or more tiers, each a model or a
// route that is not itself a cascade, and when to escalate.
func (c *checker) cascade(path string, r Route, models map[string]bool, cascades, plain map[string]bool) {
	if len(r.Cascade) == 0 {
		if r.Escalate != nil {
			c.add(path+".escalate", "only a cascade route escalates")
		}
		return
	}
	if len(r.Targets) > 0 || len(r.Fallbacks) > 0 {
		c.add(path+".cascade", "a cascade route has tiers instead of targets and fallbacks")
	}
	if len(r.Cascade) < 2 || len(r.Cascade) > MaxCascadeTiers {
		c.add(path+".cascade", "%d tiers; a cascade has 2..%d", len(r.Cascade), MaxCascadeTiers)
	}
	for i, t := range r.Cascade {
		tp := fmt.Sprintf("%s.cascade[%d]", path, i)
		switch {
		case t == r.Name || cascades[t]:
			c.add(tp, "tier %q is a cascade; tiers are models or plain routes", t)
		case !plain[t] && !models[t]:
			c.add(tp, "unknown route or model %q", t)
		}
	}
	e := r.Escalate
	if e == nil {
		return
	}
	for i, on := range e.On {
		known := false
		for _, k := range EscalationReasons {
			known = known || on == k
		}
		if !known {
			c.add(fmt.Sprintf("%s.escalate.on[%d]", path, i), "unknown reason %q (want one of %v)", on, EscalationReasons)
		}
	}
	if j := e.Judge; j != nil {
		jp := path + ".escalate.judge"
		if !plain[j.Route] {
			c.add(jp+".route", "unknown route or model %q (a cascade cannot judge)", j.Route)
		}
		if math.IsNaN(j.Threshold) || j.Threshold <= 0 || j.Threshold > 1 {
			c.add(jp+".threshold", "%v is outside (0,1]", j.Threshold)
		}
		if math.IsNaN(j.SampleRate) || j.SampleRate <= 0 || j.SampleRate > 1 {
			c.add(jp+".sample_rate", "%v is outside (0,1]; the judge is opt-in, leave it out to turn it off", j.SampleRate)
		}
	}
}
