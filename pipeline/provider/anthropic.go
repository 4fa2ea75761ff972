package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gantry/pipeline/chat"
)

// Anthropic API constants.
const (
	DefaultAnthropicURL = "https://api.anthropic.com"
	anthropicVersion    = "2023-06-01"
	// anthropicMaxTokens is sent when the caller sets no output cap, since
	// the Messages API requires one.
	anthropicMaxTokens = 4096
)

// Anthropic calls Anthropic's Messages API, translating OpenAI-shaped
// requests and answers both ways.
type Anthropic struct{ endpoint }

var _ Provider = (*Anthropic)(nil)

// NewAnthropic returns a provider for the Messages API at baseURL (empty
// means DefaultAnthropicURL; /v1/messages is appended). A nil client means
// DefaultClient.
func NewAnthropic(baseURL, apiKey string, client *http.Client) *Anthropic {
	h := http.Header{}
	h.Set("X-Api-Key", apiKey)
	h.Set("Anthropic-Version", anthropicVersion)
	return &Anthropic{newEndpoint(baseURL, DefaultAnthropicURL, "/v1/messages", h, client)}
}

func (p *Anthropic) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	body, err := encodeAnthropic(req, false)
	if err != nil {
		return nil, err
	}
	data, err := p.complete(ctx, body)
	if err != nil {
		return nil, err
	}
	return decodeAnthropicResponse(data, time.Now())
}

func (p *Anthropic) Stream(ctx context.Context, req *chat.Request) (Stream, error) {
	body, err := encodeAnthropic(req, true)
	if err != nil {
		return nil, err
	}
	events, err := p.stream(ctx, body)
	if err != nil {
		return nil, err
	}
	return startStream(ctx, events, &anthropicDecoder{created: time.Now().Unix(), tools: map[int]int{}})
}

// Wire types of the Messages API, only the fields Gantry uses.
type (
	anthropicRequest struct {
		Model         string               `json:"model"`
		System        string               `json:"system,omitempty"`
		Messages      []anthropicMessage   `json:"messages"`
		MaxTokens     int                  `json:"max_tokens"`
		Temperature   *float64             `json:"temperature,omitempty"`
		TopP          *float64             `json:"top_p,omitempty"`
		StopSequences []string             `json:"stop_sequences,omitempty"`
		Stream        bool                 `json:"stream,omitempty"`
		Tools         []anthropicTool      `json:"tools,omitempty"`
		ToolChoice    *anthropicToolChoice `json:"tool_choice,omitempty"`
		Metadata      *anthropicMetadata   `json:"metadata,omitempty"`
	}
	anthropicMessage struct {
		Role    string           `json:"role"`
		Content []anthropicBlock `json:"content"`
	}
	anthropicBlock struct {
		Type      string           `json:"type"`
		Text      string           `json:"text,omitempty"`
		Source    *anthropicSource `json:"source,omitempty"`
		ID        string           `json:"id,omitempty"`
		Name      string           `json:"name,omitempty"`
		Input     json.RawMessage  `json:"input,omitempty"`
		ToolUseID string           `json:"tool_use_id,omitempty"`
		Content   string           `json:"content,omitempty"`
	}
	// anthropicOutBlock is a block of an answer. It is apart from
	// anthropicBlock because server-side tool results carry lists where
	// request blocks carry strings.
	anthropicOutBlock struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
	anthropicSource struct {
		Type      string `json:"type"` // base64 or url
		MediaType string `json:"media_type,omitempty"`
		Data      string `json:"data,omitempty"`
		URL       string `json:"url,omitempty"`
	}
	anthropicTool struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		InputSchema json.RawMessage `json:"input_schema"`
	}
	anthropicToolChoice struct {
		Type                   string `json:"type"` // auto, any, tool, none
		Name                   string `json:"name,omitempty"`
		DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
	}
	anthropicMetadata struct {
		UserID string `json:"user_id"`
	}
	anthropicResponse struct {
		ID         string              `json:"id"`
		Type       string              `json:"type"`
		Model      string              `json:"model"`
		Content    []anthropicOutBlock `json:"content"`
		StopReason string              `json:"stop_reason"`
		Usage      anthropicUsage      `json:"usage"`
	}
	anthropicUsage struct {
		InputTokens              int `json:"input_tokens"`
		OutputTokens             int `json:"output_tokens"`
		CacheReadInputTokens     int `json:"cache_read_input_tokens"`
		CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	}
)

