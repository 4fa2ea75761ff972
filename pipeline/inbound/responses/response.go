package responses

import (
	"encoding/json"
	"fmt"
	"strconv"

	"gantry/pipeline/chat"
)

// Response is a response object.
type Response struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"` // response
	CreatedAt         int64              `json:"created_at"`
	Status            string             `json:"status"` // in_progress, completed, incomplete, failed
	Model             string             `json:"model"`
	Output            []OutputItem       `json:"output"`
	Usage             *Usage             `json:"usage"`
	IncompleteDetails *IncompleteDetails `json:"incomplete_details"`
	Error             *ResponseError     `json:"error"`
	Instructions      *string            `json:"instructions"`
	ParallelToolCalls bool               `json:"parallel_tool_calls"`
	ToolChoice        json.RawMessage    `json:"tool_choice"`
	Tools             []Tool             `json:"tools"`
	Text              TextConfig         `json:"text"`
	Temperature       *float64           `json:"temperature"`
	TopP              *float64           `json:"top_p"`
	MaxOutputTokens   *int               `json:"max_output_tokens"`
	Store             bool               `json:"store"`
	Metadata          map[string]string  `json:"metadata"`
	PreviousID        *string            `json:"previous_response_id"`
}

// OutputItem is a message or a function call of the answer.
type OutputItem struct {
	Type      string       `json:"type"` // message or function_call
	ID        string       `json:"id"`
	Status    string       `json:"status"`
	Role      string       `json:"role,omitempty"`
	Content   []OutputPart `json:"content,omitempty"`
	CallID    string       `json:"call_id,omitempty"`
	Name      string       `json:"name,omitempty"`
	Arguments *string      `json:"arguments,omitempty"`
}

// OutputPart is text the model wrote.
type OutputPart struct {
	Type        string `json:"type"` // output_text
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
}

// Usage counts tokens as the Responses API does.
type Usage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// IncompleteDetails says why an answer stopped early.
type IncompleteDetails struct {
	Reason string `json:"reason"`
}

// ResponseError is the error of a failed response.
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// FromUsage converts chat usage.
func FromUsage(u chat.Usage) *Usage {
	out := &Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
	out.InputTokensDetails.CachedTokens = u.CachedTokens()
	out.OutputTokensDetails.ReasoningTokens = u.ReasoningTokens()
	return out
}

// ResponseID is the id of the response to the gateway call id.
func ResponseID(callID string) string { return "resp_" + callID }

// shell is a response without output, echoing the request's settings as
// the API does.
func shell(callID string, created int64, r *Request, status string) *Response {
	out := &Response{ID: ResponseID(callID), Object: "response", CreatedAt: created, Status: status, Model: r.Model,
		Output: []OutputItem{}, ToolChoice: r.ToolChoice, Tools: r.Tools, Temperature: r.Temperature, TopP: r.TopP,
		MaxOutputTokens: r.MaxOutputTokens, Metadata: r.Metadata, ParallelToolCalls: true}
	if out.Tools == nil {
		out.Tools = []Tool{}
	}
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	if len(out.ToolChoice) == 0 {
		out.ToolChoice = json.RawMessage(`"auto"`)
	}
	if r.Instructions != "" {
		out.Instructions = &r.Instructions
	}
	if r.ParallelToolCalls != nil {
		out.ParallelToolCalls = *r.ParallelToolCalls
	}
	out.Text.Format = &Format{Type: "text"}
	if r.Text != nil && r.Text.Format != nil {
		out.Text.Format = r.Text.Format
	}
	return out
}

// finishStatus maps a finish reason to the response's status and why it
// is incomplete.
func finishStatus(finish string) (string, *IncompleteDetails) {
	switch finish {
	case "length":
		return "incomplete", &IncompleteDetails{Reason: "max_output_tokens"}
	case "content_filter":
		return "incomplete", &IncompleteDetails{Reason: "content_filter"}
	}
	return "completed", nil
}

func messageItem(callID, text, status string) OutputItem {
	return OutputItem{Type: "message", ID: "msg_" + callID, Status: status, Role: "assistant",
		Content: []OutputPart{{Type: "output_text", Text: text, Annotations: []any{}}}}
}

func callItem(callID string, n int, tc chat.ToolCall, status string) OutputItem {
	args := tc.Function.Arguments
	return OutputItem{Type: "function_call", ID: "fc_" + callID + "_" + strconv.Itoa(n), Status: status, CallID: tc.ID, Name: tc.Function.Name, Arguments: &args}
}

// FromChat translates the gateway's answer to a completed (or incomplete)
// response.
func FromChat(callID string, created int64, r *Request, resp *chat.Response, usage chat.Usage) *Response {
	out := shell(callID, created, r, "completed")
	out.Usage = FromUsage(usage)
	if resp == nil || len(resp.Choices) == 0 {
		return out
	}
	c := resp.Choices[0]
	if t := c.Message.Content.Text; t != "" || len(c.Message.ToolCalls) == 0 {
		out.Output = append(out.Output, messageItem(callID, t, "completed"))
	}
	for i, tc := range c.Message.ToolCalls {
		out.Output = append(out.Output, callItem(callID, i, tc, "completed"))
	}
	out.Status, out.IncompleteDetails = finishStatus(c.FinishReason)
	return out
}

// Event is one server-sent event of a streamed response.
type Event struct {
	Name string
	Data []byte
}

// Bytes is the event on the wire.
func (e Event) Bytes() []byte {
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", e.Name, e.Data)
}

