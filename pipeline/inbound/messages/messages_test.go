package messages

import (
	"encoding/json"
	"errors"
	"testing"

	"gantry/pipeline/chat"
)

func TestDecodeRefusals(t *testing.T) {
	for _, tc := range []struct{ body, param string }{
		{`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{`{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{`{"model":"m","max_tokens":10,"messages":[]}`, "messages"},
		{`{"model":"m","max_tokens":10,"top_k":5,"messages":[{"role":"user","content":"hi"}]}`, "top_k"},
		{`{"model":"m","max_tokens":10,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"hi"}]}`, "tools[0].type"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"AA=="}}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages[0].content[0].source"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","max_tokens":10,"tool_choice":{"type":"tool"},"messages":[{"role":"user","content":"hi"}]}`, "tool_choice.name"},
	} {
		_, _, err := Decode([]byte(tc.body))
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Param != tc.param {
			t.Fatalf("%s: got %v, want a 400 naming %s", tc.body, err, tc.param)
		}
	}
}

func TestErrorBody(t *testing.T) {
	for _, tc := range []struct {
		status int
		typ    string
	}{{400, "invalid_request_error"}, {401, "authentication_error"}, {403, "permission_error"}, {404, "not_found_error"},
		{413, "request_too_large"}, {429, "rate_limit_error"}, {500, "api_error"}, {502, "api_error"}, {503, "overloaded_error"}, {504, "timeout_error"}} {
		status, body := ErrorBody(&chat.Error{Status: tc.status, Message: "why"})
		var v struct {
			Type  string `json:"type"`
			Error struct {
				Type, Message string
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &v); err != nil || status != tc.status || v.Type != "error" || v.Error.Type != tc.typ || v.Error.Message != "why" {
			t.Fatalf("%d: got %d %s", tc.status, status, body)
		}
	}
}

func TestCountTokensWithoutMaxTokens(t *testing.T) {
	n, err := CountTokens([]byte(`{"model":"m","system":"Answer briefly.","messages":[{"role":"user","content":"Where is my order?"}]}`))
	if err != nil || n < 5 {
		t.Fatalf("got %d, %v", n, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":10,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":10,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"ok"}],"is_error":true}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, req, err := Decode(body)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Status != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if req.MaxTokens < 1 || req.Model == "" || r.MaxTokens == nil {
			t.Fatalf("accepted %+v", req)
		}
		st := NewStream("c", r.Model)
		text := "x"
		for _, e := range append(st.Chunk(&chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &text}}}}), st.Finish("stop", chat.Usage{})...) {
			if !json.Valid(e.Data) {
				t.Fatalf("event %s is not JSON", e.Data)
			}
		}
	})
}