// encodeAnthropic translates a chat request to a Messages API body. A
// request it cannot express is a 400 *chat.Error naming the parameter.
func encodeAnthropic(req *chat.Request, stream bool) ([]byte, error) {
	if req.Choices() > 1 {
		return nil, chat.BadRequest("n", "the Messages API answers with one choice; n must be 1")
	}
	out := anthropicRequest{
		Model:         req.Model,
		MaxTokens:     req.OutputLimit(),
		Temperature:   req.Temperature,
		TopP:          req.TopP,
		StopSequences: req.Stop,
		Stream:        stream,
	}
	if out.MaxTokens == 0 {
		out.MaxTokens = anthropicMaxTokens
	}
	// Anthropic's temperature scale ends at 1 where OpenAI's ends at 2; a
	// route that falls back across providers must not fail on it.
	if t := req.Temperature; t != nil && *t > 1 {
		one := 1.0
		out.Temperature = &one
	}
	if req.User != "" {
		out.Metadata = &anthropicMetadata{UserID: req.User}
	}
	var system []string
	for i, m := range req.Messages {
		p := fmt.Sprintf("messages[%d]", i)
		var msg anthropicMessage
		switch m.Role {
		case "system", "developer":
			system = append(system, m.Content.Text)
			continue
		case "user":
			blocks, err := anthropicContent(p, m.Content)
			if err != nil {
				return nil, err
			}
			msg = anthropicMessage{Role: "user", Content: blocks}
		case "assistant":
			blocks, err := anthropicContent(p, m.Content)
			if err != nil {
				return nil, err
			}
			for j, tc := range m.ToolCalls {
				input := json.RawMessage(strings.TrimSpace(tc.Function.Arguments))
				if len(input) == 0 {
					input = json.RawMessage("{}")
				}
				if !json.Valid(input) || input[0] != '{' {
					return nil, chat.BadRequest(fmt.Sprintf("%s.tool_calls[%d].function.arguments", p, j), "tool call arguments must be a JSON object")
				}
				blocks = append(blocks, anthropicBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
			}
			msg = anthropicMessage{Role: "assistant", Content: blocks}
		case "tool":
			msg = anthropicMessage{Role: "user", Content: []anthropicBlock{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Content.Text}}}
		default:
			return nil, chat.BadRequest(p+".role", "%s has unknown role %q", p, m.Role)
		}
		if len(msg.Content) == 0 {
			continue
		}
		// The Messages API alternates roles; consecutive turns of one role,
		// such as several tool results, become one turn with many blocks.
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == msg.Role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, msg.Content...)
		} else {
			out.Messages = append(out.Messages, msg)
		}
	}
	if len(out.Messages) == 0 {
		return nil, chat.BadRequest("messages", "an Anthropic model needs at least one user or assistant message besides the system prompt")
	}
	if f := req.ResponseFormat; f != nil && f.Type != "text" {
		// The Messages API has no JSON mode; the instruction stands in for
		// it and the release's validation checks the result.
		instr := "Reply with one JSON object and nothing else."
		if f.JSONSchema != nil && len(f.JSONSchema.Schema) > 0 {
			var schema bytes.Buffer
			if err := json.Compact(&schema, f.JSONSchema.Schema); err != nil {
				return nil, chat.BadRequest("response_format.json_schema.schema", "the schema is not JSON: %v", err)
			}
			instr = "Reply with one JSON value and nothing else. It must satisfy this JSON Schema: " + schema.String()
		}
		system = append(system, instr)
	}
	out.System = strings.Join(system, "\n\n")
	for i, t := range req.Tools {
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || string(schema) == "null" {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		if !json.Valid(schema) {
			return nil, chat.BadRequest(fmt.Sprintf("tools[%d].function.parameters", i), "tool parameters must be a JSON Schema object")
		}
		out.Tools = append(out.Tools, anthropicTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	choice, err := anthropicChoice(req)
	if err != nil {
		return nil, err
	}
	out.ToolChoice = choice
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encode Anthropic request for model %s: %w", req.Model, err)
	}
	return b, nil
}

// anthropicChoice translates tool_choice and parallel_tool_calls.
func anthropicChoice(req *chat.Request) (*anthropicToolChoice, error) {
	if len(req.Tools) == 0 {
		return nil, nil
	}
	c := &anthropicToolChoice{Type: "auto"}
	raw := bytes.TrimSpace(req.ToolChoice)
	if len(raw) > 0 && string(raw) != "null" {
		var word string
		var named struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(raw, &word) == nil:
			switch word {
			case "auto":
			case "none":
				c.Type = "none"
			case "required":
				c.Type = "any"
			default:
				return nil, chat.BadRequest("tool_choice", "unknown tool_choice %q (want auto, none, required or a function)", word)
			}
		case json.Unmarshal(raw, &named) == nil && named.Function.Name != "":
			c.Type, c.Name = "tool", named.Function.Name
		default:
			return nil, chat.BadRequest("tool_choice", "tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":…}}")
		}
	}
	if p := req.ParallelToolCalls; p != nil && !*p && c.Type != "none" {
		c.DisableParallelToolUse = true
	}
	return c, nil
}

