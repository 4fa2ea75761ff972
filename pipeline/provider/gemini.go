package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gantry/pipeline/chat"
)

// DefaultGeminiURL is the base URL of Google's Gemini API.
const DefaultGeminiURL = "https://generativelanguage.googleapis.com"

// Gemini calls Google's native Gemini API (generateContent and
// streamGenerateContent), translating OpenAI-shaped requests and answers
// both ways.
type Gemini struct {
	caller
	base string
}

var _ Provider = (*Gemini)(nil)

// NewGemini returns a provider for the Gemini API at baseURL (empty means
// DefaultGeminiURL). The key travels in the x-goog-api-key header, never in
// the URL, so it cannot end up in a log of URLs.
func NewGemini(baseURL, apiKey string, client *http.Client) *Gemini {
	if baseURL == "" {
		baseURL = DefaultGeminiURL
	}
	h := http.Header{}
	h.Set("X-Goog-Api-Key", apiKey)
	return &Gemini{caller: newCaller(h, client), base: strings.TrimRight(baseURL, "/")}
}

func (g *Gemini) url(model, method string) string {
	model = strings.TrimPrefix(model, "models/")
	return g.base + "/v1beta/models/" + url.PathEscape(model) + ":" + method
}

func (g *Gemini) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	body, err := encodeGemini(req)
	if err != nil {
		return nil, err
	}
	data, err := g.complete(ctx, g.url(req.Model, "generateContent"), body)
	if err != nil {
		return nil, err
	}
	return decodeGeminiResponse(data, req.Model, time.Now())
}

func (g *Gemini) Stream(ctx context.Context, req *chat.Request) (Stream, error) {
	body, err := encodeGemini(req)
	if err != nil {
		return nil, err
	}
	events, err := g.stream(ctx, g.url(req.Model, "streamGenerateContent")+"?alt=sse", "text/event-stream", body)
	if err != nil {
		return nil, err
	}
	return startStream(ctx, events, &geminiDecoder{model: req.Model, created: time.Now().Unix()})
}

// Wire types of the Gemini API, only the fields Gantry uses.
type (
	geminiRequest struct {
		Contents          []geminiContent         `json:"contents"`
		SystemInstruction *geminiContent          `json:"systemInstruction,omitempty"`
		Tools             []geminiTool            `json:"tools,omitempty"`
		ToolConfig        *geminiToolConfig       `json:"toolConfig,omitempty"`
		GenerationConfig  *geminiGenerationConfig `json:"generationConfig,omitempty"`
	}
	geminiContent struct {
		Role  string       `json:"role,omitempty"`
		Parts []geminiPart `json:"parts"`
	}
	geminiPart struct {
		Text             string                  `json:"text,omitempty"`
		Thought          bool                    `json:"thought,omitempty"`
		InlineData       *geminiBlob             `json:"inlineData,omitempty"`
		FunctionCall     *geminiFunctionCall     `json:"functionCall,omitempty"`
		FunctionResponse *geminiFunctionResponse `json:"functionResponse,omitempty"`
	}
	geminiBlob struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	}
	geminiFunctionCall struct {
		ID   string          `json:"id,omitempty"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args,omitempty"`
	}
	geminiFunctionResponse struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	}
	geminiTool struct {
		FunctionDeclarations []geminiFunction `json:"functionDeclarations"`
	}
	geminiFunction struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parametersJsonSchema,omitempty"`
	}
	geminiToolConfig struct {
		FunctionCallingConfig struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
		} `json:"functionCallingConfig"`
	}
	geminiGenerationConfig struct {
		Temperature        *float64        `json:"temperature,omitempty"`
		TopP               *float64        `json:"topP,omitempty"`
		MaxOutputTokens    int             `json:"maxOutputTokens,omitempty"`
		StopSequences      []string        `json:"stopSequences,omitempty"`
		Seed               *int64          `json:"seed,omitempty"`
		PresencePenalty    *float64        `json:"presencePenalty,omitempty"`
		FrequencyPenalty   *float64        `json:"frequencyPenalty,omitempty"`
		ResponseMimeType   string          `json:"responseMimeType,omitempty"`
		ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
	}
	geminiResponse struct {
		Candidates []struct {
			Content      geminiContent `json:"content"`
			FinishReason string        `json:"finishReason"`
		} `json:"candidates"`
		PromptFeedback *struct {
			BlockReason string `json:"blockReason"`
		} `json:"promptFeedback"`
		UsageMetadata *geminiUsage `json:"usageMetadata"`
		ModelVersion  string       `json:"modelVersion"`
		ResponseID    string       `json:"responseId"`
		Error         *struct{}    `json:"error"`
	}
	geminiUsage struct {
		PromptTokenCount        int `json:"promptTokenCount"`
		CandidatesTokenCount    int `json:"candidatesTokenCount"`
		ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
		CachedContentTokenCount int `json:"cachedContentTokenCount"`
	}
)

