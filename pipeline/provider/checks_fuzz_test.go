package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gantry/pipeline/chat"
	"gantry/pipeline/policy/pii"
)

// checked lists every text the safety checks (PII, deny list, injection)
// read in a request, as "field=text".
func checked(req *chat.Request) []string {
	var out []string
	pii.EachText(req, func(f pii.Field, text string) string {
		if !strings.HasPrefix(f.String(), "metadata.") { // feature variables, never sent
			out = append(out, f.String()+"="+text)
		}
		return text
	})
	slices.Sort(out)
	return out
}

// sentOpenAI reads, from the body an OpenAI-compatible upstream receives,
// every text a model reads, with a reader of its own: plain maps, exact
// keys.
func sentOpenAI(t *testing.T, body []byte) []string {
	t.Helper()
	var w map[string]any
	if err := json.Unmarshal(body, &w); err != nil {
		t.Fatalf("the upstream body is not JSON: %v", err)
	}
	var out []string
	add := func(field string, v any) {
		if s, ok := v.(string); ok && (s != "" || strings.HasSuffix(field, "arguments") || strings.Contains(field, "content")) {
			out = append(out, field+"="+s)
		}
	}
	msgs, _ := w["messages"].([]any)
	for i, m := range msgs {
		m, _ := m.(map[string]any)
		p := fmt.Sprintf("messages[%d]", i)
		switch c := m["content"].(type) {
		case string:
			add(p+".content", c)
		case []any:
			for j, part := range c {
				part, _ := part.(map[string]any)
				for k := range part {
					if !slices.Contains([]string{"type", "text", "refusal", "image_url", "input_audio", "file"}, k) {
						t.Fatalf("%s.content[%d] is sent with field %q, which no check knows", p, j, k)
					}
				}
				for _, k := range []string{"text", "refusal"} {
					if v, ok := part[k]; ok {
						add(fmt.Sprintf("%s.content[%d].%s", p, j, k), v)
					}
				}
			}
		}
		add(p+".name", m["name"])
		calls, _ := m["tool_calls"].([]any)
		for j, tc := range calls {
			fn, _ := tc.(map[string]any)["function"].(map[string]any)
			add(fmt.Sprintf("%s.tool_calls[%d].function.name", p, j), fn["name"])
			add(fmt.Sprintf("%s.tool_calls[%d].function.arguments", p, j), fn["arguments"])
		}
	}
	// Strings inside forwarded JSON, at their JSON pointers.
	var inside func(at string, v any)
	inside = func(at string, v any) {
		switch x := v.(type) {
		case string:
			out = append(out, at+"="+x)
		case []any:
			for i, e := range x {
				inside(fmt.Sprintf("%s/%d", at, i), e)
			}
		case map[string]any:
			for k, e := range x {
				inside(at+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"), e)
			}
		}
	}
	tools, _ := w["tools"].([]any)
	for i, tl := range tools {
		fn, _ := tl.(map[string]any)["function"].(map[string]any)
		add(fmt.Sprintf("tools[%d].function.description", i), fn["description"])
		if p, ok := fn["parameters"]; ok {
			inside(fmt.Sprintf("tools[%d].function.parameters", i), p)
		}
	}
	if rf, ok := w["response_format"].(map[string]any); ok {
		if js, ok := rf["json_schema"].(map[string]any); ok {
			add("response_format.json_schema.description", js["description"])
			if sc, ok := js["schema"]; ok {
				inside("response_format.json_schema.schema", sc)
			}
		}
	}
	add("user", w["user"])
	switch s := w["stop"].(type) {
	case string:
		add("stop[0]", s)
	case []any:
		for i, v := range s {
			add(fmt.Sprintf("stop[%d]", i), v)
		}
	}
	slices.Sort(out)
	return out
}

// FuzzChecksSeeWhatIsSent decodes a caller's request as the gateway does
// and asserts that the texts the safety checks read are exactly the texts
// an OpenAI-compatible upstream is sent, and that everything the Anthropic
// translation sends as text was checked: no spelling of a field lets text
// past the checks.
func FuzzChecksSeeWhatIsSent(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"card 4111 1111 1111 1111"}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","TEXT":"card 4111 1111 1111 1111"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"TYPE":"text","text":"card 4111 1111 1111 1111"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png","URL":"z"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"refusal","refusal":"no"},{"type":"text","text":"b"}]}],"user":"u","stop":["x"]}`,
		`{"model":"m","Messages":[{"Role":"user","Content":"hi","NAME":"kim"}],"USER":"kim@corp.kr"}`,
		`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"1","content":"ok"}],"tools":[{"type":"function","function":{"name":"f","description":"d"}}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},{"type":"file","file":{"file_id":"f1"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"card":{"type":"string","description":"4111 1111 1111 1111","enum":["a","b"]}}}}}]}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","description":"d","schema":{"type":"object","description":"kim@corp.kr","properties":{"a/b~c":{"const":"v"}}}}}}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"description":"a","description":"b"}}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := chat.DecodeRequest(body, 64)
		if err != nil {
			return
		}
		want := checked(req)
		wire, err := encodeOpenAI(req, false)
		if err != nil {
			t.Fatalf("an accepted request does not encode: %v", err)
		}
		if got := sentOpenAI(t, wire); !slices.Equal(got, want) {
			t.Fatalf("the checks read\n%q\nthe upstream is sent\n%q", want, got)
		}
		// The Anthropic translation sends a subset of the same texts.
		if ab, err := encodeAnthropic(req, false); err == nil {
			var a struct {
				System   string `json:"system"`
				Messages []struct {
					Content []struct {
						Text    string `json:"text"`
						Content string `json:"content"`
					} `json:"content"`
				} `json:"messages"`
			}
			if err := json.Unmarshal(ab, &a); err != nil {
				t.Fatalf("the Anthropic body is not JSON: %v", err)
			}
			texts := map[string]bool{}
			for _, w := range want {
				_, v, _ := strings.Cut(w, "=")
				texts[v] = true
			}
			for _, m := range a.Messages {
				for _, b := range m.Content {
					for _, s := range []string{b.Text, b.Content} {
						if s != "" && !texts[s] {
							t.Fatalf("the Anthropic body sends %q, which no check read", s)
						}
					}
				}
			}
		}
	})
}

