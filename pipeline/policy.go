package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gantry/pipeline/budget"
	"gantry/pipeline/chat"
	"gantry/pipeline/policy"
	"gantry/pipeline/trace"
)

// permit checks that the key may name what the call names. It runs in
// resolve, before any work is done for the call.
func permit(c *Call) error {
	k := c.Key
	if KeyAllows(k, c.Req.Model) {
		return nil
	}
	if c.Feature != nil {
		return &chat.Error{Status: http.StatusForbidden, Type: chat.TypePermission, Code: "feature_not_allowed",
			Message: fmt.Sprintf("key %q may not use feature %q", k.Name, c.Feature.Name)}
	}
	return &chat.Error{Status: http.StatusForbidden, Type: chat.TypePermission, Code: "model_not_allowed",
		Message: fmt.Sprintf("key %q may not use model %q", k.Name, c.Req.Model)}
}

// policy applies the feature's safety policy to the rendered prompt, plants
// the leak canary, and admits the call under rate limits and budgets. It
// runs after the prompt stage because every one of these needs the final
// messages or their token count.
func (g *Gateway) policy(ctx context.Context, c *Call) error {
	if n := len(c.Messages); n > c.Snap.Limits.MaxMessages {
		return chat.BadRequest("messages", "%d messages, more than the limit of %d", n, c.Snap.Limits.MaxMessages)
	}
	if err := g.safety(ctx, c); err != nil {
		return err
	}
	if err := g.rateLimit(ctx, c); err != nil {
		return err
	}
	if err := g.reserve(ctx, c); err != nil {
		return err
	}
	return g.summarize(ctx, c)
}

// safety runs the input policy on everything the upstream will see.
func (g *Gateway) safety(ctx context.Context, c *Call) error {
	eng := c.Snap.Policy
	if eng == nil || c.Feature == nil {
		return nil
	}
	req := *c.Req
	req.Messages = c.Messages
	out, err := eng.Input(ctx, c.Feature.Name, &req, c.InputTokens)
	c.Decisions = append(c.Decisions, out.Decisions...)
	// What the checks redacted is what goes upstream: every field they
	// read, not only the messages.
	c.Messages = req.Messages
	c.Req.Tools, c.Req.ResponseFormat, c.Req.Metadata, c.Req.User, c.Req.Stop = req.Tools, req.ResponseFormat, req.Metadata, req.User, req.Stop
	if err != nil {
		return refusal(err)
	}
	if canary := eng.Canary(c.Feature.Name, c.Release.Hash); canary != "" {
		c.canary = canary
		c.Messages = withSystemNote(c.Messages, policy.CanaryInstruction(canary))
	}
	return nil
}

// withSystemNote appends a note to the first system message, or puts a
// system message first. The caller's slice is not changed.
func withSystemNote(msgs []chat.Message, note string) []chat.Message {
	out := append([]chat.Message(nil), msgs...)
	for i, m := range out {
		if m.Role == "system" && len(m.Content.Parts) == 0 {
			out[i].Content = chat.Text(m.Content.Text + "\n\n" + note)
			return out
		}
	}
	return append([]chat.Message{{Role: "system", Content: chat.Text(note)}}, out...)
}

// rateLimit takes a permit for the key's, team's and feature's limits. The
// token estimate is corrected with the real usage when the call ends.
func (g *Gateway) rateLimit(ctx context.Context, c *Call) error {
	if g.limiter == nil {
		return nil
	}
	feature := ""
	if c.Feature != nil {
		feature = c.Feature.Name
	}
	scopes := c.Snap.limits.For(c.Key.Name, c.Key.Team, feature)
	if len(scopes) == 0 {
		return nil
	}
	p, st, err := g.limiter.Acquire(ctx, scopes, c.InputTokens)
	c.RateStatus = &st
	if err != nil {
		return refusal(err)
	}
	c.permit = p
	return nil
}

