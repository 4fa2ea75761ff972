package fake

import (
	"encoding/json"
	"net/http"
)

// anthropic writes the Messages API.
type anthropic struct{}

func (anthropic) key(r *http.Request) string { return r.Header.Get("X-Api-Key") }

func (anthropic) error(w http.ResponseWriter, status int, msg string) {
	typ := "api_error"
	switch status {
	case http.StatusBadRequest:
		typ = "invalid_request_error"
	case http.StatusUnauthorized:
		typ = "authentication_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	case http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case 529:
		typ = "overloaded_error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(mustJSON(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}))
}

type anUsage struct {
	InputTokens          int `json:"input_tokens"`
	OutputTokens         int `json:"output_tokens"`
	CacheReadInputTokens int `json:"cache_read_input_tokens"`
}

// usage splits the configured prompt tokens the way Anthropic reports them:
// input_tokens excludes what was read from the cache.
func (a *answer) anUsage() anUsage {
	o := a.f.opts
	return anUsage{InputTokens: max(o.PromptTokens-o.CachedTokens, 0), OutputTokens: o.CompletionTokens, CacheReadInputTokens: o.CachedTokens}
}

type anBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

func (a *answer) anBlock() (anBlock, string) {
	if a.tool != "" {
		return anBlock{Type: "tool_use", ID: a.id("toolu_fake_"), Name: a.tool, Input: json.RawMessage(a.f.opts.ToolArguments)}, "tool_use"
	}
	return anBlock{Type: "text", Text: &a.f.opts.Content}, "end_turn"
}

func (anthropic) complete(w http.ResponseWriter, a *answer) {
	block, stop := a.anBlock()
	body := mustJSON(map[string]any{
		"id":            a.id("msg_fake_"),
		"type":          "message",
		"role":          "assistant",
		"model":         a.model,
		"content":       []anBlock{block},
		"stop_reason":   stop,
		"stop_sequence": nil,
		"usage":         a.anUsage(),
	})
	writeBody(w, a, body)
}

func (anthropic) stream(w http.ResponseWriter, a *answer) {
	s := &streamer{w: w, r: a.r, delay: a.fault.ChunkDelay}
	emit := func(name string, v any) { s.event(name, mustJSON(v)) }
	if a.fault.Garbage {
		s.event("message_start", []byte(`{"type":"message_start","message":{`))
		s.event("content_block_delta", []byte("<html>not json</html>"))
		s.flush()
		return
	}
	u := a.anUsage()
	emit("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": a.id("msg_fake_"), "type": "message", "role": "assistant", "model": a.model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": u.InputTokens, "cache_read_input_tokens": u.CacheReadInputTokens, "output_tokens": 1},
	}})
	block, stop := a.anBlock()
	pieces := a.f.pieces
	deltaType, deltaField := "text_delta", "text"
	if a.tool != "" {
		block.Input = json.RawMessage("{}")
		pieces = splitArgs(a.f.opts.ToolArguments)
		deltaType, deltaField = "input_json_delta", "partial_json"
	} else {
		empty := ""
		block.Text = &empty
	}
	emit("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": block})
	emit("ping", map[string]any{"type": "ping"})
	for i, p := range pieces {
		if i > 0 && !s.pause() {
			return
		}
		if a.fault.CutAfter > 0 && i == a.fault.CutAfter {
			s.cut()
		}
		if a.fault.ErrorAfter > 0 && i == a.fault.ErrorAfter {
			emit("error", map[string]any{"type": "error", "error": map[string]any{"type": "overloaded_error", "message": "Overloaded"}})
			s.flush()
			return
		}
		emit("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": deltaType, deltaField: p}})
	}
	if a.fault.CutAfter > 0 && a.fault.CutAfter >= len(pieces) {
		s.cut()
	}
	emit("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	emit("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": u.OutputTokens}})
	emit("message_stop", map[string]any{"type": "message_stop"})
	s.flush()
}