// FuzzAnthropicEncode translates arbitrary accepted chat requests to the
// Messages API. A request it cannot express is a 400 naming the field;
// anything else is a body the API takes: JSON, turns alternating between
// user and assistant, an output cap, tool inputs that are JSON objects.
func FuzzAnthropicEncode(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"},{"role":"user","content":"again"}],"max_tokens":50,"temperature":1.5,"stop":["x"],"user":"u"}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"1","content":"r1"},{"role":"tool","tool_call_id":"2","content":"r2"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"}}},"tool_choice":"required"}`,
		`{"model":"m","messages":[{"role":"system","content":"only"}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":"a"},{"role":"assistant","content":"b"}],"n":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := chat.DecodeRequest(body, 64)
		if err != nil {
			return
		}
		for _, stream := range []bool{false, true} {
			out, err := encodeAnthropic(req, stream)
			if err != nil {
				var ce *chat.Error
				if !errors.As(err, &ce) || ce.Status != 400 || ce.Param == "" {
					t.Fatalf("a refusal that is not a 400 naming a field: %v", err)
				}
				return
			}
			var a struct {
				MaxTokens int  `json:"max_tokens"`
				Stream    bool `json:"stream"`
				Messages  []struct {
					Role    string `json:"role"`
					Content []struct {
						Type  string          `json:"type"`
						Input json.RawMessage `json:"input"`
					} `json:"content"`
				} `json:"messages"`
			}
			if err := json.Unmarshal(out, &a); err != nil {
				t.Fatalf("the body is not JSON: %v", err)
			}
			if a.MaxTokens < 1 || a.Stream != stream || len(a.Messages) == 0 {
				t.Fatalf("max_tokens %d, stream %v, %d messages", a.MaxTokens, a.Stream, len(a.Messages))
			}
			for i, m := range a.Messages {
				if m.Role != "user" && m.Role != "assistant" || (i > 0 && a.Messages[i-1].Role == m.Role) || len(m.Content) == 0 {
					t.Fatalf("turn %d: role %q after %d turns, %d blocks", i, m.Role, i, len(m.Content))
				}
				for _, b := range m.Content {
					if b.Type == "tool_use" && (len(b.Input) == 0 || b.Input[0] != '{') {
						t.Fatalf("tool input %s is not an object", b.Input)
					}
				}
			}
		}
	})
}
