package fake_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gantry/pipeline/provider/fake"
)

// FuzzHandler checks that any request body gets a well-formed answer or a
// 400, on both APIs, and never a panic.
func FuzzHandler(f *testing.F) {
	f.Add("/v1/chat/completions", []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add("/v1/chat/completions", []byte(`{"model":"m","stream":true,"tools":[{"type":"function","function":{"name":"t"}}],"messages":[]}`))
	f.Add("/v1/messages", []byte(`{"model":"m","max_tokens":5,"tools":[{"name":"t","input_schema":{}}],"tool_choice":{"type":"tool","name":"t"},"messages":[{"role":"user","content":"hi"}]}`))
	f.Add("/v1/messages", []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x"}]}]}`))
	f.Add("/v1/messages", []byte(`not json`))
	h := fake.Handler(fake.Options{ToolArguments: `{"q":"ünïcode argument text"}`})
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req := httptest.NewRequest(http.MethodPost, "http://fake"+strings.Map(func(r rune) rune {
			if r <= ' ' || r == '?' || r == '#' || r == '%' || r >= 0x7f {
				return -1
			}
			return r
		}, path), strings.NewReader(string(body)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200:
			if w.Header().Get("Content-Type") == "application/json" && !json.Valid(w.Body.Bytes()) {
				t.Fatalf("200 answer is not JSON: %s", w.Body)
			}
			if w.Header().Get("Content-Type") == "text/event-stream" {
				for _, line := range strings.Split(w.Body.String(), "\n") {
					data, ok := strings.CutPrefix(line, "data: ")
					if ok && data != "[DONE]" && !json.Valid([]byte(data)) {
						t.Fatalf("stream event is not JSON: %s", data)
					}
				}
			}
		case 400, 404:
		default:
			t.Fatalf("status %d for body %q", w.Code, body)
		}
	})
}
