package pipeline

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"gantry/pipeline/chat"
	"gantry/pipeline/validate"
)

// Validation failure kinds, the first word of each entry of Call.Validation.
const (
	FailJSON   = "json"   // the output is not the JSON asked for
	FailSchema = "schema" // the JSON breaks the schema
	FailTool   = "tool"   // a tool call's arguments break the tool's schema
)

// validate checks the output against the release's schema (or the JSON the
// caller asked for with response_format) and tool calls against their tools'
// schemas. A non-streamed invalid output goes back to the model with the
// failures, up to the release's repair budget; a stream has already reached
// the client, so its failures are only recorded.
func (g *Gateway) validate(ctx context.Context, c *Call) error {
	if err := g.validateSchema(ctx, c); err != nil {
		return err
	}
	if err := g.checkOutput(c); err != nil {
		return err
	}
	g.storeCache(c)
	g.storeSemantic(c)
	return nil
}

func (g *Gateway) validateSchema(ctx context.Context, c *Call) error {
	check := g.checker(c)
	if check == nil || c.Resp == nil || c.Cached {
		return nil
	}
	repairs := 0
	if c.Release != nil {
		repairs = c.Release.Repair
	}
	for n := 0; ; n++ {
		kind, failures := check(c.Resp.Choices[0].Message)
		if len(failures) == 0 {
			return nil
		}
		for _, f := range failures {
			c.Validation = append(c.Validation, kind+" "+f.String())
		}
		if g.obs != nil && c.Release != nil && !c.Evaluation() {
			g.obs.ValidationFailure(c.Release.Feature, c.Release.ID, kind)
		}
		if c.Streamed {
			return nil
		}
		if n >= repairs {
			return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "output_validation_failed",
				Message: "the model's output did not match the schema: " + strings.Join(validate.Strings(failures), "; ")}
		}
		// The invalid answer was paid for, whatever the repair brings.
		_, cost := g.spent(c)
		c.ExtraCostUSD += cost
		c.repairCostUSD += cost
		c.Messages = validate.Repair(c.Messages, c.Output(), failures)
		if err := g.route(ctx, c); err != nil {
			return err
		}
	}
}

// checker returns the check that applies to the call, or nil: the
// release's schema and tools, else the caller's response_format.
func (g *Gateway) checker(c *Call) func(chat.Message) (string, []validate.Failure) {
	var schema *validate.Schema
	var tools *validate.Tools
	jsonOnly := false
	if r := c.Release; r != nil {
		schema, tools = r.Schema, r.Tools
	}
	if f := c.Req.ResponseFormat; schema == nil && f != nil {
		switch f.Type {
		case "json_schema":
			schema = c.callerSchema // compiled before anything was spent
		case "json_object":
			jsonOnly = true
		}
	}
	if schema == nil && !jsonOnly && tools == nil {
		return nil
	}
	return func(m chat.Message) (string, []validate.Failure) {
		if len(m.ToolCalls) > 0 {
			if tools != nil {
				return FailTool, tools.CheckAll(m.ToolCalls)
			}
			return "", nil
		}
		out := []byte(m.Content.Text)
		switch {
		case schema != nil:
			fs := schema.Validate(out)
			if len(fs) == 1 && strings.HasPrefix(fs[0].Reason, "invalid JSON") {
				return FailJSON, fs
			}
			return FailSchema, fs
		case jsonOnly:
			var v map[string]any
			if err := json.Unmarshal(out, &v); err != nil {
				return FailJSON, []validate.Failure{{Reason: "not a JSON object: " + err.Error()}}
			}
		}
		return "", nil
	}
}
