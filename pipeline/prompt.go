package pipeline

import (
	"context"
	"errors"
	"net/http"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/prompt"
)

// context retrieves the release's context: the query is rendered from the
// variables, and the chunks found are kept for the prompt and the trace.
func (g *Gateway) context(ctx context.Context, c *Call) error {
	r := c.Release
	if r == nil || r.Retrieval == nil {
		return nil
	}
	if g.retrieve == nil {
		return &chat.Error{Status: http.StatusInternalServerError, Type: chat.TypeServer, Code: "retrieval_unavailable",
			Message: "the release uses retrieval, but this agent has no document store"}
	}
	q, err := r.Prompt.Query(c.Vars)
	if err != nil {
		return chat.BadRequest("vars", "feature %s: retrieval query: %v", c.Feature.Name, err)
	}
	got, err := g.retrieve(ctx, c.Snap.Config, *r.Retrieval, q)
	if err != nil {
		return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "retrieval_failed",
			Message: "retrieving context failed: " + err.Error(), Cause: err}
	}
	c.Context, c.Sources, c.reformat = got.Block, got.Sources, got.Format
	return nil
}

// prompt builds the messages that go upstream: for a feature, the release's
// rendered instructions and template followed by the caller's messages, and
// the release's pinned parameters; then counts their tokens.
func (g *Gateway) prompt(_ context.Context, c *Call) error {
	c.Messages = c.Req.Messages
	if r := c.Release; r != nil {
		msgs, err := render(c)
		if err != nil {
			return err
		}
		c.Messages = msgs
		applyParams(c.Req, r.Params, c.Feature.OutputCap())
		if r.format != nil {
			c.Req.ResponseFormat = r.format
		}
		if len(r.tools) > 0 {
			c.Req.Tools = r.tools
		}
	}
	if c.Req.OutputLimit() == 0 {
		// A worst-case cost needs an output cap; callers without one get
		// the default.
		c.Req.MaxTokens = config.DefaultMaxTokens
	}
	clampOutput(c)
	if len(c.Messages) == 0 {
		return chat.BadRequest("messages", "nothing to send: the request has no messages and the release no template")
	}
	if g.count != nil {
		c.InputTokens = g.count.Messages(c.Messages)
	}
	return nil
}

// render renders the release's instructions and template with the call's
// context block, followed by the caller's messages.
func render(c *Call) ([]chat.Message, error) {
	r := c.Release
	var msgs []chat.Message
	if r.Prompt != nil {
		render := r.Prompt.Render
		if c.Context != "" {
			render = func(vars map[string]any) ([]chat.Message, error) { return r.Prompt.RenderContext(vars, c.Context) }
		}
		rendered, err := render(c.Vars)
		var re *prompt.RenderLimitError
		if errors.As(err, &re) {
			return nil, refusal(err)
		}
		if err != nil {
			return nil, chat.BadRequest("vars", "feature %s: %v", c.Feature.Name, err)
		}
		msgs = append(msgs, rendered...)
	}
	return append(msgs, c.Req.Messages...), nil
}

// applyParams pins a release's sampling parameters. The caller may lower
// the output cap but never raise it past the release's or the feature's.
func applyParams(req *chat.Request, p config.Params, featureCap int) {
	if p.Temperature != nil {
		req.Temperature = p.Temperature
	}
	if p.TopP != nil {
		req.TopP = p.TopP
	}
	if len(p.Stop) > 0 {
		req.Stop = p.Stop
	}
	limit := featureCap
	if p.MaxTokens > 0 && p.MaxTokens < limit {
		limit = p.MaxTokens
	}
	if asked := req.OutputLimit(); asked > 0 && asked < limit {
		limit = asked
	}
	req.MaxTokens, req.MaxCompletionTokens = limit, 0
}
