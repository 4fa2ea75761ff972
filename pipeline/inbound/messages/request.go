// Package messages speaks Anthropic's Messages API (POST /v1/messages and
// /v1/messages/count_tokens) on Gantry's gateway: it translates a request
// to the gateway's chat.Request, and the gateway's answer, stream chunks and
// errors back to Anthropic's shapes, so the Anthropic SDKs and Claude Code
// work with only a base URL change. It holds pure functions; the agent's
// handler reads the body, runs the pipeline and writes what these return.
package messages

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
	MaxMessages  = 4096
	MaxBlocks    = 1024 // content blocks in one message or system prompt
	MaxMaxTokens = 1 << 20
)

// Request is a Messages API request, only the fields Gantry carries or
// refuses.
type Request struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	Messages      []Message       `json:"messages"`
	System        Blocks          `json:"system"`
	StopSequences []string        `json:"stop_sequences"`
	Stream        bool            `json:"stream"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	Tools         []Tool          `json:"tools"`
	ToolChoice    *ToolChoice     `json:"tool_choice"`
	Metadata      *Metadata       `json:"metadata"`
	Thinking      json.RawMessage `json:"thinking"`
	MCPServers    json.RawMessage `json:"mcp_servers"`
	Container     json.RawMessage `json:"container"`
}

// Message is one turn.
type Message struct {
	Role    string `json:"role"`
	Content Blocks `json:"content"`
}

// Blocks is content: a string, which is one text block, or a list of
// blocks.
type Blocks []Block

func (b *Blocks) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		*b = nil
		return nil
	}
	var s string
	if json.Unmarshal(data, &s) == nil {
		*b = Blocks{{Type: "text", Text: s}}
		return nil
	}
	var list []Block
	if err := json.Unmarshal(data, &list); err != nil {
		return errors.New("content must be a string or a list of content blocks")
	}
	*b = list
	return nil
}

// Block is one content block of any type.
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *Source         `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   Blocks          `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

// Source is an image's data.
type Source struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

// Tool is a client tool; server tools have a type and are refused.
type Tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// ToolChoice is auto, any, tool (with a name) or none.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

// Metadata carries the end user's id.
type Metadata struct {
	UserID string `json:"user_id"`
}

// Decode parses a /v1/messages body and translates it. Every failure is a
// 400 *chat.Error naming the parameter, which ErrorBody turns into
// Anthropic's shape.
func Decode(body []byte) (*Request, *chat.Request, error) {
	var r Request
	if err := chat.DecodeJSON(body, &r); err != nil {
		return nil, nil, err
	}
	req, err := r.Chat(true)
	if err != nil {
		return nil, nil, err
	}
	return &r, req, nil
}

// Chat translates the request to the gateway's chat request. needMax is
// false for count_tokens, which takes no max_tokens.
func (r *Request) Chat(needMax bool) (*chat.Request, error) {
	out := &chat.Request{Model: r.Model, Stream: r.Stream, Temperature: r.Temperature, TopP: r.TopP, Stop: r.StopSequences}
	switch {
	case r.Model == "":
		return nil, chat.BadRequest("model", "model is required")
	case len(r.Model) > chat.MaxModelLen:
		return nil, chat.BadRequest("model", "model is longer than %d characters", chat.MaxModelLen)
	case needMax && r.MaxTokens == nil:
		return nil, chat.BadRequest("max_tokens", "max_tokens is required")
	case r.MaxTokens != nil && (*r.MaxTokens < 1 || *r.MaxTokens > MaxMaxTokens):
		return nil, chat.BadRequest("max_tokens", "max_tokens must be between 1 and %d", MaxMaxTokens)
	case len(r.Messages) == 0:
		return nil, chat.BadRequest("messages", "messages must hold at least one message")
	case len(r.Messages) > MaxMessages:
		return nil, chat.BadRequest("messages", "%d messages, more than the limit of %d", len(r.Messages), MaxMessages)
	case len(r.StopSequences) > chat.MaxStops:
		return nil, chat.BadRequest("stop_sequences", "at most %d stop sequences", chat.MaxStops)
	case r.TopK != nil:
		return nil, chat.BadRequest("top_k", "top_k cannot be carried to every provider Gantry routes to; leave it out")
	case len(r.MCPServers) > 0 && string(r.MCPServers) != "null":
		return nil, chat.BadRequest("mcp_servers", "MCP servers run inside Anthropic's API; Gantry cannot offer them")
	case len(r.Container) > 0 && string(r.Container) != "null":
		return nil, chat.BadRequest("container", "containers run inside Anthropic's API; Gantry cannot offer them")
	}
	// thinking is accepted and not forwarded: the answer stays valid, it
	// only comes without thinking blocks.
	if r.MaxTokens != nil {
		out.MaxTokens = *r.MaxTokens
	}
	if r.Metadata != nil {
		if len(r.Metadata.UserID) > 256 {
			return nil, chat.BadRequest("metadata.user_id", "metadata.user_id is longer than 256 characters")
		}
		out.User = r.Metadata.UserID
	}
	if len(r.System) > 0 {
		text, err := systemText(r.System)
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, chat.Message{Role: "system", Content: chat.Text(text)})
	}
	for i, m := range r.Messages {
		msgs, err := turn(fmt.Sprintf("messages[%d]", i), m)
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, msgs...)
	}
	if len(r.Tools) > chat.MaxTools {
		return nil, chat.BadRequest("tools", "%d tools, more than the limit of %d", len(r.Tools), chat.MaxTools)
	}
	for i, t := range r.Tools {
		p := fmt.Sprintf("tools[%d]", i)
		if t.Type != "" && t.Type != "custom" {
			return nil, chat.BadRequest(p+".type", "server tool %q runs inside Anthropic's API; Gantry offers client tools only", t.Type)
		}
		if t.Name == "" {
			return nil, chat.BadRequest(p+".name", "a tool needs a name")
		}
		if len(t.InputSchema) > 0 && !json.Valid(t.InputSchema) {
			return nil, chat.BadRequest(p+".input_schema", "input_schema is not JSON")
		}
		out.Tools = append(out.Tools, chat.Tool{Type: "function", Function: chat.Function{Name: t.Name, Description: t.Description, Parameters: t.InputSchema}})
	}
	if c := r.ToolChoice; c != nil {
		switch c.Type {
		case "auto":
			out.ToolChoice = json.RawMessage(`"auto"`)
		case "any":
			out.ToolChoice = json.RawMessage(`"required"`)
		case "none":
			out.ToolChoice = json.RawMessage(`"none"`)
		case "tool":
			if c.Name == "" {
				return nil, chat.BadRequest("tool_choice.name", "tool_choice of type tool needs a name")
			}
			b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": c.Name}})
			out.ToolChoice = b
		default:
			return nil, chat.BadRequest("tool_choice.type", "tool_choice type %q is not auto, any, tool or none", c.Type)
		}
		if c.DisableParallelToolUse {
			no := false
			out.ParallelToolCalls = &no
		}
	}
	return out, nil
}

func systemText(blocks Blocks) (string, error) {
	if len(blocks) > MaxBlocks {
		return "", chat.BadRequest("system", "more than %d system blocks", MaxBlocks)
	}
	var parts []string
	for i, b := range blocks {
		if b.Type != "text" {
			return "", chat.BadRequest(fmt.Sprintf("system[%d].type", i), "system blocks must be text, not %q", b.Type)
		}
		parts = append(parts, b.Text)
	}
	return strings.Join(parts, "\n\n"), nil
}

// turn translates one message. A user turn's tool results become tool
// messages, ahead of its other content, as OpenAI's format wants them
// right after the assistant's calls.
func turn(p string, m Message) ([]chat.Message, error) {
	if len(m.Content) > MaxBlocks {
		return nil, chat.BadRequest(p+".content", "more than %d content blocks", MaxBlocks)
	}
	if m.Role == "system" {
		text, err := systemText(m.Content)
		if err != nil {
			return nil, chat.BadRequest(p+".content", "a system message carries text blocks only")
		}
		return []chat.Message{{Role: "system", Content: chat.Text(text)}}, nil
	}
	if m.Role != "user" && m.Role != "assistant" {
		return nil, chat.BadRequest(p+".role", "role must be user, assistant or system, not %q", m.Role)
	}
	var out []chat.Message
	var parts []chat.Part
	var text []string
	hasImage := false
	var calls []chat.ToolCall
	for j, b := range m.Content {
		bp := fmt.Sprintf("%s.content[%d]", p, j)
		switch b.Type {
		case "text":
			text = append(text, b.Text)
			parts = append(parts, chat.Part{Type: "text", Text: b.Text})
		case "image":
			if m.Role != "user" {
				return nil, chat.BadRequest(bp+".type", "only user messages carry images")
			}
			url, err := imageURL(b.Source)
			if err != nil {
				return nil, chat.BadRequest(bp+".source", "%v", err)
			}
			hasImage = true
			parts = append(parts, chat.Part{Type: "image_url", ImageURL: &chat.ImageURL{URL: url}})
		case "tool_use":
			if m.Role != "assistant" {
				return nil, chat.BadRequest(bp+".type", "tool_use blocks belong to assistant messages")
			}
			args := bytes.TrimSpace(b.Input)
			if len(args) == 0 {
				args = []byte("{}")
			}
			if !json.Valid(args) || args[0] != '{' {
				return nil, chat.BadRequest(bp+".input", "tool_use input must be a JSON object")
			}
			var compact bytes.Buffer
			json.Compact(&compact, args)
			calls = append(calls, chat.ToolCall{ID: b.ID, Type: "function", Function: chat.FunctionCall{Name: b.Name, Arguments: compact.String()}})
		case "tool_result":
			if m.Role != "user" {
				return nil, chat.BadRequest(bp+".type", "tool_result blocks belong to user messages")
			}
			var result []string
			for k, c := range b.Content {
				if c.Type != "text" {
					return nil, chat.BadRequest(fmt.Sprintf("%s.content[%d].type", bp, k), "a tool result can carry text only through Gantry, not %q", c.Type)
				}
				result = append(result, c.Text)
			}
			content := strings.Join(result, "\n")
			if b.IsError {
				content = "Error: " + content
			}
			out = append(out, chat.Message{Role: "tool", ToolCallID: b.ToolUseID, Content: chat.Text(content)})
		case "thinking", "redacted_thinking":
			// The model's own earlier thinking: not part of what the next
			// call needs through an OpenAI-shaped pipeline.
		default:
			return nil, chat.BadRequest(bp+".type", "content block type %q cannot be carried through Gantry", b.Type)
		}
	}
	if len(text) == 0 && !hasImage && len(calls) == 0 {
		return out, nil
	}
	msg := chat.Message{Role: m.Role, Content: chat.Text(strings.Join(text, "\n")), ToolCalls: calls}
	if hasImage {
		msg.Content = chat.Content{Text: strings.Join(text, "\n"), Parts: parts}
	}
	return append(out, msg), nil
}

// imageURL carries an image as OpenAI does: a data: URL, or its URL.
func imageURL(s *Source) (string, error) {
	if s == nil {
		return "", errors.New("an image needs a source")
	}
	switch s.Type {
	case "base64":
		if !strings.HasPrefix(s.MediaType, "image/") || s.Data == "" {
			return "", errors.New("a base64 image needs an image/* media_type and data")
		}
		return "data:" + s.MediaType + ";base64," + s.Data, nil
	case "url":
		if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
			return "", errors.New("an image url must be http or https")
		}
		return s.URL, nil
	}
	return "", fmt.Errorf("image source type %q cannot be carried (want base64 or url)", s.Type)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
