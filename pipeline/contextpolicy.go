package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"gantry/config"
	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/compress"
	"gantry/pipeline/trace"
)

// SummaryTTL is how long a summary of a conversation's older turns is kept
// for the next call of the same conversation.
const SummaryTTL = time.Hour

// contextPolicy is the release's context policy when the call is over its
// threshold, else nil.
func (c *Call) contextPolicy() *config.ContextPolicy {
	if c.Release == nil || c.Release.Context == nil || c.InputTokens <= c.Release.Context.MaxInputTokens {
		return nil
	}
	return c.Release.Context
}

// compress applies the strategies that only shrink what the prompt stage
// rendered: refuse, drop the oldest turns, drop the weakest chunks. They
// run before the policy stage, so safety checks, rate limits and the
// budget see the smaller input. Summarising calls a model, so it runs in
// the policy stage after the safety checks (see summarize).
func (g *Gateway) compress(_ context.Context, c *Call) error {
	p := c.contextPolicy()
	if p == nil || g.count == nil {
		return nil
	}
	before := c.InputTokens
	rec := &trace.Compression{Strategy: p.Strategy, TokensBefore: before}
	switch p.Strategy {
	case config.ContextRefuse:
		return tooLong(c, p, before)
	case config.ContextDropOldest:
		c.Messages, rec.Dropped = compress.DropOldest(c.Messages, p.Keep(), p.MaxInputTokens, g.count.Messages)
	case config.ContextDropChunks:
		if err := g.dropChunks(c, p, rec); err != nil {
			return err
		}
	default:
		return nil // summarize: in the policy stage
	}
	return g.compressed(c, p, rec)
}

// compressed records what a strategy did, and refuses a call that is still
// over the threshold.
func (g *Gateway) compressed(c *Call, p *config.ContextPolicy, rec *trace.Compression) error {
	c.InputTokens = g.count.Messages(c.Messages)
	rec.TokensAfter = c.InputTokens
	rec.TokensSaved = max(rec.TokensBefore-rec.TokensAfter, 0)
	if rec.Dropped > 0 || rec.Summarized > 0 {
		c.Compression = rec
	}
	if c.InputTokens > p.MaxInputTokens {
		return tooLong(c, p, c.InputTokens)
	}
	return nil
}

func tooLong(c *Call, p *config.ContextPolicy, n int) error {
	why := ""
	if p.Strategy != config.ContextRefuse {
		why = fmt.Sprintf(" after %s (it keeps the instructions and the last %d turns)", strings.ReplaceAll(p.Strategy, "_", " "), p.Keep())
	}
	return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "context_too_long", Param: "messages",
		Message: fmt.Sprintf("the input is %d tokens%s, more than release %s allows (%d)", n, why, c.Release.ID, p.MaxInputTokens)}
}

// dropChunks leaves out retrieved chunks, lowest score first, and renders
// the prompt again until it fits or no chunk is left.
func (g *Gateway) dropChunks(c *Call, p *config.ContextPolicy, rec *trace.Compression) error {
	if c.reformat == nil || len(c.Sources) == 0 {
		return nil
	}
	order := make([]int, len(c.Sources))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return c.Sources[order[a]].Score < c.Sources[order[b]].Score })
	gone := map[int]bool{}
	sources := c.Sources
	for _, weakest := range order {
		if g.count.Messages(c.Messages) <= p.MaxInputTokens {
			break
		}
		gone[weakest] = true
		rec.DroppedChunks = append(rec.DroppedChunks, sources[weakest].Chunk)
		var keep []int
		var kept []trace.Source
		for i := range sources {
			if !gone[i] {
				keep, kept = append(keep, i), append(kept, sources[i])
			}
		}
		c.Context, c.Sources = c.reformat(keep), kept
		msgs, err := render(c)
		if err != nil {
			return err
		}
		c.Messages = msgs
	}
	rec.Dropped = len(gone)
	return nil
}

