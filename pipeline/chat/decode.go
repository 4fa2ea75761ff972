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

// Fixed limits of a request, beyond the body size, which the server bounds.
// Each is checked at decode time and a request past one is a 400 naming the
// field. The README's error section lists them.
const (
	MaxModelLen            = 256
	MaxTools               = 128
	MaxToolNameLen         = 64       // OpenAI's own bound on function names
	MaxToolBytes           = 64 << 10 // one tool's description and parameters
	MaxToolChoiceBytes     = 4 << 10
	MaxStops               = 4
	MaxStopBytes           = 256
	MaxUserLen             = 256 // as the feature API's user
	MaxNameLen             = 256 // a message's name
	MaxToolCallIDLen       = 256
	MaxToolCallsPerMessage = 128
	MaxParts               = 256       // content parts of one message
	MaxMetadataPairs       = 64        // metadata carries a feature's variables
	MaxMetadataKeyLen      = 64        // a variable name
	MaxMetadataValueBytes  = 256 << 10 // a template variable's own limit
	MaxSchemaNameLen       = 64
	MaxResponseSchemaBytes = 64 << 10 // response_format.json_schema.schema

	// HardMaxOutputTokens and HardMaxChoices bound what any configuration
	// may allow for max_tokens and n.
	HardMaxOutputTokens = 1 << 20
	HardMaxChoices      = 128
)

// Limits are the bounds of a request that the configuration sets (see
// config.Limits); zero fields take the hard bounds. The fixed limits above
// apply whatever they say.
type Limits struct {
	MaxMessages     int // messages of one request
	MaxOutputTokens int // max_tokens and max_completion_tokens
	MaxChoices      int // n
}

func (l Limits) withDefaults() Limits {
	if l.MaxOutputTokens <= 0 || l.MaxOutputTokens > HardMaxOutputTokens {
		l.MaxOutputTokens = HardMaxOutputTokens
	}
	if l.MaxChoices <= 0 || l.MaxChoices > HardMaxChoices {
		l.MaxChoices = HardMaxChoices
	}
	return l
}

// DecodeRequest parses and checks a chat completion request body. Every
// failure is a 400 *Error naming the parameter at fault. It applies the
// fixed limits and at most maxMessages messages; DecodeRequestWith applies
// a configuration's limits too.
func DecodeRequest(body []byte, maxMessages int) (*Request, error) {
	return DecodeRequestWith(body, Limits{MaxMessages: maxMessages})
}

