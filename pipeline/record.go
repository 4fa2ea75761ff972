package pipeline

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"gantry/pipeline/chat"
	"gantry/pipeline/policy/pii"
	"gantry/pipeline/provider"
	"gantry/pipeline/trace"
)

// Trace builds the trace of a finished call. Prompt and output bodies are
// kept as they were only when the feature captures them; otherwise every
// PII finding in them is replaced by its type.
func (g *Gateway) Trace(c *Call) *trace.Trace {
	end := c.Received
	if n := len(c.Spans); n > 0 {
		end = c.Spans[n-1].Start.Add(c.Spans[n-1].Dur)
	}
	t := &trace.Trace{
		ID:         c.ID,
		RequestID:  c.ID,
		Start:      c.Received,
		Duration:   trace.Ms(end.Sub(c.Received)),
		Node:       g.node,
		Entry:      c.Entry,
		Journey:    c.Journey,
		User:       c.User,
		KeyFP:      c.KeyFP,
		ClientAddr: cut(c.Client, maxClientField),
		UserAgent:  cut(c.Agent, maxClientField),
		Stream:     c.Emit != nil,
		Status:     "ok",
		HTTPStatus: http.StatusOK,
		TTFT:       trace.Ms(c.TTFT),
		Upstream:   trace.Ms(c.Upstream),
		Validation: c.Validation,
		Sources:    c.Sources,
		Policy:     c.Decisions,
		Cached:     c.Cached,
		EvalRun:    c.EvalRun,
		EvalCase:   c.EvalCase,
	}
	if !c.TraceID.IsZero() {
		t.TraceID = c.TraceID.String()
	}
	capture := c.Feature != nil && c.Snap != nil && c.Snap.Policy != nil && c.Snap.Policy.Capture(c.Feature.Name)
	if capture {
		t.Input, t.Output = clip(bodyText(c.Messages, maxBody)), clip(c.Output())
	} else {
		// Scanning and redacting is the recorder's work, after the
		// client has its answer.
		t.Input, t.Output = bodyText(c.Messages, maxRaw), c.Output()
		t.Pending = trace.Later(scrub)
	}
	if !c.SpanID.IsZero() {
		t.SpanID = c.SpanID.String()
	}
	if !c.ParentID.IsZero() {
		t.ParentID = c.ParentID.String()
	}
	if c.Req != nil {
		t.Requested = c.Req.Model
		if c.Req.OutputLimit() > 0 || c.Req.Temperature != nil || c.Req.TopP != nil || c.Req.Seed != nil {
			t.Params = &trace.Params{MaxTokens: c.Req.OutputLimit(), Temperature: c.Req.Temperature, TopP: c.Req.TopP, Seed: c.Req.Seed}
		}
	}
	if c.Resp != nil {
		t.ResponseID = c.Resp.ID
		for _, ch := range c.Resp.Choices {
			if ch.FinishReason != "" {
				t.FinishReasons = append(t.FinishReasons, ch.FinishReason)
			}
		}
	}
	if c.Key != nil {
		t.Key, t.Team = c.Key.Name, c.Key.Team
	}
	if c.Release != nil {
		t.Feature, t.Release, t.ReleaseHash, t.Label = c.Release.Feature, c.Release.ID, c.Release.Hash, c.Label
	}
	if c.Route != nil {
		t.Route = c.Route.Name
	}
	if len(c.Spans) > 0 {
		t.Spans = make([]trace.Span, 0, len(c.Spans))
	}
	if len(c.Outcomes) > 0 {
		t.Attempts = make([]trace.Attempt, 0, len(c.Outcomes))
	}
	for _, s := range c.Spans {
		sp := trace.Span{Name: s.Name, Offset: trace.Ms(s.Start.Sub(c.Received)), Duration: trace.Ms(s.Dur)}
		if s.Err != nil {
			sp.Error = s.Err.Error()
		}
		t.Spans = append(t.Spans, sp)
	}
	models := map[string]bool{}
	for _, o := range c.Outcomes {
		a := trace.Attempt{Model: o.Target.Model.Name, Provider: o.Target.Model.Provider, Offset: trace.Ms(o.Start.Sub(c.Received)),
			Duration: trace.Ms(o.Duration), Backoff: trace.Ms(o.Backoff), Status: "ok"}
		switch {
		case o.Skipped:
			a.Status = "circuit_open"
		case o.Err != nil:
			a.Status, a.Error = attemptStatus(o.Err), o.Err.Error()
		}
		t.Attempts = append(t.Attempts, a)
		models[a.Model] = true
	}
	if len(models) > 1 {
		t.Fallbacks = len(models) - 1
	}
	if c.Answered != nil {
		t.Model, t.Provider = c.Answered.Model.Name, c.Answered.Model.Provider
		u := c.Spent
		t.InputTokens, t.OutputTokens, t.CachedTokens, t.ReasoningTokens = u.InputTokens, u.OutputTokens, u.CachedTokens, u.ReasoningTokens
		t.TokensEstimate = u.Estimated
		q := c.Answered.Price
		t.PriceSource, t.PriceUnknown = q.String(), !q.Known()
		t.CostUSD = c.CostUSD
	} else if c.Streamed && len(c.Outcomes) > 0 {
		// A stream cut after output was sent still cost money.
		last := c.Outcomes[len(c.Outcomes)-1].Target
		t.Model, t.Provider = last.Model.Name, last.Model.Provider
		t.PriceSource, t.PriceUnknown = last.Price.String(), !last.Price.Known()
	}
	g.costParts(c, t)
	if e := c.Err; e != nil {
		t.HTTPStatus, t.ErrorCode, t.Error, t.Status = e.Status, e.Code, e.Message, "error"
	}
	return t
}

