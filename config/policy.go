package config

import (
	"fmt"
	"math"
	"strings"
)

// Budget scopes: what a budget counts spend against.
const (
	ScopeGlobal  = "global"
	ScopeTeam    = "team"
	ScopeKey     = "key"
	ScopeFeature = "feature"
	// ScopeUser budgets apply to each end user separately; Match stays empty.
	ScopeUser = "user"
)

// Budget periods. Day and month roll over at midnight UTC.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
	PeriodTotal = "total"
)

// What happens when a request would exceed a budget.
const (
	BudgetBlock     = "block"
	BudgetDowngrade = "downgrade"
	BudgetAlert     = "alert"
)

// Safety actions for PII, prompt injection and deny lists.
const (
	SafetyRedact = "redact"
	SafetyBlock  = "block"
	SafetyFlag   = "flag"
	SafetyOff    = "off"
)

// Bounds on policy values; anything beyond is a typo.
const (
	MaxBudgetUSD     = 1e9
	MaxRPM           = 10_000_000
	MaxTPM           = 1_000_000_000
	MaxConcurrent    = 100_000
	MaxDenyTerms     = 10_000
	MaxDenyTermBytes = 256
	MaxDenyBytes     = 64 << 10 // all terms of one list together
	MaxInputTokens   = 10_000_000
)

// Budget caps spend in US dollars over a period for one scope.
type Budget struct {
	Name  string `yaml:"name" json:"name"`
	Scope string `yaml:"scope" json:"scope"`
	// Match names the team, key or feature; empty for global budgets and
	// for user budgets, which apply to every end user separately.
	Match    string  `yaml:"match" json:"match,omitempty"`
	Period   string  `yaml:"period" json:"period"`
	LimitUSD float64 `yaml:"limit_usd" json:"limit_usd"`
	// Action is block (the default), downgrade or alert.
	Action         string `yaml:"action" json:"action,omitempty"`
	DowngradeRoute string `yaml:"downgrade_route" json:"downgrade_route,omitempty"`
	// SoftThreshold is the fraction of the limit at which an alert is sent
	// once per period; 0 means no early alert.
	SoftThreshold float64 `yaml:"soft_threshold" json:"soft_threshold,omitempty"`
}

// BudgetAction is the action with the default filled in.
func (b Budget) BudgetAction() string {
	if b.Action == "" {
		return BudgetBlock
	}
	return b.Action
}

// RateLimit bounds requests per minute, tokens per minute and requests in
// flight. Zero means no limit for that dimension.
type RateLimit struct {
	RPM           int `yaml:"rpm" json:"rpm,omitempty"`
	TPM           int `yaml:"tpm" json:"tpm,omitempty"`
	MaxConcurrent int `yaml:"max_concurrent" json:"max_concurrent,omitempty"`
}

// Team groups keys under shared rate limits.
type Team struct {
	Name      string     `yaml:"name" json:"name"`
	RateLimit *RateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
}

// Safety is a feature's input and output safety policy.
type Safety struct {
	PII       *PIIPolicy       `yaml:"pii" json:"pii,omitempty"`
	Injection *InjectionPolicy `yaml:"injection" json:"injection,omitempty"`
	// DenyList terms are matched case-insensitively as whole words.
	DenyList []string `yaml:"deny_list" json:"deny_list,omitempty"`
	// MaxInputTokens refuses longer prompts; 0 means no limit.
	MaxInputTokens int `yaml:"max_input_tokens" json:"max_input_tokens,omitempty"`
	// Capture keeps prompt and output bodies in traces unredacted.
	Capture bool `yaml:"capture" json:"capture,omitempty"`
	// LeakCanary plants a per-release canary in the system instructions and
	// flags outputs that repeat it.
	LeakCanary bool `yaml:"leak_canary" json:"leak_canary,omitempty"`
}