// summarize replaces the older turns of a long conversation with a summary
// written by the policy's summary route, reused for the same prefix. It
// runs last in the policy stage: after the safety checks, so the summary
// route sees only what the upstream may see, and after the budget hold,
// which covers the summary's worst case (see summaryWorstCase).
func (g *Gateway) summarize(ctx context.Context, c *Call) error {
	p := c.contextPolicy()
	if p == nil || p.Strategy != config.ContextSummarize || g.count == nil {
		return nil
	}
	rec := &trace.Compression{Strategy: p.Strategy, TokensBefore: c.InputTokens}
	older := compress.Older(c.Messages, p.Keep())
	if len(older) == 0 {
		return g.compressed(c, p, rec)
	}
	route, ok := c.Snap.Route(p.SummaryRoute)
	if !ok {
		return fmt.Errorf("release %s summarises with unknown route %s", c.Release.ID, p.SummaryRoute) // validation refuses this
	}
	// The longest summarised prefix of these turns: all of them when the
	// conversation asks again, fewer when it grew since.
	keys := compress.Keys(p.SummaryRoute, c.Messages, older)
	done, earlier := 0, ""
	for k := len(keys) - 1; k >= 0; k-- {
		if b, hit := g.cachedSummary(cache.Key(keys[k])); hit {
			done, earlier = k+1, string(b)
			break
		}
	}
	summary := earlier
	if done == len(older) {
		rec.SummaryCached = true
	} else {
		req := compress.Request(c.Messages, older[done:], earlier, p.SummaryCap())
		text, cost, err := g.side(ctx, c, route, req)
		rec.SummaryCostUSD = cost
		c.ExtraCostUSD += cost
		if err != nil {
			return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "summary_failed",
				Message: "summarising the earlier conversation failed: " + err.Error(), Cause: err}
		}
		summary = text
		if g.summaries != nil {
			g.summaries.Put(cache.Key(keys[len(keys)-1]), []byte(summary), SummaryTTL)
		}
	}
	c.Messages = compress.Summarized(c.Messages, older, summary)
	rec.Summarized = len(older)
	return g.compressed(c, p, rec)
}

func (g *Gateway) cachedSummary(k cache.Key) ([]byte, bool) {
	if g.summaries == nil {
		return nil, false
	}
	return g.summaries.Get(k)
}

// summaryWorstCase is the most a summary can cost the call: the whole
// input read by the dearest model of the summary route, and its output
// cap.
func (c *Call) summaryWorstCase() float64 {
	p := c.contextPolicy()
	if p == nil || p.Strategy != config.ContextSummarize {
		return 0
	}
	r, ok := c.Snap.Route(p.SummaryRoute)
	if !ok {
		return 0
	}
	// The transcript is the input's text, and an earlier summary it builds
	// on; the instructions add a little.
	return worstOn(r.all(), c.InputTokens+p.SummaryCap()+summaryInstructionTokens, p.SummaryCap())
}

// summaryInstructionTokens bounds the tokens compress.Request adds to the
// transcript.
const summaryInstructionTokens = 100

// side makes a call of the gateway's own (a summary, a judge's score)
// through a route with its retries and fallbacks, and returns the answer's
// text and what it cost. Its attempts stay off the trace's attempts, which
// are the answer's; the trace names what it was for and what it cost.
func (g *Gateway) side(ctx context.Context, c *Call, route *Route, req *chat.Request) (string, float64, error) {
	var text string
	var cost float64
	err := g.router.Do(ctx, route, func(actx context.Context, a *Attempt, _ func()) error {
		r := *req
		r.Model = a.Target.Model.UpstreamName()
		resp, err := a.Target.Provider.Complete(actx, &r)
		if err != nil {
			return err
		}
		if len(resp.Choices) == 0 {
			return fmt.Errorf("the upstream answered with no choices")
		}
		text = resp.Choices[0].Message.Content.Text
		in, out, cached, reasoning := 0, g.CountText(text), 0, 0
		if g.count != nil {
			in = g.count.Messages(r.Messages)
		}
		if u := resp.Usage; u != nil {
			in, out, cached, reasoning = u.PromptTokens, u.CompletionTokens, u.CachedTokens(), u.ReasoningTokens()
		}
		cost = a.Target.Price.Cost(in, cached, out, reasoning)
		return nil
	}, func(Outcome) {})
	return text, cost, err
}
