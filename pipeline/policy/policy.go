// Package policy applies a feature's safety policy to requests and
// outputs: input size, deny lists, prompt-injection heuristics, PII
// redaction or refusal, and system-prompt leak canaries. Its findings
// become trace decisions that name the rule, the field and the offsets,
// never the matched text.
//
// An Engine is compiled from one configuration snapshot and is immutable;
// build a new one when the configuration changes.
package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/policy/deny"
	"gantry/pipeline/policy/inject"
	"gantry/pipeline/policy/pii"
	"gantry/pipeline/trace"
)

// Rule names in trace decisions; PII rules are "pii." + the recognizer.
const (
	RuleMaxInputTokens = "max_input_tokens"
	RuleDenyList       = "deny_list"
	RuleInjection      = "injection"
	RuleLeakCanary     = "leak_canary"
	RulePIIPrefix      = "pii."
)

// Actions in trace decisions.
const (
	ActionBlock  = config.SafetyBlock
	ActionRedact = config.SafetyRedact
	ActionFlag   = config.SafetyFlag
)

// ErrBlocked is what every policy refusal unwraps to.
var ErrBlocked = errors.New("blocked by policy")

// BlockedError says which rule refused a request and where. It carries no
// matched text, so it is safe to return to the client and to log.
type BlockedError struct {
	Rule   string
	Field  string
	Reason string
}

func (e *BlockedError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("blocked by policy %s in %s: %s", e.Rule, e.Field, e.Reason)
	}
	return fmt.Sprintf("blocked by policy %s: %s", e.Rule, e.Reason)
}

func (e *BlockedError) Unwrap() error { return ErrBlocked }

// Outcome is what a policy check did.
type Outcome struct {
	Decisions []trace.Decision
	// Redacted is set when the request was changed in place.
	Redacted bool
	// InjectionScore is the highest score of any user or tool message.
	InjectionScore float64
}

// Engine holds the compiled policies of every feature.
type Engine struct {
	features map[string]*compiled
	secret   []byte
}

type compiled struct {
	safety config.Safety
	deny   *deny.Matcher
}

// New compiles the safety policies of cfg. secret keys the leak canaries;
// every agent of a cluster must use the same one.
func New(cfg *config.Config, secret []byte) (*Engine, error) {
	e := &Engine{features: map[string]*compiled{}, secret: append([]byte(nil), secret...)}
	for _, f := range cfg.Features {
		if f.Safety == nil {
			continue
		}
		c := &compiled{safety: *f.Safety}
		if len(f.Safety.DenyList) > 0 {
			m, err := deny.Compile(f.Safety.DenyList)
			if err != nil {
				return nil, fmt.Errorf("feature %s: %w", f.Name, err)
			}
			c.deny = m
		}
		e.features[f.Name] = c
	}
	return e, nil
}