// DecodeRequestWith parses and checks a chat completion request body within
// lim. Every failure is a 400 *Error naming the parameter at fault.
func DecodeRequestWith(body []byte, lim Limits) (*Request, error) {
	var r Request
	if err := decodeStrictJSON(body, &r); err != nil {
		return nil, err
	}
	if err := r.CheckLimits(lim); err != nil {
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
		var pe *PartError
		var fe *FieldError
		switch {
		case errors.As(err, &fe):
			return BadRequest(fe.Field, "%s", fe.Reason)
		case errors.As(err, &pe):
			where := pe.path(partContent(body))
			return BadRequest(where, "%s: %s", where, pe.Reason)
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

// FieldError is a field of a request whose JSON has a shape its own
// decoder refuses, so the 400 can name it.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Reason }

// partContent finds which message's content holds a part that did not
// decode, for the error; it runs only then.
func partContent(body []byte) string {
	var r struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &r) == nil {
		for i, m := range r.Messages {
			var c Content
			if len(m.Content) > 0 && c.UnmarshalJSON(m.Content) != nil {
				return msgPath(i) + ".content"
			}
		}
	}
	return "content"
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

// Check validates a decoded request with the fixed limits and at most
// maxMessages messages.
func (r *Request) Check(maxMessages int) error {
	return r.CheckLimits(Limits{MaxMessages: maxMessages})
}

// CheckLimits validates a decoded request within lim and the fixed limits.
func (r *Request) CheckLimits(lim Limits) error {
	lim = lim.withDefaults()
	maxMessages := lim.MaxMessages
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
		if err := checkMessage(i, &m); err != nil {
			return err
		}
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
	if err := r.CheckOutput(lim); err != nil {
		return err
	}
	if len(r.Stop) > MaxStops {
		return BadRequest("stop", "at most %d stop sequences", MaxStops)
	}
	for i, s := range r.Stop {
		if s == "" {
			return BadRequest(fmt.Sprintf("stop[%d]", i), "a stop sequence must not be empty")
		}
		if len(s) > MaxStopBytes {
			return BadRequest(fmt.Sprintf("stop[%d]", i), "a stop sequence is limited to %d bytes", MaxStopBytes)
		}
	}
	if len(r.User) > MaxUserLen {
		return BadRequest("user", "user is longer than %d bytes", MaxUserLen)
	}
	if len(r.Metadata) > MaxMetadataPairs {
		return BadRequest("metadata", "metadata has %d keys, more than the limit of %d", len(r.Metadata), MaxMetadataPairs)
	}
	for k, v := range r.Metadata {
		if len(k) > MaxMetadataKeyLen {
			return BadRequest("metadata", "metadata key %.32q… is longer than %d bytes", k, MaxMetadataKeyLen)
		}
		if len(v) > MaxMetadataValueBytes {
			return BadRequest("metadata."+k, "metadata.%s is longer than %d bytes", k, MaxMetadataValueBytes)
		}
	}
	if len(r.ToolChoice) > MaxToolChoiceBytes {
		return BadRequest("tool_choice", "tool_choice is longer than %d bytes", MaxToolChoiceBytes)
	}
	if err := CheckRawJSON(r.ToolChoice); err != nil {
		return BadRequest("tool_choice", "tool_choice: %v", err)
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
			if n := len(f.JSONSchema.Schema); n > MaxResponseSchemaBytes {
				return BadRequest("response_format.json_schema.schema", "the schema is %d bytes, more than the limit of %d", n, MaxResponseSchemaBytes)
			}
			if err := CheckRawJSON(f.JSONSchema.Schema); err != nil {
				return BadRequest("response_format.json_schema.schema", "the schema: %v", err)
			}
			if len(f.JSONSchema.Name) > MaxSchemaNameLen {
				return BadRequest("response_format.json_schema.name", "the schema name is longer than %d bytes", MaxSchemaNameLen)
			}
			if len(f.JSONSchema.Description) > MaxToolBytes {
				return BadRequest("response_format.json_schema.description", "the description is longer than %d bytes", MaxToolBytes)
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
		if len(t.Function.Name) > MaxToolNameLen {
			return BadRequest(fmt.Sprintf("tools[%d].function.name", i), "a function name is limited to %d bytes", MaxToolNameLen)
		}
		if n := len(t.Function.Description) + len(t.Function.Parameters); n > MaxToolBytes {
			return BadRequest(fmt.Sprintf("tools[%d].function", i), "a tool's description and parameters are limited to %d bytes together", MaxToolBytes)
		}
		if err := CheckRawJSON(t.Function.Parameters); err != nil {
			return BadRequest(fmt.Sprintf("tools[%d].function.parameters", i), "the parameters: %v", err)
		}
	}
	return nil
}

// CheckOutput checks the output cap and n the caller asked for against
// lim: the part of a request's limits that the configuration sets.
func (r *Request) CheckOutput(lim Limits) error {
	lim = lim.withDefaults()
	for _, p := range []struct {
		name string
		v    int
	}{{"max_tokens", r.MaxTokens}, {"max_completion_tokens", r.MaxCompletionTokens}} {
		if p.v < 0 {
			return BadRequest(p.name, "%s must not be negative", p.name)
		}
		if p.v > lim.MaxOutputTokens {
			return BadRequest(p.name, "%s is %d, more than the limit of %d", p.name, p.v, lim.MaxOutputTokens)
		}
	}
	if r.N != nil && (*r.N < 1 || *r.N > lim.MaxChoices) {
		return BadRequest("n", "n must be from 1 to %d", lim.MaxChoices)
	}
	return nil
}

// checkMessage applies the fixed limits to one message.
func checkMessage(i int, m *Message) error {
	switch {
	case len(m.Name) > MaxNameLen:
		return BadRequest(msgPath(i)+".name", "%s.name is longer than %d bytes", msgPath(i), MaxNameLen)
	case len(m.ToolCallID) > MaxToolCallIDLen:
		return BadRequest(msgPath(i)+".tool_call_id", "%s.tool_call_id is longer than %d bytes", msgPath(i), MaxToolCallIDLen)
	case len(m.ToolCalls) > MaxToolCallsPerMessage:
		return BadRequest(msgPath(i)+".tool_calls", "%s has %d tool calls, more than the limit of %d", msgPath(i), len(m.ToolCalls), MaxToolCallsPerMessage)
	case len(m.Content.Parts) > MaxParts:
		return BadRequest(msgPath(i)+".content", "%s has %d content parts, more than the limit of %d", msgPath(i), len(m.Content.Parts), MaxParts)
	}
	for j, tc := range m.ToolCalls {
		if len(tc.ID) > MaxToolCallIDLen || len(tc.Function.Name) > MaxToolNameLen {
			return BadRequest(fmt.Sprintf("%s.tool_calls[%d]", msgPath(i), j), "a tool call's id is limited to %d bytes and its function name to %d", MaxToolCallIDLen, MaxToolNameLen)
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
