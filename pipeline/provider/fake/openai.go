package fake

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// openAI writes the chat completions API.
type openAI struct{}

func (openAI) key(r *http.Request) string {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) > len(prefix) && h[:len(prefix)] == prefix {
		return h[len(prefix):]
	}
	return ""
}

func (openAI) error(w http.ResponseWriter, status int, msg string) {
	typ := "server_error"
	switch {
	case status == http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case status == http.StatusUnauthorized:
		typ = "authentication_error"
	case status < 500:
		typ = "invalid_request_error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(mustJSON(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}}))
}

type oaToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type oaUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func (a *answer) usage() oaUsage {
	o := a.f.opts
	u := oaUsage{PromptTokens: o.PromptTokens, CompletionTokens: o.CompletionTokens, TotalTokens: o.PromptTokens + o.CompletionTokens}
	u.PromptTokensDetails.CachedTokens = o.CachedTokens
	return u
}

func (a *answer) toolCall() oaToolCall {
	tc := oaToolCall{ID: a.id("call_"), Type: "function"}
	tc.Function.Name = a.tool
	tc.Function.Arguments = a.f.opts.ToolArguments
	return tc
}

func (openAI) complete(w http.ResponseWriter, a *answer) {
	type message struct {
		Role      string       `json:"role"`
		Content   *string      `json:"content"`
		ToolCalls []oaToolCall `json:"tool_calls,omitempty"`
	}
	msg := message{Role: "assistant"}
	finish := "stop"
	if a.tool != "" {
		msg.ToolCalls = []oaToolCall{a.toolCall()}
		finish = "tool_calls"
	} else {
		msg.Content = &a.f.opts.Content
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		FinishReason string  `json:"finish_reason"`
	}
	body := mustJSON(&struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   oaUsage  `json:"usage"`
	}{a.id("chatcmpl-fake-"), "chat.completion", time.Now().Unix(), a.model, []choice{{Message: msg, FinishReason: finish}}, a.usage()})
	writeBody(w, a, body)
}

// oaChunk is one stream chunk, written without reflection-heavy maps.
type oaChunk struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []oaChunkChoice `json:"choices"`
	Usage   *oaUsage        `json:"usage,omitempty"`
}

type oaChunkChoice struct {
	Index        int     `json:"index"`
	Delta        oaDelta `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type oaDelta struct {
	Role      string       `json:"role,omitempty"`
	Content   *string      `json:"content,omitempty"`
	ToolCalls []oaToolCall `json:"tool_calls,omitempty"`
}

func (openAI) stream(w http.ResponseWriter, a *answer) {
	s := &streamer{w: w, r: a.r, delay: a.fault.ChunkDelay}
	c := oaChunk{ID: a.id("chatcmpl-fake-"), Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: a.model}
	emit := func(d oaDelta, finish *string) {
		c.Choices = append(c.Choices[:0], oaChunkChoice{Delta: d, FinishReason: finish})
		data, _ := json.Marshal(&c)
		s.event("", data)
	}
	if a.fault.Garbage {
		s.event("", []byte(`{"id":"x","choices":[{"delta":{"content":"ok"}}]`))
		s.event("", []byte("<html>not json</html>"))
		s.event("", []byte("[DONE]"))
		s.flush()
		return
	}
	empty := ""
	emit(oaDelta{Role: "assistant", Content: &empty}, nil)
	pieces := a.f.pieces
	finish := "stop"
	if a.tool != "" {
		tc := a.toolCall()
		zero := 0
		tc.Index = &zero
		args := tc.Function.Arguments
		tc.Function.Arguments = ""
		emit(oaDelta{ToolCalls: []oaToolCall{tc}}, nil)
		pieces = splitArgs(args)
		finish = "tool_calls"
	}
	// Text chunks differ only in their content, which New encoded once;
	// the rest of the chunk is encoded here once per request.
	head := append([]byte(`{"id":`), mustJSON(c.ID)...)
	head = append(head, `,"object":"chat.completion.chunk","created":`...)
	head = strconv.AppendInt(head, c.Created, 10)
	head = append(append(head, `,"model":`...), mustJSON(c.Model)...)
	head = append(head, `,"choices":[{"index":0,"delta":{"content":`...)
	var line []byte
	for i, p := range pieces {
		if i > 0 && !s.pause() {
			return
		}
		if a.fault.CutAfter > 0 && i == a.fault.CutAfter {
			s.cut()
		}
		if a.fault.ErrorAfter > 0 && i == a.fault.ErrorAfter {
			s.event("", mustJSON(map[string]any{"error": map[string]any{"message": "the upstream failed mid-stream", "type": "server_error"}}))
			s.flush()
			return
		}
		if a.tool == "" {
			line = append(append(append(line[:0], head...), a.f.quoted[i]...), `},"finish_reason":null}]}`...)
			s.event("", line)
		} else {
			zero := 0
			var tc oaToolCall
			tc.Index = &zero
			tc.Function.Arguments = p
			emit(oaDelta{ToolCalls: []oaToolCall{tc}}, nil)
		}
	}
	if a.fault.CutAfter > 0 && a.fault.CutAfter >= len(pieces) {
		s.cut()
	}
	emit(oaDelta{}, &finish)
	u := a.usage()
	c.Choices = []oaChunkChoice{}
	c.Usage = &u
	data, _ := json.Marshal(&c)
	s.event("", data)
	s.event("", []byte("[DONE]"))
	s.flush()
}

// splitArgs cuts tool arguments into a few pieces, as models stream them.
func splitArgs(args string) []string {
	const size = 8
	var out []string
	for len(args) > size {
		cut := size
		for cut > 1 && !utf8.RuneStart(args[cut]) {
			cut--
		}
		out = append(out, args[:cut])
		args = args[cut:]
	}
	return append(out, args)
}