// encodeGemini translates a chat request to a generateContent body. A
// request it cannot express is a 400 *chat.Error naming the parameter.
func encodeGemini(req *chat.Request) ([]byte, error) {
	var out geminiRequest
	var system []geminiPart
	names := map[string]string{} // tool call id -> function name
	for i, m := range req.Messages {
		p := fmt.Sprintf("messages[%d]", i)
		var c geminiContent
		switch m.Role {
		case "system", "developer":
			system = append(system, geminiPart{Text: m.Content.Text})
			continue
		case "user":
			parts, err := geminiParts(p, m.Content)
			if err != nil {
				return nil, err
			}
			c = geminiContent{Role: "user", Parts: parts}
		case "assistant":
			parts, err := geminiParts(p, m.Content)
			if err != nil {
				return nil, err
			}
			for j, tc := range m.ToolCalls {
				args := json.RawMessage(strings.TrimSpace(tc.Function.Arguments))
				if len(args) == 0 {
					args = json.RawMessage("{}")
				}
				if !json.Valid(args) || args[0] != '{' {
					return nil, chat.BadRequest(fmt.Sprintf("%s.tool_calls[%d].function.arguments", p, j), "tool call arguments must be a JSON object")
				}
				names[tc.ID] = tc.Function.Name
				parts = append(parts, geminiPart{FunctionCall: &geminiFunctionCall{Name: tc.Function.Name, Args: args}})
			}
			c = geminiContent{Role: "model", Parts: parts}
		case "tool":
			name, ok := names[m.ToolCallID]
			if !ok {
				return nil, chat.BadRequest(p+".tool_call_id", "%s answers tool call %q, which no earlier assistant message made; Gemini needs the function's name", p, m.ToolCallID)
			}
			c = geminiContent{Role: "user", Parts: []geminiPart{{FunctionResponse: &geminiFunctionResponse{Name: name, Response: toolResponse(m.Content.Text)}}}}
		default:
			return nil, chat.BadRequest(p+".role", "%s has unknown role %q", p, m.Role)
		}
		if len(c.Parts) == 0 {
			continue
		}
		if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == c.Role {
			out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, c.Parts...)
		} else {
			out.Contents = append(out.Contents, c)
		}
	}
	if len(out.Contents) == 0 {
		return nil, chat.BadRequest("messages", "a Gemini model needs at least one user or assistant message besides the system prompt")
	}
	if len(system) > 0 {
		out.SystemInstruction = &geminiContent{Parts: system}
	}
	gc := geminiGenerationConfig{Temperature: req.Temperature, TopP: req.TopP, MaxOutputTokens: req.OutputLimit(),
		StopSequences: req.Stop, Seed: req.Seed, PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty}
	if f := req.ResponseFormat; f != nil && f.Type != "text" {
		gc.ResponseMimeType = "application/json"
		if f.JSONSchema != nil && len(bytes.TrimSpace(f.JSONSchema.Schema)) > 0 {
			if !json.Valid(f.JSONSchema.Schema) {
				return nil, chat.BadRequest("response_format.json_schema.schema", "the schema is not JSON")
			}
			gc.ResponseJSONSchema = f.JSONSchema.Schema
		}
	}
	if b, _ := json.Marshal(&gc); string(b) != "{}" {
		out.GenerationConfig = &gc
	}
	if len(req.Tools) > 0 {
		var fns []geminiFunction
		for i, t := range req.Tools {
			params := t.Function.Parameters
			if len(bytes.TrimSpace(params)) == 0 || string(params) == "null" {
				params = nil
			} else if !json.Valid(params) {
				return nil, chat.BadRequest(fmt.Sprintf("tools[%d].function.parameters", i), "tool parameters must be a JSON Schema object")
			}
			fns = append(fns, geminiFunction{Name: t.Function.Name, Description: t.Function.Description, Parameters: params})
		}
		out.Tools = []geminiTool{{FunctionDeclarations: fns}}
		tc, err := geminiChoice(req.ToolChoice)
		if err != nil {
			return nil, err
		}
		out.ToolConfig = tc
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encode Gemini request for model %s: %w", req.Model, err)
	}
	return b, nil
}