// PIIPolicy is the action per recognizer (email, phone, card, iban, ssn,
// rrn, ip, secret) with a default for the rest.
type PIIPolicy struct {
	Default string            `yaml:"default" json:"default,omitempty"`
	Rules   map[string]string `yaml:"rules" json:"rules,omitempty"`
}

// Action for a recognizer's rule name; off when nothing is set.
func (p *PIIPolicy) Action(rule string) string {
	if p == nil {
		return SafetyOff
	}
	if a, ok := p.Rules[rule]; ok && a != "" {
		return a
	}
	if p.Default == "" {
		return SafetyOff
	}
	return p.Default
}

// InjectionPolicy acts on prompt-injection scores at or above Threshold.
type InjectionPolicy struct {
	Action    string  `yaml:"action" json:"action,omitempty"`
	Threshold float64 `yaml:"threshold" json:"threshold,omitempty"`
}

// PIIRules are the recognizer names a PII policy may name.
var PIIRules = []string{"email", "phone", "card", "iban", "ssn", "rrn", "ip", "secret"}

// validatePolicy checks teams, budgets, rate limits and safety policies.
func (cfg *Config) validatePolicy(c *checker) {
	c.count("teams", len(cfg.Teams))
	c.count("budgets", len(cfg.Budgets))
	names := func(n int, get func(int) string) map[string]bool {
		m := make(map[string]bool, n)
		for i := 0; i < n; i++ {
			m[get(i)] = true
		}
		return m
	}
	teams := map[string]bool{}
	for i, t := range cfg.Teams {
		path := index("teams", i)
		c.name(path+".name", "team", t.Name, teams)
		c.rateLimit(path+".rate_limit", t.RateLimit)
	}
	features := names(len(cfg.Features), func(i int) string { return cfg.Features[i].Name })
	keys := names(len(cfg.Keys), func(i int) string { return cfg.Keys[i].Name })
	routes := names(len(cfg.Routes), func(i int) string { return cfg.Routes[i].Name })
	models := names(len(cfg.Models), func(i int) string { return cfg.Models[i].Name })

	for i, k := range cfg.Keys {
		path := index("keys", i)
		c.rateLimit(path+".rate_limit", k.RateLimit)
		if k.MaxBudgetUSD < 0 || k.MaxBudgetUSD > MaxBudgetUSD || math.IsNaN(k.MaxBudgetUSD) {
			c.add(path+".max_budget_usd", "%v is outside 0..%g USD", k.MaxBudgetUSD, MaxBudgetUSD)
		}
		if k.Team != "" && len(cfg.Teams) > 0 && !teams[k.Team] {
			c.add(path+".team", "unknown team %q", k.Team)
		}
	}
	for i, f := range cfg.Features {
		path := index("features", i)
		c.rateLimit(path+".rate_limit", f.RateLimit)
		c.safety(path+".safety", f.Safety)
	}

	seen := map[string]bool{}
	for i, b := range cfg.Budgets {
		path := index("budgets", i)
		c.name(path+".name", "budget", b.Name, seen)
		switch b.Scope {
		case ScopeGlobal, ScopeUser:
			if b.Match != "" {
				c.add(path+".match", "a %s budget matches nothing by name; leave match empty", b.Scope)
			}
		case ScopeTeam:
			if b.Match == "" {
				c.add(path+".match", "name the team")
			} else if len(cfg.Teams) > 0 && !teams[b.Match] {
				c.add(path+".match", "unknown team %q", b.Match)
			}
		case ScopeKey:
			if !keys[b.Match] {
				c.add(path+".match", "unknown key %q", b.Match)
			}
		case ScopeFeature:
			if !features[b.Match] {
				c.add(path+".match", "unknown feature %q", b.Match)
			}
		default:
			c.add(path+".scope", "unknown scope %q (want global, team, key, feature or user)", b.Scope)
		}
		switch b.Period {
		case PeriodDay, PeriodMonth, PeriodTotal:
		default:
			c.add(path+".period", "unknown period %q (want day, month or total)", b.Period)
		}
		if !(b.LimitUSD > 0) || b.LimitUSD > MaxBudgetUSD {
			c.add(path+".limit_usd", "%v is outside (0, %g] USD", b.LimitUSD, MaxBudgetUSD)
		}
		switch b.Action {
		case "", BudgetBlock, BudgetAlert:
			if b.DowngradeRoute != "" {
				c.add(path+".downgrade_route", "only a downgrade budget names a route")
			}
		case BudgetDowngrade:
			if !routes[b.DowngradeRoute] && !models[b.DowngradeRoute] {
				c.add(path+".downgrade_route", "unknown route or model %q", b.DowngradeRoute)
			}
		default:
			c.add(path+".action", "unknown action %q (want block, downgrade or alert)", b.Action)
		}
		if b.SoftThreshold != 0 && !(b.SoftThreshold > 0 && b.SoftThreshold < 1) {
			c.add(path+".soft_threshold", "%v is outside (0,1)", b.SoftThreshold)
		}
	}
}

