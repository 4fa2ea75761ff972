// Package responses speaks OpenAI's Responses API (POST /v1/responses) on
// Gantry's gateway, statelessly: it translates a request to the gateway's
// chat.Request, and the gateway's answer and stream chunks back to a
// response object and its streaming events. Gantry stores no responses, so
// previous_response_id, store: true and item references are refused with a
// clear error. It holds pure functions; the agent's handler reads the
// body, runs the pipeline and writes what these return.
package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gantry/pipeline/chat"
)

// Limits beyond the body size, which the server bounds.
const (
	MaxItems        = 4096
	MaxParts        = 1024
	MaxOutputTokens = 1 << 20
	MaxMetadata     = 16
)

// Request is a Responses API request, only the fields Gantry carries or
// refuses.
type Request struct {
	Model              string            `json:"model"`
	Input              Input             `json:"input"`
	Instructions       string            `json:"instructions"`
	Tools              []Tool            `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Text               *TextConfig       `json:"text"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	Stream             bool              `json:"stream"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	User               string            `json:"user"`
	Metadata           map[string]string `json:"metadata"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Store              *bool             `json:"store"`
	Background         *bool             `json:"background"`
	Conversation       json.RawMessage   `json:"conversation"`
}

// Input is a text or a list of input items.
type Input []Item

func (in *Input) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*in = Input{{Role: "user", Content: Parts{{Type: "input_text", Text: s}}}}
		return nil
	}
	var items []Item
	if err := json.Unmarshal(b, &items); err != nil {
		return errors.New("input must be a string or a list of input items")
	}
	*in = items
	return nil
}

// Item is an input item: a message (type "message" or absent), a
// function call the model made, or a function call's output.
type Item struct {
	Type      string `json:"type"`
	Role      string `json:"role"`
	Content   Parts  `json:"content"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Output    Output `json:"output"`
	ID        string `json:"id"`
}

// Output is a function call's output: a string, or a list of parts of
// which the text is kept.
type Output string

func (o *Output) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*o = Output(s)
		return nil
	}
	var parts Parts
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("output must be a string or a list of content parts")
	}
	var texts []string
	for _, p := range parts {
		texts = append(texts, p.Text)
	}
	*o = Output(strings.Join(texts, "\n"))
	return nil
}

// Parts is a message's content: a string, which is one text part, or a
// list of parts.
type Parts []Part

func (p *Parts) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*p = Parts{{Type: "input_text", Text: s}}
		return nil
	}
	var list []Part
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("content must be a string or a list of content parts")
	}
	*p = list
	return nil
}

// Part is a content part: input_text, output_text, input_image, refusal.
type Part struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL string `json:"image_url"`
	FileID   string `json:"file_id"`
	Refusal  string `json:"refusal"`
}

// Tool is a function tool; other tool types run inside OpenAI's API.
type Tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// TextConfig is the text output's format.
type TextConfig struct {
	Format *Format `json:"format"`
}

// Format is text, json_object or json_schema with its schema.
type Format struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict"`
}

// Decode parses a /v1/responses body and translates it. Every failure is
// a 400 *chat.Error naming the parameter.
func Decode(body []byte) (*Request, *chat.Request, error) {
	var r Request
	if err := chat.DecodeJSON(body, &r); err != nil {
		return nil, nil, err
	}
	req, err := r.Chat()
	if err != nil {
		return nil, nil, err
	}
	return &r, req, nil
}