// toolResponse wraps a tool's result: Gemini wants an object, so a result
// that is not one travels as {"content": …}.
func toolResponse(text string) json.RawMessage {
	t := bytes.TrimSpace([]byte(text))
	if len(t) > 0 && t[0] == '{' && json.Valid(t) {
		return t
	}
	b, _ := json.Marshal(map[string]string{"content": text})
	return b
}

func geminiChoice(raw json.RawMessage) (*geminiToolConfig, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	c := &geminiToolConfig{}
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
			c.FunctionCallingConfig.Mode = "AUTO"
		case "none":
			c.FunctionCallingConfig.Mode = "NONE"
		case "required":
			c.FunctionCallingConfig.Mode = "ANY"
		default:
			return nil, chat.BadRequest("tool_choice", "unknown tool_choice %q (want auto, none, required or a function)", word)
		}
	case json.Unmarshal(raw, &named) == nil && named.Function.Name != "":
		c.FunctionCallingConfig.Mode = "ANY"
		c.FunctionCallingConfig.AllowedFunctionNames = []string{named.Function.Name}
	default:
		return nil, chat.BadRequest("tool_choice", "tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":…}}")
	}
	return c, nil
}

// geminiParts translates a message's content: text, and images as data:
// URLs. Gemini fetches no image URLs for the caller.
func geminiParts(path string, c chat.Content) ([]geminiPart, error) {
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []geminiPart{{Text: c.Text}}, nil
	}
	var parts []geminiPart
	for i, part := range c.Parts {
		p := fmt.Sprintf("%s.content[%d]", path, i)
		switch part.Type {
		case "text":
			if part.Text != "" {
				parts = append(parts, geminiPart{Text: part.Text})
			}
		case "image_url":
			src, err := anthropicImage(part.ImageURL.URL) // a decoded image_url part has one
			if err != nil || src.Type != "base64" {
				return nil, chat.BadRequest(p+".image_url.url", "Gemini takes images inline: send a data:image/<type>;base64,<data> URL")
			}
			parts = append(parts, geminiPart{InlineData: &geminiBlob{MimeType: src.MediaType, Data: src.Data}})
		default:
			return nil, chat.BadRequest(p+".type", "content part type %q has no Gemini equivalent", part.Type)
		}
	}
	return parts, nil
}

// geminiFinish maps finish reasons to OpenAI's.
func geminiFinish(reason string, calls bool) string {
	switch reason {
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return "content_filter"
	}
	if calls {
		return "tool_calls"
	}
	return "stop"
}

func (u *geminiUsage) usage() *chat.Usage {
	if u == nil {
		return nil
	}
	out := &chat.Usage{PromptTokens: u.PromptTokenCount, CompletionTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount}
	out.TotalTokens = out.PromptTokens + out.CompletionTokens
	if u.CachedContentTokenCount > 0 {
		out.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: u.CachedContentTokenCount}
	}
	if u.ThoughtsTokenCount > 0 {
		out.CompletionTokensDetails = &chat.CompletionTokensDetails{ReasoningTokens: u.ThoughtsTokenCount}
	}
	return out
}

// geminiCallID names a function call Gemini left without an id.
func geminiCallID(fc *geminiFunctionCall, n int) string {
	if fc.ID != "" {
		return fc.ID
	}
	return "call_" + strconv.Itoa(n)
}

// compactArgs writes a function call's arguments as OpenAI does: one line
// of JSON, {} when there are none.
func compactArgs(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(raw) == 0 || string(raw) == "null" || json.Compact(&b, raw) != nil {
		return "{}"
	}
	return b.String()
}

