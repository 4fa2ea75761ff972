package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"gantry/config"
	"gantry/pipeline/budget"
	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
)

// cascade tries a cascade route's tiers, cheapest first, and moves to the
// next when the answer is not good enough (see escalation) or the tier
// failed. Every tier's cost stays on the call. A stream's answer reached
// the client as it came, so a streamed call stays with the tier that began
// it, and so does an embeddings call.
func (g *Gateway) cascade(ctx context.Context, c *Call) error {
	tiers := c.Route.tiers
	for i, tier := range tiers {
		c.tier = tier
		last := i == len(tiers)-1 || c.Embed != nil
		err := g.routeOn(ctx, c, tier)
		rec := trace.Tier{Route: tier.Name}
		cost := 0.0
		if c.Answered != nil {
			rec.Model = c.Answered.Model.Name
			var u Spent
			u, cost = g.spent(c)
			rec.InputTokens, rec.OutputTokens, rec.CostUSD = u.InputTokens, u.OutputTokens, cost
		}
		if err != nil {
			if last || c.Streamed || ctx.Err() != nil || clientGone(err) {
				c.Tiers = append(c.Tiers, rec)
				return err
			}
			rec.Escalated = "error"
			c.Tiers = append(c.Tiers, rec)
			c.ExtraCostUSD += cost
			continue
		}
		reason := ""
		if !last && !c.Streamed {
			reason = g.escalation(ctx, c, &rec)
		}
		rec.Escalated = reason
		c.Tiers = append(c.Tiers, rec)
		if reason == "" {
			return nil
		}
		// The answer is thrown away, not what it cost.
		c.ExtraCostUSD += cost
		c.Resp, c.Answered, c.Usage, c.UsageKnown = nil, nil, chat.Usage{}, false
	}
	return nil // not reached: the last tier returns
}

func clientGone(err error) bool {
	var ce *chat.Error
	return errors.Is(err, ErrClientGone) || errors.As(err, &ce) && ce.Status == StatusClientClosed
}

// escalation says why the answer in c is not good enough for the route,
// or "" when it is. Checks that cost nothing come first; the judge, when
// the route has one, scores a sample of the answers that pass them.
func (g *Gateway) escalation(ctx context.Context, c *Call, rec *trace.Tier) string {
	e := c.Route.Escalate
	choice := c.Resp.Choices[0]
	m := choice.Message
	switch {
	case e.Escalates(config.EscalateLength) && choice.FinishReason == "length":
		return config.EscalateLength
	case e.Escalates(config.EscalateEmpty) && strings.TrimSpace(m.Content.Text) == "" && len(m.ToolCalls) == 0 && !hasRefusalPart(m):
		return config.EscalateEmpty
	case e.Escalates(config.EscalateRefusal) && Refused(choice):
		return config.EscalateRefusal
	}
	if e.Escalates(config.EscalateInvalid) {
		if check := g.checker(c); check != nil {
			if _, failures := check(m); len(failures) > 0 {
				return config.EscalateInvalid
			}
		}
	}
	if e.Escalates(config.EscalateJudge) && rand.Float64() < e.Judge.SampleRate {
		score, cost, err := g.judge(ctx, c, e.Judge)
		rec.JudgeCostUSD = cost
		c.ExtraCostUSD += cost
		if err != nil {
			g.log.Warn("judge failed; the answer stands", "request_id", c.ID, "route", e.Judge.Route, "err", err)
			return ""
		}
		rec.JudgeScore = &score
		if score < e.Judge.Threshold {
			return config.EscalateJudge
		}
	}
	return ""
}

func hasRefusalPart(m chat.Message) bool {
	for _, p := range m.Content.Parts {
		if p.Type == chat.PartRefusal {
			return true
		}
	}
	return false
}

// refusalOpenings start the answers of a model that declines, in the
// wording models use; matched on the start of the answer only, so an
// answer that quotes one further in still counts as an answer.
var refusalOpenings = []string{
	"i can't help with", "i cannot help with", "i can't assist with", "i cannot assist with",
	"i'm sorry, but i can't", "i'm sorry, but i cannot", "i am sorry, but i cannot", "sorry, i can't",
	"i'm unable to", "i am unable to", "i won't be able to", "i can't provide", "i cannot provide",
}