// anthropicContent translates a message's content. Text and images pass;
// other part kinds have no Anthropic equivalent.
func anthropicContent(path string, c chat.Content) ([]anthropicBlock, error) {
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []anthropicBlock{{Type: "text", Text: c.Text}}, nil
	}
	var blocks []anthropicBlock
	for i, part := range c.Parts {
		p := fmt.Sprintf("%s.content[%d]", path, i)
		switch part.Type {
		case chat.PartText:
			if part.Text != "" {
				blocks = append(blocks, anthropicBlock{Type: "text", Text: part.Text})
			}
		case chat.PartImageURL:
			src, err := anthropicImage(part.ImageURL.URL)
			if err != nil {
				return nil, chat.BadRequest(p+".image_url.url", "%v", err)
			}
			blocks = append(blocks, anthropicBlock{Type: "image", Source: src})
		default:
			return nil, chat.BadRequest(p+".type", "content part type %q has no Anthropic equivalent", part.Type)
		}
	}
	return blocks, nil
}

// anthropicImage turns an image URL, possibly a data: URL, into a source.
func anthropicImage(url string) (*anthropicSource, error) {
	rest, ok := strings.CutPrefix(url, "data:")
	if !ok {
		if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
			return nil, fmt.Errorf("image url must be http(s) or a data: URL")
		}
		return &anthropicSource{Type: "url", URL: url}, nil
	}
	meta, data, ok := strings.Cut(rest, ",")
	media, isBase64 := strings.CutSuffix(meta, ";base64")
	if !ok || !isBase64 || !strings.HasPrefix(media, "image/") {
		return nil, fmt.Errorf("a data: image URL must be data:image/<type>;base64,<data>")
	}
	return &anthropicSource{Type: "base64", MediaType: media, Data: data}, nil
}

// anthropicFinish maps stop reasons to OpenAI finish reasons.
func anthropicFinish(reason string) string {
	switch reason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

// usage converts Anthropic's counts, where cached prompt tokens are not part
// of input_tokens, to OpenAI's, where they are.
func (u anthropicUsage) usage() *chat.Usage {
	prompt := u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
	out := &chat.Usage{PromptTokens: prompt, CompletionTokens: u.OutputTokens, TotalTokens: prompt + u.OutputTokens}
	if u.CacheReadInputTokens > 0 {
		out.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: u.CacheReadInputTokens}
	}
	return out.Clamped()
}

func decodeAnthropicResponse(data []byte, now time.Time) (*chat.Response, error) {
	var r anthropicResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: "the answer is not an Anthropic message", Err: err}
	}
	if r.Type != "message" {
		return nil, &Error{Kind: KindProtocol, Message: fmt.Sprintf("the answer has type %q, want message: %s", r.Type, upstreamMessage(data))}
	}
	msg := chat.Message{Role: "assistant"}
	var text strings.Builder
	for _, b := range r.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			args := string(b.Input)
			if args == "" {
				args = "{}"
			}
			msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{ID: b.ID, Type: "function", Function: chat.FunctionCall{Name: b.Name, Arguments: args}})
		}
		// thinking and other blocks are the model's, not the answer's.
	}
	msg.Content = chat.Text(text.String())
	return &chat.Response{
		ID:      r.ID,
		Object:  chat.ObjectCompletion,
		Created: now.Unix(),
		Model:   r.Model,
		Choices: []chat.Choice{{Message: msg, FinishReason: anthropicFinish(r.StopReason)}},
		Usage:   r.Usage.usage(),
	}, nil
}

