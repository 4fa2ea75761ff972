package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"gantry/pipeline/chat"
)

// validate checks the output against the release's schema, or the JSON the
// caller asked for with response_format. A non-streamed invalid output is
// sent back to the model with the failures, up to the release's repair
// budget; a stream has already reached the client, so its failures are only
// recorded.
func (g *Gateway) validate(ctx context.Context, c *Call) error {
	check := g.checker(c)
	if check == nil || c.Resp == nil {
		return nil
	}
	repairs := 0
	if c.Release != nil {
		repairs = c.Release.Repair
	}
	for n := 0; ; n++ {
		failures := check(c.Output())
		if len(failures) == 0 {
			return nil
		}
		c.Validation = append(c.Validation, failures...)
		if c.Streamed || n >= repairs {
			if c.Streamed {
				return nil
			}
			return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "output_validation_failed",
				Message: "the model's output did not match the schema: " + strings.Join(failures, "; ")}
		}
		c.Messages = append(c.Messages,
			chat.Message{Role: "assistant", Content: chat.Text(c.Output())},
			chat.Message{Role: "user", Content: chat.Text(repairPrompt(failures))})
		if err := g.route(ctx, c); err != nil {
			return err
		}
	}
}

// checker returns the check that applies to the call, or nil.
func (g *Gateway) checker(c *Call) func(string) []string {
	if c.Release != nil && c.Release.Schema != nil {
		return func(out string) []string { return c.Release.Schema.Validate([]byte(out)) }
	}
	f := c.Req.ResponseFormat
	if f == nil {
		return nil
	}
	switch f.Type {
	case "json_schema":
		if c.Snap.compileSchema == nil {
			return nil
		}
		var schema any
		if err := json.Unmarshal(f.JSONSchema.Schema, &schema); err != nil {
			return func(string) []string { return []string{"response_format schema is not JSON: " + err.Error()} }
		}
		v, err := c.Snap.compileSchema(schema)
		if err != nil {
			return func(string) []string { return []string{"response_format schema: " + err.Error()} }
		}
		return func(out string) []string { return v.Validate([]byte(out)) }
	case "json_object":
		return func(out string) []string {
			var v map[string]any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				return []string{fmt.Sprintf("/: not a JSON object: %v", err)}
			}
			return nil
		}
	}
	return nil
}

func repairPrompt(failures []string) string {
	var b strings.Builder
	b.WriteString("Your previous answer did not match the required JSON schema:\n")
	for _, f := range failures {
		b.WriteString("- ")
		b.WriteString(f)
		b.WriteByte('\n')
	}
	b.WriteString("Answer again with JSON only, fixing these problems.")
	return b.String()
}
