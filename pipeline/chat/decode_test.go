package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeRequestRejects(t *testing.T) {
	cases := []struct {
		name, body, param, msg string
	}{
		{"empty body", ``, "", "empty"},
		{"not JSON", `{"model":`, "", "not valid JSON"},
		{"array body", `[1,2]`, "", "JSON object"},
		{"trailing data", `{"model":"m","messages":[{"role":"user","content":"hi"}]} {}`, "", "after the JSON object"},
		{"invalid UTF-8", "{\"model\":\"m\xff\",\"messages\":[]}", "", "UTF-8"},
		{"model wrong type", `{"model":5,"messages":[{"role":"user","content":"hi"}]}`, "model", "must be a string"},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, "model", "required"},
		{"no messages", `{"model":"m"}`, "messages", "at least one"},
		{"empty messages", `{"model":"m","messages":[]}`, "messages", "at least one"},
		{"messages wrong type", `{"model":"m","messages":"hi"}`, "messages", "must be a list"},
		{"empty content", `{"model":"m","messages":[{"role":"user","content":""}]}`, "messages[0].content", "no content"},
		{"content wrong type", `{"model":"m","messages":[{"role":"user","content":5}]}`, "messages[0].content", "content must be"},
		{"unknown role", `{"model":"m","messages":[{"role":"wizard","content":"hi"}]}`, "messages[0].role", "unknown role"},
		{"tool without id", `{"model":"m","messages":[{"role":"tool","content":"42"}]}`, "messages[0].tool_call_id", "tool_call_id"},
		{"temperature too high", `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":3}`, "temperature", "between 0 and 2"},
		{"negative max_tokens", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":-1}`, "max_tokens", "negative"},
		{"max_tokens wrong type", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":"ten"}`, "max_tokens", "must be a number"},
		{"stream options without stream", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`, "stream_options", "only allowed"},
		{"unknown response format", `{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"yaml"}}`, "response_format.type", "unknown"},
		{"json_schema without schema", `{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema"}}`, "response_format.json_schema", "needs"},
		{"tool without name", `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{}}]}`, "tools[0].function.name", "name"},
		{"stop wrong type", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":5}`, "stop", "stop must be"},
		{"stop of numbers", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":[1]}`, "stop", "stop must be"},
		{"second content an object", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"user","content":{"text":"x"}}]}`, "messages[1].content", "content must be"},
		{"content true", `{"model":"m","messages":[{"role":"user","content":true}]}`, "messages[0].content", "content must be"},
		{"max_tokens of 10^15", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1000000000000000}`, "max_tokens", "more than the limit"},
		{"max_tokens of 2^63-1", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":9223372036854775807}`, "max_tokens", "more than the limit"},
		{"max_tokens past int64", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1e30}`, "max_tokens", "must be a number"},
		{"max_completion_tokens too large", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":2000000}`, "max_completion_tokens", "more than the limit"},
		{"n zero", `{"model":"m","messages":[{"role":"user","content":"hi"}],"n":0}`, "n", "from 1 to"},
		{"n too large", `{"model":"m","messages":[{"role":"user","content":"hi"}],"n":1000}`, "n", "from 1 to"},
		{"user too long", `{"model":"m","messages":[{"role":"user","content":"hi"}],"user":"` + strings.Repeat("u", 257) + `"}`, "user", "longer than 256"},
		{"too many metadata keys", `{"model":"m","messages":[{"role":"user","content":"hi"}],"metadata":{` + manyKeys(65) + `}}`, "metadata", "more than the limit of 64"},
		{"metadata key too long", `{"model":"m","messages":[{"role":"user","content":"hi"}],"metadata":{"` + strings.Repeat("k", 65) + `":"v"}}`, "metadata", "longer than 64"},
		{"metadata value too long", `{"model":"m","messages":[{"role":"user","content":"hi"}],"metadata":{"k":"` + strings.Repeat("v", 256<<10+1) + `"}}`, "metadata.k", "longer than"},
		{"too many stops", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}`, "stop", "at most 4"},
		{"empty stop", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":[""]}`, "stop[0]", "empty"},
		{"stop too long", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["` + strings.Repeat("s", 257) + `"]}`, "stop[0]", "256 bytes"},
		{"message name too long", `{"model":"m","messages":[{"role":"user","name":"` + strings.Repeat("n", 257) + `","content":"hi"}]}`, "messages[0].name", "longer than"},
		{"tool call id too long", `{"model":"m","messages":[{"role":"tool","tool_call_id":"` + strings.Repeat("i", 257) + `","content":"hi"}]}`, "messages[0].tool_call_id", "longer than"},
		{"too many parts", `{"model":"m","messages":[{"role":"user","content":[` + strings.TrimSuffix(strings.Repeat(`{"type":"text","text":"x"},`, 257), ",") + `]}]}`, "messages[0].content", "more than the limit"},
		{"tool name too long", `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"` + strings.Repeat("f", 65) + `"}}]}`, "tools[0].function.name", "64 bytes"},
		{"tool too large", `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","description":"` + strings.Repeat("d", 64<<10+1) + `"}}]}`, "tools[0].function", "limited to"},
		{"tool_choice too large", `{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"` + strings.Repeat("c", 4<<10) + `"}`, "tool_choice", "longer than"},
		{"schema too large", `{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"description":"` + strings.Repeat("d", 64<<10) + `"}}}}`, "response_format.json_schema.schema", "more than the limit"},
		{"part text key in capitals", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","TEXT":"card 4111 1111 1111 1111"}]}]}`, "messages[0].content[0].TEXT", "names are exact"},
		{"part type key in capitals", `{"model":"m","messages":[{"role":"user","content":[{"TYPE":"text","text":"card 4111 1111 1111 1111"}]}]}`, "messages[0].content[0].type", "no type"},
		{"part text twice", `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}`, "messages[1].content[0]", "appears twice"},
		{"part of unknown type", `{"model":"m","messages":[{"role":"user","content":[{"type":"video","video":"x"}]}]}`, "messages[0].content[0].type", "not one Gantry passes on"},
		{"part text null", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":null}]}]}`, "messages[0].content[0].text", "needs text"},
		{"part with a foreign field", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","image_url":{"url":"x"}}]}]}`, "messages[0].content[0].image_url", "no field"},
		{"image url key in capitals", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"URL":"https://x/y.png"}}]}]}`, "messages[0].content[0].image_url", "names are exact"},
		{"schema name too long", `{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"` + strings.Repeat("x", 65) + `","schema":{}}}}`, "response_format.json_schema.name", "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.body), 10)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want a *chat.Error", err)
			}
			if e.Status != 400 || e.Type != TypeInvalidRequest {
				t.Fatalf("status %d type %q, want 400 %s", e.Status, e.Type, TypeInvalidRequest)
			}
			if e.Param != tc.param {
				t.Fatalf("param %q, want %q (message %q)", e.Param, tc.param, e.Message)
			}
			if !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("message %q does not say %q", e.Message, tc.msg)
			}
		})
	}
}

func manyKeys(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%q:\"v\"", fmt.Sprint("k", i))
	}
	return strings.Join(keys, ",")
}

// TestDecodeRequestConfiguredLimits: the configuration's output cap and n
// bound a request at decode time.
func TestDecodeRequestConfiguredLimits(t *testing.T) {
	lim := Limits{MaxMessages: 8, MaxOutputTokens: 1000, MaxChoices: 2}
	for _, tc := range []struct{ body, param string }{
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1001}`, "max_tokens"},
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"n":3}`, "n"},
	} {
		_, err := DecodeRequestWith([]byte(tc.body), lim)
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || e.Param != tc.param {
			t.Fatalf("%s: got %v, want a 400 naming %s", tc.body, err, tc.param)
		}
	}
	r, err := DecodeRequestWith([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1000,"n":2}`), lim)
	if err != nil || r.OutputLimit() != 1000 || r.Choices() != 2 {
		t.Fatalf("a request at the limits: %v", err)
	}
}

