package messages

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"gantry/pipeline/chat"
	"gantry/pipeline/tokens"
)

// Response is a Messages API answer.
type Response struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"` // message
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []ContentBlock `json:"content"`
	StopReason   string         `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        Usage          `json:"usage"`
}

// ContentBlock is a block of an answer: text or tool_use.
type ContentBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

// Usage counts tokens as Anthropic does: input_tokens leaves out what was
// read from the cache.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// FromUsage converts OpenAI-shaped usage.
func FromUsage(u chat.Usage) Usage {
	cached := min(u.CachedTokens(), u.PromptTokens)
	return Usage{InputTokens: u.PromptTokens - cached, OutputTokens: u.CompletionTokens, CacheReadInputTokens: cached}
}

// StopReason maps an OpenAI finish reason to Anthropic's stop reason.
func StopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	return "end_turn"
}

// MessageID is the id of the answer to the gateway call id.
func MessageID(callID string) string { return "msg_" + callID }

// FromChat translates the gateway's answer. usage is what the call used.
func FromChat(callID, model string, resp *chat.Response, usage chat.Usage) *Response {
	out := &Response{ID: MessageID(callID), Type: "message", Role: "assistant", Model: model, Content: []ContentBlock{}, StopReason: "end_turn", Usage: FromUsage(usage)}
	if resp == nil || len(resp.Choices) == 0 {
		return out
	}
	c := resp.Choices[0]
	if t := c.Message.Content.Text; t != "" {
		out.Content = append(out.Content, ContentBlock{Type: "text", Text: &t})
	}
	for _, tc := range c.Message.ToolCalls {
		out.Content = append(out.Content, ContentBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: toolInput(tc.Function.Arguments)})
	}
	out.StopReason = StopReason(c.FinishReason)
	return out
}

// toolInput is a call's arguments as a JSON object; arguments a model got
// wrong travel as {} rather than breaking the client's parser.
func toolInput(args string) json.RawMessage {
	a := strings.TrimSpace(args)
	if a == "" || !json.Valid([]byte(a)) || a[0] != '{' {
		return json.RawMessage("{}")
	}
	return json.RawMessage(a)
}

// CountTokens answers /v1/messages/count_tokens: the request's input
// tokens as Gantry counts them (OpenAI's tokenizer, the same count its
// limits and budgets use), which can differ from Anthropic's own count by
// a few percent.
func CountTokens(body []byte) (int, error) {
	var r Request
	if err := chat.DecodeJSON(body, &r); err != nil {
		return 0, err
	}
	req, err := r.Chat(false)
	if err != nil {
		return 0, err
	}
	return tokens.CountMessages(req.Messages) + tokens.CountTools(req.Tools), nil
}

// ErrorBody is a gateway error in Anthropic's shape, with the status to
// send: {"type":"error","error":{"type":…,"message":…}}.
func ErrorBody(ce *chat.Error) (int, []byte) {
	typ := "api_error"
	switch s := ce.Status; {
	case s == http.StatusBadRequest || s == http.StatusUnprocessableEntity:
		typ = "invalid_request_error"
	case s == http.StatusUnauthorized:
		typ = "authentication_error"
	case s == http.StatusForbidden:
		typ = "permission_error"
	case s == http.StatusNotFound:
		typ = "not_found_error"
	case s == http.StatusRequestEntityTooLarge:
		typ = "request_too_large"
	case s == http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case s == http.StatusServiceUnavailable || s == 529:
		typ = "overloaded_error"
	case s == http.StatusGatewayTimeout:
		typ = "timeout_error"
	case s >= 400 && s < 500:
		typ = "invalid_request_error"
	}
	status := ce.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": ce.Message}})
	return status, b
}

// Event is one server-sent event of a streamed answer.
type Event struct {
	Name string
	Data []byte
}

// Bytes is the event on the wire.
func (e Event) Bytes() []byte {
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", e.Name, e.Data)
}

func event(name string, v any) Event {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return Event{Name: name, Data: b}
}

// ErrorEvent reports a failure after the stream began.
func ErrorEvent(ce *chat.Error) Event {
	_, body := ErrorBody(ce)
	return Event{Name: "error", Data: body}
}

// Stream turns the gateway's chunks into Messages API events: a
// message_start, then for each text or tool call a content block
// (content_block_start, its deltas, content_block_stop), and at the end a
// message_delta with the stop reason and usage and a message_stop. One
// Stream serves one answer; it is not safe for concurrent use.
type Stream struct {
	id, model string
	started   bool
	open      string      // "text" or "tool" while a block is open
	index     int         // of the open block, or the next one
	tools     map[int]int // tool call index -> block index
}

// NewStream starts the translation of one answer.
func NewStream(callID, model string) *Stream {
	return &Stream{id: MessageID(callID), model: model, tools: map[int]int{}}
}

// Start is the message_start event and a ping. inputTokens is the estimate
// the gateway has; the final count comes in message_delta.
func (s *Stream) Start(inputTokens int) []Event {
	s.started = true
	return []Event{
		event("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": s.id, "type": "message", "role": "assistant", "model": s.model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": Usage{InputTokens: inputTokens, OutputTokens: 1}}}),
		event("ping", map[string]string{"type": "ping"}),
	}
}

func (s *Stream) close() []Event {
	if s.open == "" {
		return nil
	}
	s.open = ""
	ev := event("content_block_stop", map[string]any{"type": "content_block_stop", "index": s.index})
	s.index++
	return []Event{ev}
}

// Chunk translates one chunk.
func (s *Stream) Chunk(c *chat.Chunk) []Event {
	var out []Event
	if !s.started {
		out = append(out, s.Start(0)...)
	}
	for _, choice := range c.Choices {
		if choice.Index != 0 {
			continue
		}
		d := choice.Delta
		if d.Content != nil && *d.Content != "" {
			if s.open != "text" {
				out = append(out, s.close()...)
				s.open = "text"
				out = append(out, event("content_block_start", map[string]any{"type": "content_block_start", "index": s.index,
					"content_block": map[string]string{"type": "text", "text": ""}}))
			}
			out = append(out, event("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.index,
				"delta": map[string]string{"type": "text_delta", "text": *d.Content}}))
		}
		for _, tc := range d.ToolCalls {
			n := 0
			if tc.Index != nil {
				n = *tc.Index
			}
			block, seen := s.tools[n]
			if !seen {
				out = append(out, s.close()...)
				s.open = "tool"
				block = s.index
				s.tools[n] = block
				out = append(out, event("content_block_start", map[string]any{"type": "content_block_start", "index": block,
					"content_block": map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Function.Name, "input": map[string]any{}}}))
			}
			if tc.Function.Arguments != "" {
				out = append(out, event("content_block_delta", map[string]any{"type": "content_block_delta", "index": block,
					"delta": map[string]string{"type": "input_json_delta", "partial_json": tc.Function.Arguments}}))
			}
		}
	}
	return out
}

// Finish ends the answer: the open block's stop, message_delta with the
// stop reason and the final usage, and message_stop.
func (s *Stream) Finish(finish string, usage chat.Usage) []Event {
	var out []Event
	if !s.started {
		out = append(out, s.Start(0)...)
	}
	out = append(out, s.close()...)
	u := FromUsage(usage)
	out = append(out,
		event("message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": StopReason(finish), "stop_sequence": nil},
			"usage": u}),
		event("message_stop", map[string]string{"type": "message_stop"}))
	return out
}