// Stream turns the gateway's chunks into Responses API events:
// response.created and response.in_progress, then for the text an output
// message item with its content part and output_text deltas, for each tool
// call a function_call item with its argument deltas, and at the end
// response.completed with the whole response. One Stream serves one
// answer; it is not safe for concurrent use.
type Stream struct {
	callID  string
	created int64
	req     *Request
	seq     int
	started bool
	// The items so far, in output order; open is the index of the item
	// receiving deltas, -1 when none.
	items []OutputItem
	open  int
	text  map[int]*string // message item -> text so far
	calls map[int]int     // tool call index -> item
}

// NewStream starts the translation of one answer.
func NewStream(callID string, created int64, r *Request) *Stream {
	return &Stream{callID: callID, created: created, req: r, open: -1, text: map[int]*string{}, calls: map[int]int{}}
}

func (s *Stream) event(name string, fields map[string]any) Event {
	fields["type"] = name
	fields["sequence_number"] = s.seq
	s.seq++
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return Event{Name: name, Data: b}
}

// Start is response.created and response.in_progress.
func (s *Stream) Start() []Event {
	s.started = true
	resp := shell(s.callID, s.created, s.req, "in_progress")
	return []Event{
		s.event("response.created", map[string]any{"response": resp}),
		s.event("response.in_progress", map[string]any{"response": resp}),
	}
}

// closeOpen ends the item receiving deltas.
func (s *Stream) closeOpen() []Event {
	if s.open < 0 {
		return nil
	}
	i := s.open
	s.open = -1
	it := &s.items[i]
	it.Status = "completed"
	var out []Event
	if it.Type == "message" {
		text := *s.text[i]
		it.Content = []OutputPart{{Type: "output_text", Text: text, Annotations: []any{}}}
		out = append(out,
			s.event("response.output_text.done", map[string]any{"item_id": it.ID, "output_index": i, "content_index": 0, "text": text}),
			s.event("response.content_part.done", map[string]any{"item_id": it.ID, "output_index": i, "content_index": 0, "part": it.Content[0]}))
	} else {
		out = append(out, s.event("response.function_call_arguments.done", map[string]any{"item_id": it.ID, "output_index": i, "arguments": *it.Arguments}))
	}
	return append(out, s.event("response.output_item.done", map[string]any{"output_index": i, "item": *it}))
}

// Chunk translates one chunk.
func (s *Stream) Chunk(c *chat.Chunk) []Event {
	var out []Event
	if !s.started {
		out = append(out, s.Start()...)
	}
	for _, choice := range c.Choices {
		if choice.Index != 0 {
			continue
		}
		d := choice.Delta
		if d.Content != nil && *d.Content != "" {
			if s.open < 0 || s.items[s.open].Type != "message" {
				out = append(out, s.closeOpen()...)
				i := len(s.items)
				item := messageItem(s.callID, "", "in_progress")
				item.Content = []OutputPart{}
				s.items = append(s.items, item)
				s.open, s.text[i] = i, new(string)
				out = append(out,
					s.event("response.output_item.added", map[string]any{"output_index": i, "item": item}),
					s.event("response.content_part.added", map[string]any{"item_id": item.ID, "output_index": i, "content_index": 0,
						"part": OutputPart{Type: "output_text", Text: "", Annotations: []any{}}}))
			}
			*s.text[s.open] += *d.Content
			out = append(out, s.event("response.output_text.delta", map[string]any{"item_id": s.items[s.open].ID, "output_index": s.open,
				"content_index": 0, "delta": *d.Content}))
		}
		for _, tc := range d.ToolCalls {
			n := 0
			if tc.Index != nil {
				n = *tc.Index
			}
			i, seen := s.calls[n]
			if !seen {
				out = append(out, s.closeOpen()...)
				i = len(s.items)
				item := callItem(s.callID, n, chat.ToolCall{ID: tc.ID, Function: chat.FunctionCall{Name: tc.Function.Name}}, "in_progress")
				s.items = append(s.items, item)
				s.calls[n], s.open = i, i
				out = append(out, s.event("response.output_item.added", map[string]any{"output_index": i, "item": item}))
			}
			if tc.Function.Arguments != "" {
				*s.items[i].Arguments += tc.Function.Arguments
				out = append(out, s.event("response.function_call_arguments.delta", map[string]any{"item_id": s.items[i].ID, "output_index": i, "delta": tc.Function.Arguments}))
			}
		}
	}
	return out
}

// Finish ends the answer with response.completed (or response.incomplete
// when the model stopped early) carrying the whole response.
func (s *Stream) Finish(finish string, usage chat.Usage) []Event {
	var out []Event
	if !s.started {
		out = append(out, s.Start()...)
	}
	out = append(out, s.closeOpen()...)
	resp := shell(s.callID, s.created, s.req, "completed")
	resp.Output = append(resp.Output, s.items...)
	resp.Usage = FromUsage(usage)
	resp.Status, resp.IncompleteDetails = finishStatus(finish)
	name := "response.completed"
	if resp.Status == "incomplete" {
		name = "response.incomplete"
	}
	return append(out, s.event(name, map[string]any{"response": resp}))
}

// Fail reports a failure after the stream began: an error event, then
// response.failed.
func (s *Stream) Fail(ce *chat.Error) []Event {
	resp := shell(s.callID, s.created, s.req, "failed")
	resp.Output = append(resp.Output, s.items...)
	code := ce.Code
	if code == "" {
		code = "server_error"
	}
	resp.Error = &ResponseError{Code: code, Message: ce.Message}
	return []Event{
		s.event("error", map[string]any{"code": code, "message": ce.Message, "param": nil}),
		s.event("response.failed", map[string]any{"response": resp}),
	}
}