func decodeGeminiResponse(data []byte, model string, now time.Time) (*chat.Response, error) {
	var r geminiResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: "the answer is not a Gemini response", Err: err}
	}
	if r.Error != nil {
		return nil, &Error{Kind: KindProtocol, Message: "an error in a 200 answer: " + upstreamMessage(data)}
	}
	if r.ModelVersion != "" {
		model = r.ModelVersion
	}
	resp := &chat.Response{ID: r.ResponseID, Object: chat.ObjectCompletion, Created: now.Unix(), Model: model, Usage: r.UsageMetadata.usage()}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback == nil || r.PromptFeedback.BlockReason == "" {
			return nil, &Error{Kind: KindProtocol, Message: "the answer has no candidates"}
		}
		// The prompt itself was blocked: an empty answer, filtered.
		resp.Choices = []chat.Choice{{Message: chat.Message{Role: "assistant"}, FinishReason: "content_filter"}}
		return resp, nil
	}
	cand := r.Candidates[0]
	msg := chat.Message{Role: "assistant"}
	var text strings.Builder
	for _, p := range cand.Content.Parts {
		switch {
		case p.Thought:
		case p.FunctionCall != nil:
			args := compactArgs(p.FunctionCall.Args)
			msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{ID: geminiCallID(p.FunctionCall, len(msg.ToolCalls)), Type: "function",
				Function: chat.FunctionCall{Name: p.FunctionCall.Name, Arguments: args}})
		default:
			text.WriteString(p.Text)
		}
	}
	msg.Content = chat.Text(text.String())
	resp.Choices = []chat.Choice{{Message: msg, FinishReason: geminiFinish(cand.FinishReason, len(msg.ToolCalls) > 0)}}
	return resp, nil
}

// geminiDecoder translates streamGenerateContent events, each a whole
// GenerateContentResponse holding the next piece of the answer.
type geminiDecoder struct {
	model    string
	id       string
	created  int64
	calls    int
	started  bool
	finished bool
	usage    *chat.Usage
}

func (d *geminiDecoder) chunk(delta chat.Delta, finish *string) *chat.Chunk {
	return &chat.Chunk{ID: d.id, Object: chat.ObjectChunk, Created: d.created, Model: d.model,
		Choices: []chat.ChunkChoice{{Delta: delta, FinishReason: finish}}}
}

func (d *geminiDecoder) decode(ev sseEvent) (*chat.Chunk, error) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 || d.finished {
		return nil, nil
	}
	var r geminiResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: "a stream event is not a Gemini response", Err: err}
	}
	if r.Error != nil {
		return nil, inStreamError(data, d.started)
	}
	if r.ResponseID != "" {
		d.id = r.ResponseID
	}
	if r.ModelVersion != "" {
		d.model = r.ModelVersion
	}
	if u := r.UsageMetadata.usage(); u != nil {
		d.usage = u // each event carries the counts so far
	}
	var delta chat.Delta
	if !d.started {
		delta.Role = "assistant"
	}
	var finish *string
	if len(r.Candidates) == 0 {
		if r.PromptFeedback == nil || r.PromptFeedback.BlockReason == "" {
			return nil, nil
		}
		f := "content_filter"
		finish = &f
	} else {
		cand := r.Candidates[0]
		var text strings.Builder
		for _, p := range cand.Content.Parts {
			switch {
			case p.Thought:
			case p.FunctionCall != nil:
				n := d.calls
				d.calls++
				args := compactArgs(p.FunctionCall.Args)
				delta.ToolCalls = append(delta.ToolCalls, chat.ToolCall{Index: &n, ID: geminiCallID(p.FunctionCall, n), Type: "function",
					Function: chat.FunctionCall{Name: p.FunctionCall.Name, Arguments: args}})
			default:
				text.WriteString(p.Text)
			}
		}
		if text.Len() > 0 {
			s := text.String()
			delta.Content = &s
		}
		if cand.FinishReason != "" {
			f := geminiFinish(cand.FinishReason, d.calls > 0)
			finish = &f
		}
	}
	d.started = true
	if finish != nil {
		d.finished = true
	}
	c := d.chunk(delta, finish)
	if finish != nil {
		c.Usage = d.usage
	}
	return c, nil
}

func (d *geminiDecoder) complete() bool { return d.finished }

var _ eventDecoder = (*geminiDecoder)(nil)