// Chat translates the request to the gateway's chat request.
func (r *Request) Chat() (*chat.Request, error) {
	switch {
	case r.PreviousResponseID != nil && *r.PreviousResponseID != "":
		return nil, chat.BadRequest("previous_response_id", "Gantry keeps no responses, so previous_response_id cannot be followed; send the whole conversation in input")
	case r.Store != nil && *r.Store:
		return nil, chat.BadRequest("store", "Gantry keeps no responses; send store: false or leave it out")
	case r.Background != nil && *r.Background:
		return nil, chat.BadRequest("background", "background responses need stored responses, which Gantry does not keep")
	case len(r.Conversation) > 0 && string(r.Conversation) != "null":
		return nil, chat.BadRequest("conversation", "Gantry keeps no conversations; send the whole conversation in input")
	case r.Model == "":
		return nil, chat.BadRequest("model", "model is required")
	case len(r.Model) > chat.MaxModelLen:
		return nil, chat.BadRequest("model", "model is longer than %d characters", chat.MaxModelLen)
	case len(r.Input) == 0:
		return nil, chat.BadRequest("input", "input is required: a string or a list of input items")
	case len(r.Input) > MaxItems:
		return nil, chat.BadRequest("input", "%d input items, more than the limit of %d", len(r.Input), MaxItems)
	case r.MaxOutputTokens != nil && (*r.MaxOutputTokens < 1 || *r.MaxOutputTokens > MaxOutputTokens):
		return nil, chat.BadRequest("max_output_tokens", "max_output_tokens must be between 1 and %d", MaxOutputTokens)
	case len(r.Metadata) > MaxMetadata:
		return nil, chat.BadRequest("metadata", "at most %d metadata entries", MaxMetadata)
	case len(r.User) > 256:
		return nil, chat.BadRequest("user", "user is longer than 256 characters")
	}
	out := &chat.Request{Model: r.Model, Stream: r.Stream, Temperature: r.Temperature, TopP: r.TopP,
		ParallelToolCalls: r.ParallelToolCalls, User: r.User, Metadata: r.Metadata}
	if r.MaxOutputTokens != nil {
		out.MaxCompletionTokens = *r.MaxOutputTokens
	}
	if r.Instructions != "" {
		out.Messages = append(out.Messages, chat.Message{Role: "system", Content: chat.Text(r.Instructions)})
	}
	for i, it := range r.Input {
		p := fmt.Sprintf("input[%d]", i)
		switch it.Type {
		case "", "message":
			m, err := message(p, it)
			if err != nil {
				return nil, err
			}
			out.Messages = append(out.Messages, m)
		case "function_call":
			if it.CallID == "" || it.Name == "" {
				return nil, chat.BadRequest(p, "a function_call item needs call_id and name")
			}
			call := chat.ToolCall{ID: it.CallID, Type: "function", Function: chat.FunctionCall{Name: it.Name, Arguments: it.Arguments}}
			// An assistant message and the calls after it are one turn, as
			// OpenAI's chat format has them.
			if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == "assistant" {
				out.Messages[n-1].ToolCalls = append(out.Messages[n-1].ToolCalls, call)
			} else {
				out.Messages = append(out.Messages, chat.Message{Role: "assistant", ToolCalls: []chat.ToolCall{call}})
			}
		case "function_call_output":
			if it.CallID == "" {
				return nil, chat.BadRequest(p+".call_id", "a function_call_output item needs the call_id it answers")
			}
			out.Messages = append(out.Messages, chat.Message{Role: "tool", ToolCallID: it.CallID, Content: chat.Text(string(it.Output))})
		case "reasoning":
			// The model's earlier reasoning: nothing the next call needs.
		case "item_reference":
			return nil, chat.BadRequest(p+".type", "item references point at stored items, which Gantry does not keep; send the item itself")
		default:
			return nil, chat.BadRequest(p+".type", "input item type %q cannot be carried through Gantry", it.Type)
		}
	}
	if len(r.Tools) > chat.MaxTools {
		return nil, chat.BadRequest("tools", "%d tools, more than the limit of %d", len(r.Tools), chat.MaxTools)
	}
	for i, t := range r.Tools {
		p := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return nil, chat.BadRequest(p+".type", "tool type %q runs inside OpenAI's API; Gantry offers function tools only", t.Type)
		}
		if t.Name == "" {
			return nil, chat.BadRequest(p+".name", "a function tool needs a name")
		}
		if len(t.Parameters) > 0 && !json.Valid(t.Parameters) {
			return nil, chat.BadRequest(p+".parameters", "parameters is not JSON")
		}
		out.Tools = append(out.Tools, chat.Tool{Type: "function", Function: chat.Function{Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict}})
	}
	choice, err := toolChoice(r.ToolChoice)
	if err != nil {
		return nil, err
	}
	out.ToolChoice = choice
	if r.Text != nil && r.Text.Format != nil {
		f := r.Text.Format
		switch f.Type {
		case "text":
		case "json_object":
			out.ResponseFormat = &chat.ResponseFormat{Type: "json_object"}
		case "json_schema":
			if f.Name == "" || len(bytes.TrimSpace(f.Schema)) == 0 {
				return nil, chat.BadRequest("text.format", "a json_schema format needs a name and a schema")
			}
			if !json.Valid(f.Schema) {
				return nil, chat.BadRequest("text.format.schema", "the schema is not JSON")
			}
			out.ResponseFormat = &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: f.Name, Description: f.Description, Schema: f.Schema, Strict: f.Strict}}
		default:
			return nil, chat.BadRequest("text.format.type", "text.format type %q is not text, json_object or json_schema", f.Type)
		}
	}
	if len(out.Messages) == 0 {
		return nil, chat.BadRequest("input", "input holds no message")
	}
	return out, nil
}

func message(p string, it Item) (chat.Message, error) {
	switch it.Role {
	case "user", "system", "developer", "assistant":
	default:
		return chat.Message{}, chat.BadRequest(p+".role", "role must be user, system, developer or assistant, not %q", it.Role)
	}
	if len(it.Content) > MaxParts {
		return chat.Message{}, chat.BadRequest(p+".content", "more than %d content parts", MaxParts)
	}
	var texts []string
	var parts []chat.Part
	image := false
	for j, part := range it.Content {
		pp := fmt.Sprintf("%s.content[%d]", p, j)
		switch part.Type {
		case "input_text", "output_text", "text":
			texts = append(texts, part.Text)
			parts = append(parts, chat.Part{Type: "text", Text: part.Text})
		case "refusal":
			texts = append(texts, part.Refusal)
		case "input_image":
			if it.Role != "user" || part.ImageURL == "" {
				return chat.Message{}, chat.BadRequest(pp, "an input_image needs image_url (file_id needs stored files, which Gantry does not keep) and belongs to a user message")
			}
			image = true
			parts = append(parts, chat.Part{Type: "image_url", ImageURL: &chat.ImageURL{URL: part.ImageURL}})
		default:
			return chat.Message{}, chat.BadRequest(pp+".type", "content part type %q cannot be carried through Gantry", part.Type)
		}
	}
	m := chat.Message{Role: it.Role, Content: chat.Text(strings.Join(texts, "\n"))}
	if image {
		m.Content.Parts = parts
	}
	return m, nil
}

func toolChoice(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var word string
	if json.Unmarshal(raw, &word) == nil {
		switch word {
		case "auto", "none", "required":
			return raw, nil
		}
		return nil, chat.BadRequest("tool_choice", "tool_choice %q is not auto, none or required", word)
	}
	var named struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &named) != nil || named.Type != "function" || named.Name == "" {
		return nil, chat.BadRequest("tool_choice", `tool_choice must be auto, none, required or {"type":"function","name":…}`)
	}
	return mustJSON(map[string]any{"type": "function", "function": map[string]string{"name": named.Name}}), nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
