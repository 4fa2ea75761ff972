package pipeline

import (
	"net/http"

	"gantry/pipeline/chat"
	"gantry/pipeline/validate"
)

// admit checks what the caller asked for against the configuration's
// limits and what the route can do, before any work is spent on the call:
// the output cap (global and each model's), and n. The agent applies the
// same configured limits when it decodes a chat request; this keeps them
// for every entry point.
func admit(c *Call) error {
	if err := c.Req.CheckOutput(c.Snap.ChatLimits()); err != nil {
		return err
	}
	if asked := c.Req.OutputLimit(); asked > 0 {
		if limit, model := c.Route.outputCap(); limit > 0 && asked > limit {
			return chat.BadRequest(outputParam(c.Req), "%s is %d, more than model %s produces in one call (%d)", outputParam(c.Req), asked, model, limit)
		}
	}
	if err := compileCallerSchema(c); err != nil {
		return err
	}
	if n := c.Req.Choices(); n > 1 {
		if c.Feature != nil {
			return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "n_unsupported", Param: "n",
				Message: "a feature answers with one validated output; n must be 1"}
		}
		if model := c.Route.choicesUnsupported(); model != "" {
			return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "n_unsupported", Param: "n",
				Message: "model " + model + " of this route answers with one choice; n must be 1"}
		}
	}
	return nil
}

// outputParam names the output cap the caller set.
func outputParam(r *chat.Request) string {
	if r.MaxCompletionTokens > 0 {
		return "max_completion_tokens"
	}
	return "max_tokens"
}

// clampOutput lowers an output cap that came from the configuration (a
// feature's, a release's, the default) to what every model of the route
// produces; a cap the caller set above it was refused in admit.
func clampOutput(c *Call) {
	limit, _ := c.Route.outputCap()
	if limit > 0 && c.Req.OutputLimit() > limit {
		c.Req.MaxTokens, c.Req.MaxCompletionTokens = limit, 0
	}
}

// compileCallerSchema compiles the schema of the caller's response_format
// under a caller's bounds (validate.CompileCaller), before anything is
// spent: a schema the validator cannot use is the caller's 400, never a
// 502 after a billed upstream call. A release's own schema replaces the
// caller's, so it is not compiled then.
func compileCallerSchema(c *Call) error {
	f := c.Req.ResponseFormat
	if f == nil || f.Type != "json_schema" || f.JSONSchema == nil || (c.Release != nil && c.Release.format != nil) {
		return nil
	}
	s, err := validate.CompileCaller(f.JSONSchema.Schema)
	if err != nil {
		return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "invalid_schema",
			Param: "response_format.json_schema.schema", Message: err.Error()}
	}
	c.callerSchema = s
	return nil
}