func TestDecodeRequestAccepts(t *testing.T) {
	body := `{"model":"m","stream":true,"stream_options":{"include_usage":true},"stop":"END",
	"messages":[{"role":"system","content":"be brief"},
	 {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:,"}}]},
	 {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
	 {"role":"tool","tool_call_id":"c1","content":"42"}],
	"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},
	"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto","n":1}`
	r, err := DecodeRequest([]byte(body), 10)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if r.Messages[1].Content.Text != "look" || len(r.Messages[1].Content.Parts) != 2 {
		t.Fatalf("content parts not kept: %+v", r.Messages[1].Content)
	}
	if len(r.Stop) != 1 || r.Stop[0] != "END" {
		t.Fatalf("stop %v, want [END]", r.Stop)
	}
	// Parts go back out as they came in.
	out, _ := json.Marshal(r.Messages[1].Content)
	if !strings.Contains(string(out), "image_url") {
		t.Fatalf("image part lost on re-encoding: %s", out)
	}
}

func TestDecodeRequestMessageLimit(t *testing.T) {
	body := `{"model":"m","messages":[` + strings.Repeat(`{"role":"user","content":"x"},`, 5) + `{"role":"user","content":"x"}]}`
	_, err := DecodeRequest([]byte(body), 5)
	var e *Error
	if !errors.As(err, &e) || e.Param != "messages" {
		t.Fatalf("got %v, want a messages limit error", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"stop":["x"]}`))
	f.Add([]byte(`{"model":"m","stream":true,"messages":[{"role":"tool","tool_call_id":"1","content":null}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","TEXT":"card 4111 1111 1111 1111"}]}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}},{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}},{"type":"file","file":{"file_id":"f"}},{"type":"refusal","refusal":"no"}]}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1000000000000000,"n":1000,"user":"u","metadata":{"k":"v"}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"a":1,"a":2}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object","properties":{"a":{"type":"string"}}},"strict":true}}}`))
	for _, wrong := range []string{`5`, `true`, `{"a":1}`, `[1]`, `"s"`, `null`, `[{"type":"text","text":5}]`} {
		f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":` + wrong + `}],"stop":` + wrong + `}`))
		f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":` + wrong + `,"temperature":` + wrong + `,"tools":` + wrong + `}`))
		f.Add([]byte(`{"model":` + wrong + `,"messages":[{"role":` + wrong + `,"content":"x","name":` + wrong + `}],"metadata":` + wrong + `}`))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeRequest(body, 64)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Message == "" {
				t.Fatalf("error %v is not a 400 with a message", err)
			}
			// A JSON value of the wrong shape is refused naming its
			// field, never with the decoder's bare words.
			if strings.HasPrefix(e.Message, "the request body is not valid: ") {
				t.Fatalf("a refusal names no field: %v", e.Message)
			}
			return
		}
		if r.Model == "" || len(r.Messages) == 0 || len(r.Messages) > 64 {
			t.Fatalf("accepted an invalid request: model %q, %d messages", r.Model, len(r.Messages))
		}
		// What is accepted encodes, decodes again as the same request, and
		// encodes to the same bytes: what the gateway sends on is what it
		// read.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("accepted request does not re-encode: %v", err)
		}
		r2, err := DecodeRequest(b, 64)
		if err != nil {
			t.Fatalf("a re-encoded request is refused: %v\n%s", err, b)
		}
		b2, err := json.Marshal(r2)
		if err != nil || string(b2) != string(b) {
			t.Fatalf("round trip changed the request:\n%s\n%s", b, b2)
		}
	})
}

func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(`{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load generator, please."}],"max_tokens":16}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeRequest(body, 64); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckContentEncoding(t *testing.T) {
	for _, v := range []string{"", "identity", " Identity "} {
		if e := CheckContentEncoding(v); e != nil {
			t.Fatalf("%q refused: %v", v, e)
		}
	}
	for _, v := range []string{"gzip", "br", "deflate, gzip"} {
		if e := CheckContentEncoding(v); e == nil || e.Status != 415 || e.Code != "unsupported_content_encoding" {
			t.Fatalf("%q: %v, want a 415", v, e)
		}
	}
}
