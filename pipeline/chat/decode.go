package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Limits a request must keep beyond the body size, which the server bounds.
const (
	MaxModelLen = 256
	MaxTools    = 128
	MaxStops    = 4
)

// DecodeRequest parses and checks a chat completion request body. Every
// failure is a 400 *Error naming the parameter at fault.
func DecodeRequest(body []byte, maxMessages int) (*Request, error) {
	var r Request
	if err := decodeStrictJSON(body, &r); err != nil {
		return nil, err
	}
	if err := r.Check(maxMessages); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeJSON decodes one JSON object body into v with the same checks and
// error messages as a chat request.
func DecodeJSON(body []byte, v any) *Error {
	if err := decodeStrictJSON(body, v); err != nil {
		return err.(*Error)
	}
	return nil
}

// decodeStrictJSON decodes one JSON value into v. Invalid UTF-8 is refused
// rather than silently replaced, and type errors name the field.
func decodeStrictJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return BadRequest("", "the request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return BadRequest("", "the request body is not valid UTF-8")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return BadRequest(te.Field, "%s must be %s, not a JSON %s", fieldName(te.Field), article(te.Type.String()), te.Value)
		case errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value"):
			return BadRequest("", "the request body has data after the JSON object")
		case errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end of JSON input"):
			return BadRequest("", "the request body is not valid JSON: it ends early")
		case errors.As(err, &se):
			return BadRequest("", "the request body is not valid JSON: %s at byte %d", se.Error(), se.Offset)
		default:
			return BadRequest("", "the request body is not valid: %s", err.Error())
		}
	}
	return nil
}

func fieldName(f string) string {
	if f == "" {
		return "the body"
	}
	return f
}

func article(t string) string {
	switch t {
	case "string":
		return "a string"
	case "int", "int64", "float64", "*float64", "*int64":
		return "a number"
	case "bool", "*bool":
		return "true or false"
	case "chat.Request":
		return "a JSON object"
	}
	if len(t) > 2 && t[:2] == "[]" {
		return "a list"
	}
	return "an object"
}

// Check validates a decoded request.
func (r *Request) Check(maxMessages int) error {
	if r.Model == "" {
		return BadRequest("model", "model is required")
	}
	if len(r.Model) > MaxModelLen {
		return BadRequest("model", "model is longer than %d characters", MaxModelLen)
	}
	if len(r.Messages) == 0 {
		return BadRequest("messages", "messages must hold at least one message")
	}
	if maxMessages > 0 && len(r.Messages) > maxMessages {
		return BadRequest("messages", "%d messages, more than the limit of %d", len(r.Messages), maxMessages)
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "developer", "user":
			if m.Content.Text == "" && len(m.Content.Parts) == 0 {
				return BadRequest(msgPath(i)+".content", "%s has no content", msgPath(i))
			}
		case "assistant":
			if m.Content.Text == "" && len(m.Content.Parts) == 0 && len(m.ToolCalls) == 0 {
				return BadRequest(msgPath(i)+".content", "%s has neither content nor tool calls", msgPath(i))
			}
		case "tool":
			if m.ToolCallID == "" {
				return BadRequest(msgPath(i)+".tool_call_id", "%s is a tool result without tool_call_id", msgPath(i))
			}
		case "":
			return BadRequest(msgPath(i)+".role", "%s has no role", msgPath(i))
		default:
			return BadRequest(msgPath(i)+".role", "%s has unknown role %q", msgPath(i), m.Role)
		}
	}
	if err := inRange("temperature", r.Temperature, 0, 2); err != nil {
		return err
	}
	if err := inRange("top_p", r.TopP, 0, 1); err != nil {
		return err
	}
	if err := inRange("presence_penalty", r.PresencePenalty, -2, 2); err != nil {
		return err
	}
	if err := inRange("frequency_penalty", r.FrequencyPenalty, -2, 2); err != nil {
		return err
	}
	if r.MaxTokens < 0 {
		return BadRequest("max_tokens", "max_tokens must not be negative")
	}
	if r.MaxCompletionTokens < 0 {
		return BadRequest("max_completion_tokens", "max_completion_tokens must not be negative")
	}
	if len(r.Stop) > MaxStops {
		return BadRequest("stop", "at most %d stop sequences", MaxStops)
	}
	if r.StreamOptions != nil && !r.Stream {
		return BadRequest("stream_options", "stream_options is only allowed when stream is true")
	}
	if f := r.ResponseFormat; f != nil {
		switch f.Type {
		case "text", "json_object":
		case "json_schema":
			if f.JSONSchema == nil || len(f.JSONSchema.Schema) == 0 {
				return BadRequest("response_format.json_schema", "a json_schema response format needs json_schema.schema")
			}
		default:
			return BadRequest("response_format.type", "unknown response_format type %q (want text, json_object or json_schema)", f.Type)
		}
	}
	if len(r.Tools) > MaxTools {
		return BadRequest("tools", "at most %d tools", MaxTools)
	}
	for i, t := range r.Tools {
		if t.Type != "function" {
			return BadRequest(fmt.Sprintf("tools[%d].type", i), "tool type must be \"function\"")
		}
		if t.Function.Name == "" {
			return BadRequest(fmt.Sprintf("tools[%d].function.name", i), "a tool needs a function name")
		}
	}
	return nil
}

// msgPath names message i in an error; it is built only for one.
func msgPath(i int) string { return fmt.Sprintf("messages[%d]", i) }

func inRange(param string, v *float64, lo, hi float64) error {
	if v != nil && (math.IsNaN(*v) || *v < lo || *v > hi) {
		return BadRequest(param, "%s must be between %g and %g", param, lo, hi)
	}
	return nil
}
