package pipeline

import (
	"context"

	"gantry/config"
	"gantry/pipeline/chat"
)

// context assembles retrieved context. Releases without retrieval have
// nothing to add.
func (g *Gateway) context(_ context.Context, c *Call) error { return nil }

// prompt builds the messages that go upstream: for a feature, the release's
// rendered instructions and template followed by the caller's messages, and
// the release's pinned parameters; then counts their tokens.
func (g *Gateway) prompt(_ context.Context, c *Call) error {
	c.Messages = c.Req.Messages
	if r := c.Release; r != nil {
		var msgs []chat.Message
		if r.Prompt != nil {
			rendered, err := r.Prompt.Render(c.Vars)
			if err != nil {
				return chat.BadRequest("vars", "feature %s: %v", c.Feature.Name, err)
			}
			msgs = append(msgs, rendered...)
		}
		c.Messages = append(msgs, c.Req.Messages...)
		applyParams(c.Req, r.Params, c.Feature.OutputCap())
		if r.format != nil {
			c.Req.ResponseFormat = r.format
		}
		if len(r.tools) > 0 {
			c.Req.Tools = r.tools
		}
	}
	if len(c.Messages) == 0 {
		return chat.BadRequest("messages", "nothing to send: the request has no messages and the release no template")
	}
	if g.CountMessages != nil {
		c.InputTokens = g.CountMessages(c.Messages)
	}
	return nil
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