// anthropicDecoder translates Messages API stream events to chunks.
type anthropicDecoder struct {
	id, model string
	created   int64
	usage     anthropicUsage
	tools     map[int]int // content block index -> tool call index
	started   bool        // message_start was seen, so the client has output
	stopped   bool        // message_stop was seen
}

type anthropicEvent struct {
	Type    string `json:"type"`
	Message struct {
		ID    string         `json:"id"`
		Model string         `json:"model"`
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
	Index        int               `json:"index"`
	ContentBlock anthropicOutBlock `json:"content_block"`
	Delta        struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *anthropicUsage `json:"usage"`
}

func (d *anthropicDecoder) chunk(delta chat.Delta, finish *string) *chat.Chunk {
	return &chat.Chunk{ID: d.id, Object: chat.ObjectChunk, Created: d.created, Model: d.model,
		Choices: []chat.ChunkChoice{{Delta: delta, FinishReason: finish}}}
}

func (d *anthropicDecoder) decode(ev sseEvent) (*chat.Chunk, error) {
	if d.stopped {
		return nil, nil
	}
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 {
		return nil, nil
	}
	var e anthropicEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: fmt.Sprintf("stream event %q is not readable", ev.Event), Err: err}
	}
	switch e.Type {
	case "message_start":
		d.id, d.model, d.usage = e.Message.ID, e.Message.Model, e.Message.Usage
		d.started = true
		return d.chunk(chat.Delta{Role: "assistant"}, nil), nil
	case "content_block_start":
		if e.ContentBlock.Type != "tool_use" {
			return nil, nil
		}
		n := len(d.tools)
		d.tools[e.Index] = n
		return d.chunk(chat.Delta{ToolCalls: []chat.ToolCall{{Index: &n, ID: e.ContentBlock.ID, Type: "function",
			Function: chat.FunctionCall{Name: e.ContentBlock.Name}}}}, nil), nil
	case "content_block_delta":
		switch e.Delta.Type {
		case "text_delta":
			text := e.Delta.Text
			return d.chunk(chat.Delta{Content: &text}, nil), nil
		case "input_json_delta":
			n, ok := d.tools[e.Index]
			if !ok {
				return nil, &Error{Kind: KindProtocol, Message: fmt.Sprintf("tool input for content block %d, which is no tool call", e.Index)}
			}
			return d.chunk(chat.Delta{ToolCalls: []chat.ToolCall{{Index: &n, Function: chat.FunctionCall{Arguments: e.Delta.PartialJSON}}}}, nil), nil
		}
		return nil, nil // thinking and signature deltas are not part of the answer
	case "message_delta":
		if e.Usage != nil {
			d.usage.OutputTokens = e.Usage.OutputTokens
			// Newer API versions repeat the final input counts here.
			if e.Usage.InputTokens > 0 {
				d.usage.InputTokens = e.Usage.InputTokens
			}
			if e.Usage.CacheReadInputTokens > 0 {
				d.usage.CacheReadInputTokens = e.Usage.CacheReadInputTokens
			}
			if e.Usage.CacheCreationInputTokens > 0 {
				d.usage.CacheCreationInputTokens = e.Usage.CacheCreationInputTokens
			}
		}
		if e.Delta.StopReason == "" {
			return nil, nil
		}
		finish := anthropicFinish(e.Delta.StopReason)
		return d.chunk(chat.Delta{}, &finish), nil
	case "message_stop":
		d.stopped = true
		c := d.chunk(chat.Delta{}, nil)
		c.Choices = []chat.ChunkChoice{}
		c.Usage = d.usage.usage()
		return c, nil
	case "error":
		return nil, inStreamError(data, d.started)
	}
	return nil, nil // ping, content_block_stop and event types added later
}

func (d *anthropicDecoder) complete() bool { return d.stopped }

var _ eventDecoder = (*anthropicDecoder)(nil)
var _ eventDecoder = (*openAIDecoder)(nil)
