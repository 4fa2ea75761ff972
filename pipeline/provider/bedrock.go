package provider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"gantry/pipeline/chat"
)

// Bedrock calls AWS Bedrock's Converse and ConverseStream APIs. Requests are
// signed with SigV4 through the AWS SDK's signer, or carry a Bedrock API
// key as a bearer token.
type Bedrock struct {
	caller
	base   string
	region string
}

var _ Provider = (*Bedrock)(nil)

// BedrockAuth says how a Bedrock call authenticates: with a Bedrock API
// key, or with AWS credentials, read at each call so rotated session
// credentials are picked up.
type BedrockAuth struct {
	APIKey      string
	Credentials func() (aws.Credentials, error)
}

// NewBedrock returns a provider for Bedrock's runtime API in region. An
// empty baseURL means the region's public endpoint.
func NewBedrock(baseURL, region string, auth BedrockAuth, client *http.Client) *Bedrock {
	if baseURL == "" {
		baseURL = "https://bedrock-runtime." + region + ".amazonaws.com"
	}
	h := http.Header{}
	if auth.APIKey != "" {
		h.Set("Authorization", "Bearer "+auth.APIKey)
	}
	b := &Bedrock{caller: newCaller(h, client), base: strings.TrimRight(baseURL, "/"), region: region}
	if auth.APIKey == "" && auth.Credentials != nil {
		signer := v4.NewSigner()
		b.sign = func(req *http.Request, body []byte) error {
			creds, err := auth.Credentials()
			if err != nil {
				return &Error{Kind: KindConnect, Message: "no AWS credentials", Err: err}
			}
			sum := sha256.Sum256(body)
			if err := signer.SignHTTP(req.Context(), creds, req, hex.EncodeToString(sum[:]), "bedrock", region, time.Now()); err != nil {
				return fmt.Errorf("sign Bedrock request: %w", err)
			}
			return nil
		}
	}
	return b
}

// url of an operation on a model. The model id is escaped as the AWS SDK
// does (a colon too), and the signer escapes the path once more, as SigV4
// wants for every service but S3.
func (b *Bedrock) url(model, op string) string {
	return b.base + "/model/" + awsEscape(model) + "/" + op
}

// awsEscape percent-encodes everything but RFC 3986's unreserved
// characters.
func awsEscape(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			out.WriteByte(c)
		} else {
			fmt.Fprintf(&out, "%%%02X", c)
		}
	}
	return out.String()
}

func (b *Bedrock) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	body, err := encodeBedrock(req)
	if err != nil {
		return nil, err
	}
	data, err := b.complete(ctx, b.url(req.Model, "converse"), body)
	if err != nil {
		return nil, err
	}
	return decodeBedrockResponse(data, req.Model, time.Now())
}

func (b *Bedrock) Stream(ctx context.Context, req *chat.Request) (Stream, error) {
	body, err := encodeBedrock(req)
	if err != nil {
		return nil, err
	}
	frames, err := b.stream(ctx, b.url(req.Model, "converse-stream"), "application/vnd.amazon.eventstream", body)
	if err != nil {
		return nil, err
	}
	return startEvents(ctx, frames, newFrameReader(frames), &bedrockDecoder{model: req.Model, created: time.Now().Unix(), tools: map[int]int{}})
}