func (c *checker) rateLimit(path string, r *RateLimit) {
	if r == nil {
		return
	}
	if r.RPM < 0 || r.RPM > MaxRPM {
		c.add(path+".rpm", "%d is outside 0..%d", r.RPM, MaxRPM)
	}
	if r.TPM < 0 || r.TPM > MaxTPM {
		c.add(path+".tpm", "%d is outside 0..%d", r.TPM, MaxTPM)
	}
	if r.MaxConcurrent < 0 || r.MaxConcurrent > MaxConcurrent {
		c.add(path+".max_concurrent", "%d is outside 0..%d", r.MaxConcurrent, MaxConcurrent)
	}
}

func (c *checker) safetyAction(path, a string, allowRedact bool) {
	switch a {
	case "", SafetyBlock, SafetyFlag, SafetyOff:
	case SafetyRedact:
		if !allowRedact {
			c.add(path, "redact applies only to PII (want block, flag or off)")
		}
	default:
		c.add(path, "unknown action %q (want redact, block, flag or off)", a)
	}
}

func (c *checker) safety(path string, s *Safety) {
	if s == nil {
		return
	}
	if s.PII != nil {
		c.safetyAction(path+".pii.default", s.PII.Default, true)
		for rule, a := range s.PII.Rules {
			known := false
			for _, r := range PIIRules {
				known = known || r == rule
			}
			if !known {
				c.add(path+".pii.rules."+rule, "unknown recognizer %q (want one of %s)", rule, strings.Join(PIIRules, ", "))
				continue
			}
			c.safetyAction(path+".pii.rules."+rule, a, true)
		}
	}
	if inj := s.Injection; inj != nil {
		c.safetyAction(path+".injection.action", inj.Action, false)
		if !(inj.Threshold > 0 && inj.Threshold < 1) {
			c.add(path+".injection.threshold", "%v is outside (0,1)", inj.Threshold)
		}
	}
	if len(s.DenyList) > MaxDenyTerms {
		c.add(path+".deny_list", "%d terms, more than the limit of %d", len(s.DenyList), MaxDenyTerms)
	}
	total := 0
	for i, t := range s.DenyList {
		total += len(t)
		if strings.TrimSpace(t) == "" || len(t) > MaxDenyTermBytes {
			c.add(fmt.Sprintf("%s.deny_list[%d]", path, i), "a term is 1..%d bytes and not blank", MaxDenyTermBytes)
		}
	}
	if total > MaxDenyBytes {
		c.add(path+".deny_list", "%d bytes of terms, more than the limit of %d", total, MaxDenyBytes)
	}
	if s.MaxInputTokens < 0 || s.MaxInputTokens > MaxInputTokens {
		c.add(path+".max_input_tokens", "%d is outside 0..%d", s.MaxInputTokens, MaxInputTokens)
	}
}