// Input applies the input policy of feature to req, redacting it in place
// where the policy says so. inputTokens is the caller's count of the
// prompt. On refusal it returns a *BlockedError together with the
// decisions made so far, which belong in the trace either way.
func (e *Engine) Input(ctx context.Context, feature string, req *chat.Request, inputTokens int) (Outcome, error) {
	var out Outcome
	c := e.features[feature]
	if c == nil {
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	s := &c.safety
	if s.MaxInputTokens > 0 && inputTokens > s.MaxInputTokens {
		out.Decisions = append(out.Decisions, trace.Decision{Rule: RuleMaxInputTokens, Action: ActionBlock})
		return out, &BlockedError{Rule: RuleMaxInputTokens,
			Reason: fmt.Sprintf("the prompt has %d tokens, more than the limit of %d", inputTokens, s.MaxInputTokens)}
	}
	if c.deny != nil {
		if err := e.denyList(c, req, &out); err != nil {
			return out, err
		}
	}
	if inj := s.Injection; inj != nil && inj.Action != "" && inj.Action != config.SafetyOff {
		if err := injection(inj, req, &out); err != nil {
			return out, err
		}
	}
	if s.PII != nil {
		if err := piiCheck(s.PII, req, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (e *Engine) denyList(c *compiled, req *chat.Request, out *Outcome) error {
	var blocked *BlockedError
	err := pii.EachText(req, func(f pii.Field, text string) string {
		if blocked != nil {
			return text
		}
		if m, ok := c.deny.Find(text); ok {
			out.Decisions = append(out.Decisions, trace.Decision{Rule: RuleDenyList, Field: f.String(), Start: m.Start, End: m.End, Action: ActionBlock})
			blocked = &BlockedError{Rule: RuleDenyList, Field: f.String(), Reason: "the text contains a denied term"}
		}
		return text
	})
	if err != nil {
		return err
	}
	if blocked != nil {
		return blocked
	}
	return nil
}

// injection scores the messages a user or a tool wrote; system and
// assistant messages are the application's own.
func injection(p *config.InjectionPolicy, req *chat.Request, out *Outcome) error {
	var blocked *BlockedError
	err := pii.EachText(req, func(f pii.Field, text string) string {
		i, ok := f.MessageContent()
		if !ok || blocked != nil {
			return text
		}
		if role := req.Messages[i].Role; role != "user" && role != "tool" && role != "function" {
			return text
		}
		r := inject.Score(text)
		out.InjectionScore = max(out.InjectionScore, r.Score)
		if r.Score < p.Threshold || len(r.Reasons) == 0 {
			return text
		}
		top := r.Reasons[0]
		for _, x := range r.Reasons {
			if x.Weight > top.Weight {
				top = x
			}
		}
		d := trace.Decision{Rule: RuleInjection, Field: f.String(), Start: top.Start, End: top.End, Action: p.Action, Score: r.Score}
		out.Decisions = append(out.Decisions, d)
		if p.Action == config.SafetyBlock {
			blocked = &BlockedError{Rule: RuleInjection, Field: f.String(),
				Reason: fmt.Sprintf("prompt injection suspected (score %.2f, %s)", r.Score, top.Rule)}
		}
		return text
	})
	if err != nil {
		return err
	}
	if blocked != nil {
		return blocked
	}
	return nil
}

func piiCheck(p *config.PIIPolicy, req *chat.Request, out *Outcome) error {
	found, err := pii.ScanRequest(req)
	if err != nil || len(found) == 0 {
		return err
	}
	redact := make([]pii.FieldFinding, 0, len(found))
	out.Decisions = slices.Grow(out.Decisions, len(found))
	var blocked *BlockedError
	for _, f := range found {
		action := p.Action(f.Rule)
		if action == config.SafetyOff || action == "" {
			continue
		}
		out.Decisions = append(out.Decisions, trace.Decision{Rule: RulePIIPrefix + f.Rule, Field: f.Field.String(), Start: f.Start, End: f.End, Action: action})
		switch action {
		case config.SafetyBlock:
			if blocked == nil {
				blocked = &BlockedError{Rule: RulePIIPrefix + f.Rule, Field: f.Field.String(), Reason: "the text contains " + describe(f.Kind)}
			}
		case config.SafetyRedact:
			redact = append(redact, f)
		}
	}
	if blocked != nil {
		return blocked
	}
	if len(redact) > 0 {
		if err := pii.RedactRequest(req, redact); err != nil {
			return err
		}
		out.Redacted = true
	}
	return nil
}

func describe(kind string) string {
	switch kind {
	case "email":
		return "an e-mail address"
	case "payment_card":
		return "a payment card number"
	case "iban":
		return "an IBAN"
	case "us_ssn":
		return "a US social security number"
	case "kr_rrn":
		return "a resident registration number"
	case "ipv4", "ipv6":
		return "an IP address"
	case "api_key", "aws_access_key_id", "jwt", "pem_private_key":
		return "a secret (" + kind + ")"
	}
	return "a phone number"
}

// Canary returns the leak canary to plant in the system instructions of a
// release of feature, or "" when the feature does not use one.
func (e *Engine) Canary(feature, releaseHash string) string {
	c := e.features[feature]
	if c == nil || !c.safety.LeakCanary {
		return ""
	}
	return Canary(e.secret, releaseHash)
}

// Output checks a complete output of feature's release: an output that
// repeats the release's canary leaked the system instructions and is
// refused.
func (e *Engine) Output(feature, releaseHash, output string) (Outcome, error) {
	var out Outcome
	canary := e.Canary(feature, releaseHash)
	if canary == "" || !Leaked(output, canary) {
		return out, nil
	}
	out.Decisions = append(out.Decisions, trace.Decision{Rule: RuleLeakCanary, Field: "output", Action: ActionBlock})
	return out, &BlockedError{Rule: RuleLeakCanary, Field: "output", Reason: "the output repeats the system instructions"}
}

// Capture reports whether feature keeps prompt and output bodies in traces.
func (e *Engine) Capture(feature string) bool {
	c := e.features[feature]
	return c != nil && c.safety.Capture
}
