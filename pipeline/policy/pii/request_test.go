package pii

import (
	"encoding/json"
	"strings"
	"testing"

	"gantry/pipeline/chat"
)

func decodeRequest(t *testing.T, body string) *chat.Request {
	t.Helper()
	var req chat.Request
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	return &req
}

const requestBody = `{
  "model": "feature/support",
  "user": "kim@corp.kr",
  "metadata": {"ticket": "call 010-1234-5678", "plain": "nothing"},
  "stop": ["4111111111111111"],
  "tools": [{"type": "function", "function": {"name": "lookup", "description": "ask ops@corp.kr"}}],
  "messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "name": "kim", "content": [
      {"type": "text", "text": "I am kim@corp.kr"},
      {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}},
      {"type": "text", "text": "card 4111 1111 1111 1111"}
    ]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"email\":\"kim@corp.kr\"}"}}
    ]},
    {"role": "user", "content": "my ip is 10.1.2.3"}
  ]
}`

func TestScanRequestFields(t *testing.T) {
	req := decodeRequest(t, requestBody)
	ff, err := ScanRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range ff {
		got = append(got, f.Field.String()+"="+f.Rule)
	}
	want := []string{
		"messages[1].content[0].text=email",
		"messages[1].content[2].text=card",
		"messages[2].tool_calls[0].function.arguments=email",
		"messages[3].content=ip",
		"tools[0].function.description=email",
		"metadata.ticket=phone",
		"user=email",
		"stop[0]=card",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRedactRequest(t *testing.T) {
	req := decodeRequest(t, requestBody)
	ff, err := ScanRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := RedactRequest(req, ff); err != nil {
		t.Fatal(err)
	}
	m := req.Messages[1]
	if want := "I am [EMAIL_1]\ncard [CARD_1]"; m.Content.Text != want {
		t.Fatalf("content text %q, want %q", m.Content.Text, want)
	}
	if got := m.Content.Parts[2].Text; got != "card [CARD_1]" {
		t.Fatalf("part 2 text %q, want it redacted", got)
	}
	if b, _ := json.Marshal(m.Content.Parts[1]); string(b) != `{"type":"image_url","image_url":{"url":"https://x.example/a.png"}}` {
		t.Fatalf("image part changed: %s", b)
	}
	if got := req.Messages[2].ToolCalls[0].Function.Arguments; got != `{"email":"[EMAIL_1]"}` {
		t.Fatalf("arguments %q", got)
	}
	if req.User != "[EMAIL_1]" || req.Metadata["ticket"] != "call [PHONE_1]" || req.Stop[0] != "[CARD_2]" {
		t.Fatalf("user %q metadata %q stop %q", req.User, req.Metadata["ticket"], req.Stop[0])
	}
	if req.Tools[0].Function.Description != "ask [EMAIL_2]" || req.Messages[3].Content.Text != "my ip is [IP_1]" {
		t.Fatalf("tools %q, message 3 %q", req.Tools[0].Function.Description, req.Messages[3].Content.Text)
	}
	// After redaction nothing is left to find.
	if left, _ := ScanRequest(req); len(left) != 0 {
		t.Fatalf("findings after redaction: %+v", left)
	}
}

// TestRedactInsideForwardedJSON: text a model reads inside a tool's
// parameters or a response schema is scanned and redacted like a message,
// and a request's tools shared with the configuration are not written to.
func TestRedactInsideForwardedJSON(t *testing.T) {
	req := decodeRequest(t, `{"model":"m","messages":[{"role":"user","content":"hi"}],
	  "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"to":{"type":"string","description":"for example kim@corp.kr"}}}}}],
	  "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","description":"or ops@corp.kr"}}}}`)
	shared := req.Tools
	sharedParams := string(shared[0].Function.Parameters)
	ff, err := ScanRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, f := range ff {
		fields = append(fields, f.Field.String())
	}
	want := []string{"tools[0].function.parameters/properties/to/description", "response_format.json_schema.schema/description"}
	if strings.Join(fields, " ") != strings.Join(want, " ") {
		t.Fatalf("findings in %q, want %q", fields, want)
	}
	if err := RedactRequest(req, ff); err != nil {
		t.Fatal(err)
	}
	if p := string(req.Tools[0].Function.Parameters); strings.Contains(p, "kim@corp.kr") || !strings.Contains(p, "[EMAIL_1]") {
		t.Fatalf("parameters sent: %s", p)
	}
	if s := string(req.ResponseFormat.JSONSchema.Schema); strings.Contains(s, "ops@corp.kr") {
		t.Fatalf("schema sent: %s", s)
	}
	if string(shared[0].Function.Parameters) != sharedParams {
		t.Fatalf("the shared tools were written to: %s", shared[0].Function.Parameters)
	}
}