// reserve holds the call's worst-case cost against every budget that
// applies, atomically; a downgrade budget switches the call to its cheaper
// route first. The hold is settled or released when the call ends, on
// every path (see end).
func (g *Gateway) reserve(ctx context.Context, c *Call) error {
	if g.ledger == nil {
		return nil
	}
	subject := budget.Subject{Team: c.Key.Team, Key: c.Key.Name, User: c.User}
	if c.Feature != nil {
		subject.Feature = c.Feature.Name
	}
	scopes := c.Snap.budgets.For(subject)
	if len(scopes) == 0 {
		return nil
	}
	downgraded := false
	for {
		r := budget.Reservation{RequestID: c.ID, Scopes: scopes, AmountUSD: c.worstCase(),
			Deadline: time.Now().Add(c.Route.Deadline.D() + time.Minute), Downgraded: downgraded}
		hold, err := g.ledger.Reserve(ctx, r)
		var de *budget.DowngradeError
		switch {
		case err == nil:
			c.held = true
			for _, a := range hold.Alerts {
				c.Decisions = append(c.Decisions, trace.Decision{Rule: "budget." + a, Action: "alert"})
			}
			return nil
		case errors.As(err, &de) && !downgraded:
			route, ok := c.Snap.Route(de.Route)
			if !ok {
				// Validation refuses such a configuration; this is a bug.
				return fmt.Errorf("budget %s downgrades to unknown route %s", de.Budget, de.Route)
			}
			c.Route, downgraded = route, true
			clampOutput(c)
			c.Decisions = append(c.Decisions, trace.Decision{Rule: "budget." + de.Budget, Action: "downgrade"})
		default:
			var ee *budget.ExceededError
			if errors.As(err, &ee) {
				c.Decisions = append(c.Decisions, trace.Decision{Rule: "budget." + ee.Budget, Action: "block"})
			}
			return refusal(err)
		}
	}
}

// worstCase is the most the call can cost on any model its route may use:
// the prompt once and the output cap for each of the n choices.
// A cascade may pay for every tier; repairs, a summary of older turns and
// a semantic cache's embedding are added.
func (c *Call) worstCase() float64 {
	maxOut := c.Req.OutputLimit() * c.Req.Choices() // the prompt stage always sets a cap
	worst := c.summaryWorstCase() + c.semanticWorstCase() + c.repairWorstCase(maxOut)
	if len(c.Route.tiers) > 0 {
		return worst + c.cascadeWorstCase(maxOut)
	}
	return worst + worstOn(c.Route.all(), c.InputTokens, maxOut)
}

// repairTokens bounds what one repair adds to the conversation besides the
// invalid answer: the message listing at most validate.MaxFailures
// failures.
const repairTokens = 2048

// repairWorstCase is what the release's repairs may cost: each resends the
// conversation with every earlier invalid answer and its failures.
func (c *Call) repairWorstCase(maxOut int) float64 {
	if c.Release == nil || c.Release.Repair == 0 {
		return 0
	}
	worst := 0.0
	for k := 1; k <= c.Release.Repair; k++ {
		worst += worstOn(c.Route.all(), c.InputTokens+k*(maxOut+repairTokens), maxOut)
	}
	return worst
}

// end settles what the call spent and frees what it held. It runs on every
// exit path of Serve: success, failure, a cut stream, a client that left, a
// panic.
func (g *Gateway) end(c *Call) {
	if c.permit != nil {
		c.permit.Done(c.Spent.InputTokens + c.Spent.OutputTokens)
	}
	if !c.held {
		return
	}
	if c.Answered != nil || c.Streamed || c.CostUSD > 0 {
		g.ledger.Settle(c.ID, c.CostUSD)
	} else {
		g.ledger.Release(c.ID)
	}
}

// checkOutput applies the output policy: an output that carries the
// release's leak canary is refused.
func (g *Gateway) checkOutput(c *Call) error {
	eng := c.Snap.Policy
	if eng == nil || c.Feature == nil || c.canary == "" {
		return nil
	}
	out, err := eng.Output(c.Feature.Name, c.Release.Hash, c.Output())
	c.Decisions = append(c.Decisions, out.Decisions...)
	if err != nil {
		return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "output_blocked", Message: err.Error()}
	}
	return nil
}