// Refused reports whether a choice is a refusal: a refusal part, a content
// filter's stop, or an answer that opens by declining.
func Refused(ch chat.Choice) bool {
	if ch.FinishReason == "content_filter" || hasRefusalPart(ch.Message) {
		return true
	}
	text := strings.TrimSpace(ch.Message.Content.Text)
	if len(text) > 120 {
		text = text[:120]
	}
	text = strings.ToLower(strings.ReplaceAll(text, "’", "'"))
	for _, o := range refusalOpenings {
		if strings.HasPrefix(text, o) {
			return true
		}
	}
	return false
}

// judgeMaxTokens caps a judge's answer: a score in a small JSON object.
const judgeMaxTokens = 32

// judgeBodyBytes bounds the question and the answer a judge reads.
const judgeBodyBytes = 8 << 10

var judgeSchema = json.RawMessage(`{"type":"object","properties":{"score":{"type":"number","minimum":0,"maximum":1}},"required":["score"],"additionalProperties":false}`)

// judge asks the judge route to score the answer in c from 0 to 1.
func (g *Gateway) judge(ctx context.Context, c *Call, j *config.Judge) (float64, float64, error) {
	route, ok := c.Snap.Route(j.Route)
	if !ok {
		return 0, 0, fmt.Errorf("unknown judge route %s", j.Route) // validation refuses this
	}
	question := ""
	for _, m := range c.Messages {
		if m.Role == "user" {
			question = m.Content.Text
		}
	}
	t := 0.0
	strict := false
	req := &chat.Request{
		Messages: []chat.Message{
			{Role: "system", Content: chat.Text(`You grade answers. Score how well the answer serves the question: 1 is complete and correct, 0 is useless or wrong. Reply with JSON: {"score": <number from 0 to 1>}.`)},
			{Role: "user", Content: chat.Text("Question:\n" + clipBytes(question, judgeBodyBytes) + "\n\nAnswer:\n" + clipBytes(c.Output(), judgeBodyBytes))},
		},
		MaxTokens:      judgeMaxTokens,
		Temperature:    &t,
		ResponseFormat: &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: "score", Schema: judgeSchema, Strict: &strict}},
	}
	text, cost, err := g.side(ctx, c, route, req)
	if err != nil {
		return 0, cost, err
	}
	score, err := ParseScore(text)
	return score, cost, err
}

// MaxScoreBytes bounds a judge's answer that ParseScore reads.
const MaxScoreBytes = 1 << 10

// ParseScore reads a judge's score: {"score": x} or a bare number, in
// 0..1.
func ParseScore(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxScoreBytes {
		return 0, fmt.Errorf("a judge's answer of %d bytes, more than %d", len(s), MaxScoreBytes)
	}
	var v float64
	if strings.HasPrefix(s, "{") {
		var obj struct {
			Score *float64 `json:"score"`
		}
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			return 0, fmt.Errorf("the judge's answer is not JSON: %v", err)
		}
		if obj.Score == nil {
			return 0, errors.New(`the judge's answer has no "score"`)
		}
		v = *obj.Score
	} else {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("the judge's answer %q is not a score", clipBytes(s, 40))
		}
		v = f
	}
	if math.IsNaN(v) || v < 0 || v > 1 {
		return 0, fmt.Errorf("score %v is outside 0..1", v)
	}
	return v, nil
}

func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return clip(s[:n])
}

// cascadeWorstCase is the most a cascade call can cost: every tier's worst
// case, and a judge's for each tier that may be judged.
func (c *Call) cascadeWorstCase(maxOut int) float64 {
	tiers := c.Route.tiers
	worst := 0.0
	for _, t := range tiers {
		worst += worstOn(t.all(), c.InputTokens, maxOut)
	}
	if e := c.Route.Escalate; e != nil && e.Judge != nil {
		if jr, ok := c.Snap.Route(e.Judge.Route); ok {
			// The judge reads the question and the answer, each bounded.
			in := min(c.InputTokens, judgeBodyBytes) + min(maxOut, judgeBodyBytes) + 100
			worst += float64(len(tiers)-1) * worstOn(jr.all(), in, judgeMaxTokens)
		}
	}
	return worst
}

func worstOn(targets []*Target, in, out int) float64 {
	worst := 0.0
	for _, t := range targets {
		worst = max(worst, budget.WorstCase(t.Price.Price, in, out))
	}
	return worst
}