// account fixes what the call used and what it cost once it ended: the
// provider's usage, else the gateway's estimate. The budget settles with
// it, whether or not a trace is ever built.
func (g *Gateway) account(c *Call) {
	if c.Answered != nil {
		u, cost := g.spent(c)
		c.Spent = u
		if !c.Cached {
			c.CostUSD = cost
		}
	}
	// What the call spent besides the answer it returns: cascade tiers
	// it escalated past, judges, summaries, embeddings.
	c.CostUSD += c.ExtraCostUSD
}

// spent is the tokens and cost of the answer in c: as the provider
// reported them, else counted here.
func (g *Gateway) spent(c *Call) (Spent, float64) {
	if c.Answered == nil {
		return Spent{}, 0
	}
	u := Spent{InputTokens: c.Usage.PromptTokens, OutputTokens: c.Usage.CompletionTokens,
		CachedTokens: c.Usage.CachedTokens(), ReasoningTokens: c.Usage.ReasoningTokens()}
	if !c.UsageKnown {
		u.InputTokens, u.OutputTokens, u.Estimated = c.InputTokens, 0, true
		if g.count != nil {
			u.OutputTokens = c.countOutput(g.count.Text)
		}
	}
	return u, c.Answered.Price.Cost(u.InputTokens, u.CachedTokens, u.OutputTokens, u.ReasoningTokens)
}

// costParts records how the call spent what it did besides its answer:
// the context policy, cascade tiers, the semantic cache.
func (g *Gateway) costParts(c *Call, t *trace.Trace) {
	t.CostUSD = c.CostUSD
	t.Compression, t.SemanticHit = c.Compression, c.Semantic
	if len(c.Tiers) == 0 {
		return
	}
	t.Tiers = append([]trace.Tier(nil), c.Tiers...)
	// The serving tier's cost is its final answer's, repairs included.
	if last := &t.Tiers[len(t.Tiers)-1]; last.Escalated == "" && c.Answered != nil && !c.Cached {
		last.InputTokens, last.OutputTokens = c.Spent.InputTokens, c.Spent.OutputTokens
		last.CostUSD = c.CostUSD - c.ExtraCostUSD + c.repairCostUSD
	}
	// Moving up a cascade is not a fallback.
	t.Fallbacks = max(0, t.Fallbacks-(len(c.Tiers)-1))
}

func attemptStatus(err error) string {
	var pe *provider.Error
	if errors.As(err, &pe) {
		if pe.Kind == provider.KindStatus {
			return "http_" + strconv.Itoa(pe.Status)
		}
		return string(pe.Kind)
	}
	if errors.Is(err, ErrClientGone) {
		return "client_gone"
	}
	return "error"
}

// maxClientField bounds the client address and user agent a trace keeps.
const maxClientField = 256

// cut shortens s to at most n bytes on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxBody bounds each body a trace keeps.
const maxBody = 8 << 10

// maxRaw bounds the text kept for redaction. Every redaction marker is
// at least 0.4 times as long as what it replaces, so the first maxBody
// bytes after redaction come from the first maxRaw bytes before it; when
// they would not, scrub keeps no body rather than one whose cut may have
// split a finding.
const maxRaw = 8 * maxBody

// bodyText is the prompt as one text, one "role: content" line a message,
// of about limit bytes at most.
func bodyText(msgs []chat.Message, limit int) string {
	n := 0
	for _, m := range msgs {
		if n >= limit {
			break
		}
		n += len(m.Role) + len(": ") + len(m.Content.Text) + len("\n")
	}
	var b strings.Builder
	b.Grow(min(n, limit+1))
	for _, m := range msgs {
		if b.Len() >= limit {
			break
		}
		b.WriteString(m.Role)
		b.WriteString(": ")
		b.WriteString(m.Content.Text[:min(len(m.Content.Text), limit-b.Len()+1)])
		b.WriteByte('\n')
	}
	return b.String()
}

// scrub replaces every PII finding in a trace's bodies by its type, then
// bounds them.
func scrub(t *trace.Trace) {
	t.Input, t.Output = scrubText(t.Input), scrubText(t.Output)
}

func scrubText(s string) string {
	cut := len(s) > maxRaw
	if cut {
		s = s[:maxRaw]
	}
	s = pii.Redact(s, pii.Scan(s))
	if cut && len(s) <= maxBody {
		return "[body withheld: too large to redact within bounds]"
	}
	return clip(s)
}

func clip(s string) string {
	if len(s) <= maxBody {
		return s
	}
	s = s[:maxBody]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
