package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"gantry/pipeline/chat"
)

// DefaultOpenAIURL is the base URL of OpenAI's own API.
const DefaultOpenAIURL = "https://api.openai.com/v1"

// OpenAI calls any OpenAI-compatible chat completions API: OpenAI itself,
// vLLM, Ollama, llama.cpp's server and the proxies that speak it.
type OpenAI struct {
	endpoint
	preset *Preset // nil for OpenAI itself
}

var _ Provider = (*OpenAI)(nil)

// NewOpenAI returns a provider for the chat completions API under baseURL
// (empty means DefaultOpenAIURL; /chat/completions is appended). An empty
// apiKey sends no Authorization header, as local servers expect. A nil
// client means DefaultClient.
func NewOpenAI(baseURL, apiKey string, client *http.Client) *OpenAI {
	h := http.Header{}
	if apiKey != "" {
		h.Set("Authorization", "Bearer "+apiKey)
	}
	return &OpenAI{endpoint: newEndpoint(baseURL, DefaultOpenAIURL, "/chat/completions", h, client)}
}

// encode writes the request for this server.
func (p *OpenAI) encode(req *chat.Request, stream bool) ([]byte, error) {
	if p.preset == nil {
		return encodeOpenAI(req, stream)
	}
	r := *req
	r.Metadata = nil
	r.Stream = stream
	r.StreamOptions = nil
	if stream {
		r.StreamOptions = &chat.StreamOptions{IncludeUsage: true}
	}
	if err := p.preset.adapt(&r); err != nil {
		return nil, err
	}
	body, err := p.preset.encode(&r)
	if err != nil {
		return nil, fmt.Errorf("encode chat request for %s: %w", p.preset.Name, err)
	}
	return body, nil
}

// usageFix is the preset's reader of its own usage fields, or nil.
func (p *OpenAI) usageFix() func([]byte, *chat.Usage) *chat.Usage {
	if p.preset == nil {
		return nil
	}
	return p.preset.Usage
}

// encodeOpenAI writes the request as the upstream sees it. Metadata is
// Gantry's own (journey, feature) and stays home.
func encodeOpenAI(req *chat.Request, stream bool) ([]byte, error) {
	r := *req
	r.Metadata = nil
	r.Stream = stream
	r.StreamOptions = nil
	if stream {
		// Always ask for usage; the gateway decides what its client sees.
		r.StreamOptions = &chat.StreamOptions{IncludeUsage: true}
	}
	body, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("encode chat request: %w", err)
	}
	return body, nil
}

// Complete sends a request and waits for the whole answer.
func (p *OpenAI) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	body, err := p.encode(req, false)
	if err != nil {
		return nil, err
	}
	data, err := p.complete(ctx, body)
	if err != nil {
		return nil, err
	}
	resp, err := decodeOpenAIResponse(data)
	if err == nil {
		if fix := p.usageFix(); fix != nil {
			resp.Usage = fix(data, resp.Usage)
		}
	}
	return resp, err
}

func decodeOpenAIResponse(data []byte) (*chat.Response, error) {
	var out struct {
		chat.Response
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: "the answer is not a chat completion", Err: err}
	}
	if len(out.Error) > 0 && string(out.Error) != "null" {
		// Some servers report a failure with status 200.
		return nil, &Error{Kind: KindProtocol, Message: "an error in a 200 answer: " + upstreamMessage(data)}
	}
	if len(out.Choices) == 0 {
		return nil, &Error{Kind: KindProtocol, Message: "the answer has no choices"}
	}
	if out.Usage != nil {
		out.Usage = out.Usage.Clamped()
	}
	return &out.Response, nil
}

// Stream sends a request and returns its chunks as they arrive.
func (p *OpenAI) Stream(ctx context.Context, req *chat.Request) (Stream, error) {
	body, err := p.encode(req, true)
	if err != nil {
		return nil, err
	}
	events, err := p.stream(ctx, body)
	if err != nil {
		return nil, err
	}
	return startStream(ctx, events, &openAIDecoder{usage: p.usageFix()})
}

// openAIDecoder reads chat completion chunks from "data:" events until
// "[DONE]".
type openAIDecoder struct {
	finished bool // a choice has its finish_reason
	started  bool // a chunk was read
	// usage, when set, reads a server's own usage fields.
	usage func([]byte, *chat.Usage) *chat.Usage
}

var doneMarker = []byte("[DONE]")

func (d *openAIDecoder) decode(ev sseEvent) (*chat.Chunk, error) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 {
		return nil, nil
	}
	if bytes.Equal(data, doneMarker) {
		d.finished = true
		return nil, io.EOF
	}
	var c struct {
		chat.Chunk
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: "a stream event is not a chat completion chunk", Err: err}
	}
	if ev.Event == "error" || (len(c.Error) > 0 && string(c.Error) != "null") {
		return nil, inStreamError(data, d.started)
	}
	for _, ch := range c.Choices {
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			d.finished = true
		}
	}
	if d.usage != nil {
		c.Usage = d.usage(data, c.Usage)
	}
	if c.Usage != nil {
		c.Usage = c.Usage.Clamped()
	}
	d.started = true
	return &c.Chunk, nil
}

// complete reports whether the answer was whole: some servers end the body
// after the finishing chunk without sending [DONE].
func (d *openAIDecoder) complete() bool { return d.finished }