// Wire types of the Converse API, only the fields Gantry uses.
type (
	bedrockRequest struct {
		Messages        []bedrockMessage        `json:"messages"`
		System          []bedrockBlock          `json:"system,omitempty"`
		InferenceConfig *bedrockInferenceConfig `json:"inferenceConfig,omitempty"`
		ToolConfig      *bedrockToolConfig      `json:"toolConfig,omitempty"`
	}
	bedrockMessage struct {
		Role    string         `json:"role"`
		Content []bedrockBlock `json:"content"`
	}
	bedrockBlock struct {
		Text       *string            `json:"text,omitempty"`
		Image      *bedrockImage      `json:"image,omitempty"`
		ToolUse    *bedrockToolUse    `json:"toolUse,omitempty"`
		ToolResult *bedrockToolResult `json:"toolResult,omitempty"`
	}
	bedrockImage struct {
		Format string `json:"format"`
		Source struct {
			Bytes string `json:"bytes"`
		} `json:"source"`
	}
	bedrockToolUse struct {
		ToolUseID string          `json:"toolUseId"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	}
	bedrockToolResult struct {
		ToolUseID string         `json:"toolUseId"`
		Content   []bedrockBlock `json:"content"`
	}
	bedrockInferenceConfig struct {
		MaxTokens     int      `json:"maxTokens,omitempty"`
		Temperature   *float64 `json:"temperature,omitempty"`
		TopP          *float64 `json:"topP,omitempty"`
		StopSequences []string `json:"stopSequences,omitempty"`
	}
	bedrockToolConfig struct {
		Tools      []bedrockTool   `json:"tools"`
		ToolChoice json.RawMessage `json:"toolChoice,omitempty"`
	}
	bedrockTool struct {
		ToolSpec struct {
			Name        string `json:"name"`
			Description string `json:"description,omitempty"`
			InputSchema struct {
				JSON json.RawMessage `json:"json"`
			} `json:"inputSchema"`
		} `json:"toolSpec"`
	}
	bedrockUsage struct {
		InputTokens           int `json:"inputTokens"`
		OutputTokens          int `json:"outputTokens"`
		CacheReadInputTokens  int `json:"cacheReadInputTokens"`
		CacheWriteInputTokens int `json:"cacheWriteInputTokens"`
	}
	bedrockResponse struct {
		Output struct {
			Message *struct {
				Content []struct {
					Text    *string         `json:"text"`
					ToolUse *bedrockToolUse `json:"toolUse"`
				} `json:"content"`
			} `json:"message"`
		} `json:"output"`
		StopReason string        `json:"stopReason"`
		Usage      *bedrockUsage `json:"usage"`
	}
)

func textBlock(s string) bedrockBlock { return bedrockBlock{Text: &s} }

// encodeBedrock translates a chat request to a Converse body.
func encodeBedrock(req *chat.Request) ([]byte, error) {
	var out bedrockRequest
	for i, m := range req.Messages {
		p := fmt.Sprintf("messages[%d]", i)
		var msg bedrockMessage
		switch m.Role {
		case "system", "developer":
			if m.Content.Text != "" {
				out.System = append(out.System, textBlock(m.Content.Text))
			}
			continue
		case "user", "assistant":
			blocks, err := bedrockContent(p, m.Content)
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
				blocks = append(blocks, bedrockBlock{ToolUse: &bedrockToolUse{ToolUseID: tc.ID, Name: tc.Function.Name, Input: input}})
			}
			msg = bedrockMessage{Role: m.Role, Content: blocks}
		case "tool":
			msg = bedrockMessage{Role: "user", Content: []bedrockBlock{{ToolResult: &bedrockToolResult{ToolUseID: m.ToolCallID, Content: []bedrockBlock{textBlock(m.Content.Text)}}}}}
		default:
			return nil, chat.BadRequest(p+".role", "%s has unknown role %q", p, m.Role)
		}
		if len(msg.Content) == 0 {
			continue
		}
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == msg.Role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, msg.Content...)
		} else {
			out.Messages = append(out.Messages, msg)
		}
	}
	if len(out.Messages) == 0 {
		return nil, chat.BadRequest("messages", "a Bedrock model needs at least one user or assistant message besides the system prompt")
	}
	if f := req.ResponseFormat; f != nil && f.Type != "text" {
		// Converse has no JSON mode; the instruction stands in for it and
		// the release's validation checks the result.
		instr := "Reply with one JSON object and nothing else."
		if f.JSONSchema != nil && len(f.JSONSchema.Schema) > 0 {
			var schema bytes.Buffer
			if err := json.Compact(&schema, f.JSONSchema.Schema); err != nil {
				return nil, chat.BadRequest("response_format.json_schema.schema", "the schema is not JSON: %v", err)
			}
			instr = "Reply with one JSON value and nothing else. It must satisfy this JSON Schema: " + schema.String()
		}
		out.System = append(out.System, textBlock(instr))
	}
	ic := bedrockInferenceConfig{MaxTokens: req.OutputLimit(), Temperature: req.Temperature, TopP: req.TopP, StopSequences: req.Stop}
	if t := req.Temperature; t != nil && *t > 1 {
		one := 1.0 // Bedrock's scale ends at 1
		ic.Temperature = &one
	}
	if ic.MaxTokens > 0 || ic.Temperature != nil || ic.TopP != nil || len(ic.StopSequences) > 0 {
		out.InferenceConfig = &ic
	}
	if len(req.Tools) > 0 {
		tc := &bedrockToolConfig{}
		for i, t := range req.Tools {
			schema := t.Function.Parameters
			if len(bytes.TrimSpace(schema)) == 0 || string(schema) == "null" {
				schema = json.RawMessage(`{"type":"object","properties":{}}`)
			}
			if !json.Valid(schema) {
				return nil, chat.BadRequest(fmt.Sprintf("tools[%d].function.parameters", i), "tool parameters must be a JSON Schema object")
			}
			var bt bedrockTool
			bt.ToolSpec.Name, bt.ToolSpec.Description, bt.ToolSpec.InputSchema.JSON = t.Function.Name, t.Function.Description, schema
			tc.Tools = append(tc.Tools, bt)
		}
		choice, none, err := bedrockChoice(req.ToolChoice)
		if err != nil {
			return nil, err
		}
		if none {
			// Converse cannot forbid tools while offering them; without
			// them the model cannot call one, unless the history holds
			// tool calls, which then need the tools declared.
			for _, m := range out.Messages {
				for _, b := range m.Content {
					if b.ToolUse != nil || b.ToolResult != nil {
						return nil, chat.BadRequest("tool_choice", "Bedrock cannot forbid tool calls in a conversation that has them; send tool_choice auto")
					}
				}
			}
		} else {
			tc.ToolChoice = choice
			out.ToolConfig = tc
		}
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encode Bedrock request for model %s: %w", req.Model, err)
	}
	return b, nil
}

// bedrockChoice translates tool_choice; none reports "none", which
// Converse has no word for.
func bedrockChoice(raw json.RawMessage) (choice json.RawMessage, none bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, nil
	}
	var word string
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	switch {
	case json.Unmarshal(raw, &word) == nil:
		switch word {
		case "auto":
			return json.RawMessage(`{"auto":{}}`), false, nil
		case "required":
			return json.RawMessage(`{"any":{}}`), false, nil
		case "none":
			return nil, true, nil
		}
		return nil, false, chat.BadRequest("tool_choice", "unknown tool_choice %q (want auto, none, required or a function)", word)
	case json.Unmarshal(raw, &named) == nil && named.Function.Name != "":
		b, _ := json.Marshal(map[string]any{"tool": map[string]string{"name": named.Function.Name}})
		return b, false, nil
	}
	return nil, false, chat.BadRequest("tool_choice", "tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":…}}")
}

// bedrockContent translates a message's content: text and inline images.
func bedrockContent(path string, c chat.Content) ([]bedrockBlock, error) {
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []bedrockBlock{textBlock(c.Text)}, nil
	}
	var blocks []bedrockBlock
	for i, part := range c.Parts {
		p := fmt.Sprintf("%s.content[%d]", path, i)
		switch part.Type {
		case "text":
			if part.Text != "" {
				blocks = append(blocks, textBlock(part.Text))
			}
		case "image_url":
			src, err := anthropicImage(part.ImageURL.URL) // a decoded image_url part has one
			format := ""
			if err == nil && src.Type == "base64" {
				format = strings.TrimPrefix(src.MediaType, "image/")
			}
			if !(format == "png" || format == "jpeg" || format == "gif" || format == "webp") {
				return nil, chat.BadRequest(p+".image_url.url", "Bedrock takes png, jpeg, gif or webp images inline: send a data:image/<type>;base64,<data> URL")
			}
			img := &bedrockImage{Format: format}
			img.Source.Bytes = src.Data
			blocks = append(blocks, bedrockBlock{Image: img})
		default:
			return nil, chat.BadRequest(p+".type", "content part type %q has no Bedrock equivalent", part.Type)
		}
	}
	return blocks, nil
}

// bedrockFinish maps stop reasons to OpenAI finish reasons.
func bedrockFinish(reason string) string {
	switch reason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	}
	return "stop"
}

// usage converts Bedrock's counts, where cached prompt tokens are not part
// of inputTokens, to OpenAI's, where they are.
func (u *bedrockUsage) usage() *chat.Usage {
	if u == nil {
		return nil
	}
	prompt := u.InputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens
	out := &chat.Usage{PromptTokens: prompt, CompletionTokens: u.OutputTokens, TotalTokens: prompt + u.OutputTokens}
	if u.CacheReadInputTokens > 0 {
		out.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: u.CacheReadInputTokens}
	}
	return out
}

func decodeBedrockResponse(data []byte, model string, now time.Time) (*chat.Response, error) {
	var r bedrockResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: "the answer is not a Converse response", Err: err}
	}
	if r.Output.Message == nil {
		return nil, &Error{Kind: KindProtocol, Message: "the answer has no output message: " + upstreamMessage(data)}
	}
	msg := chat.Message{Role: "assistant"}
	var text strings.Builder
	for _, b := range r.Output.Message.Content {
		switch {
		case b.Text != nil:
			text.WriteString(*b.Text)
		case b.ToolUse != nil:
			args := string(b.ToolUse.Input)
			if args == "" || args == "null" {
				args = "{}"
			}
			msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{ID: b.ToolUse.ToolUseID, Type: "function", Function: chat.FunctionCall{Name: b.ToolUse.Name, Arguments: args}})
		}
		// reasoningContent and other blocks are the model's, not the answer's.
	}
	msg.Content = chat.Text(text.String())
	return &chat.Response{Object: chat.ObjectCompletion, Created: now.Unix(), Model: model,
		Choices: []chat.Choice{{Message: msg, FinishReason: bedrockFinish(r.StopReason)}}, Usage: r.Usage.usage()}, nil
}

// bedrockDecoder translates ConverseStream events to chunks.
type bedrockDecoder struct {
	model   string
	created int64
	tools   map[int]int // content block index -> tool call index
	started bool
	stopped bool // messageStop was seen
	done    bool // metadata was seen
}

type bedrockEvent struct {
	Index int `json:"contentBlockIndex"`
	Start struct {
		ToolUse *struct {
			ToolUseID string `json:"toolUseId"`
			Name      string `json:"name"`
		} `json:"toolUse"`
	} `json:"start"`
	Delta struct {
		Text    *string `json:"text"`
		ToolUse *struct {
			Input string `json:"input"`
		} `json:"toolUse"`
	} `json:"delta"`
	StopReason string        `json:"stopReason"`
	Usage      *bedrockUsage `json:"usage"`
}

func (d *bedrockDecoder) chunk(delta chat.Delta, finish *string) *chat.Chunk {
	return &chat.Chunk{Object: chat.ObjectChunk, Created: d.created, Model: d.model, Choices: []chat.ChunkChoice{{Delta: delta, FinishReason: finish}}}
}

func (d *bedrockDecoder) decode(ev sseEvent) (*chat.Chunk, error) {
	if d.done {
		return nil, nil
	}
	if typ, ok := strings.CutPrefix(ev.Event, "exception:"); ok {
		return nil, bedrockException(typ, ev.Data, d.started)
	}
	if code, ok := strings.CutPrefix(ev.Event, "error:"); ok {
		return nil, bedrockException(code, []byte(fmt.Sprintf(`{"message":%q}`, ev.Data)), d.started)
	}
	var e bedrockEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: fmt.Sprintf("stream event %q is not readable", ev.Event), Err: err}
	}
	switch ev.Event {
	case "messageStart":
		d.started = true
		return d.chunk(chat.Delta{Role: "assistant"}, nil), nil
	case "contentBlockStart":
		if e.Start.ToolUse == nil {
			return nil, nil
		}
		n := len(d.tools)
		d.tools[e.Index] = n
		return d.chunk(chat.Delta{ToolCalls: []chat.ToolCall{{Index: &n, ID: e.Start.ToolUse.ToolUseID, Type: "function",
			Function: chat.FunctionCall{Name: e.Start.ToolUse.Name}}}}, nil), nil
	case "contentBlockDelta":
		switch {
		case e.Delta.Text != nil:
			return d.chunk(chat.Delta{Content: e.Delta.Text}, nil), nil
		case e.Delta.ToolUse != nil:
			n, ok := d.tools[e.Index]
			if !ok {
				return nil, &Error{Kind: KindProtocol, Message: fmt.Sprintf("tool input for content block %d, which is no tool call", e.Index)}
			}
			return d.chunk(chat.Delta{ToolCalls: []chat.ToolCall{{Index: &n, Function: chat.FunctionCall{Arguments: e.Delta.ToolUse.Input}}}}, nil), nil
		}
		return nil, nil // reasoning deltas are not part of the answer
	case "messageStop":
		d.stopped = true
		finish := bedrockFinish(e.StopReason)
		return d.chunk(chat.Delta{}, &finish), nil
	case "metadata":
		d.done = true
		c := d.chunk(chat.Delta{}, nil)
		c.Choices = []chat.ChunkChoice{}
		c.Usage = e.Usage.usage()
		return c, nil
	}
	return nil, nil // contentBlockStop and event types added later
}

// complete: the answer is whole once messageStop arrived; metadata, with
// the usage, normally follows it.
func (d *bedrockDecoder) complete() bool { return d.stopped }

// bedrockException maps an exception of a ConverseStream to the status the
// same failure has as a response, so the router treats it alike.
func bedrockException(typ string, payload []byte, started bool) *Error {
	msg := upstreamMessage(payload)
	code := strings.ToUpper(typ[:min(1, len(typ))]) + typ[min(1, len(typ)):]
	if started {
		return &Error{Kind: KindCut, Code: shortCode(code), Message: "the upstream reported an error mid-stream: " + code + ": " + msg}
	}
	status := http.StatusInternalServerError
	switch code {
	case "ThrottlingException", codeModelNotReady:
		status = http.StatusTooManyRequests
	case "ValidationException":
		status = http.StatusBadRequest
	case codeModelTimeout:
		status = http.StatusRequestTimeout
	case codeServiceUnavail:
		status = http.StatusServiceUnavailable
	case "ModelStreamErrorException", codeModelError:
		status = http.StatusBadGateway
	}
	return &Error{Kind: KindStatus, Status: status, Code: shortCode(code), Message: "in stream: " + msg}
}

var _ eventDecoder = (*bedrockDecoder)(nil)
