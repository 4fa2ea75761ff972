package chat

import (
	"encoding/json"
	"testing"
)

var quoteCases = []string{
	"", "plain text", `say "hi"`, `back\slash`, "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "<script>&amp;</script>", "héllo wörld 日本語 🙂",
	"bad \xff utf8 \xc3", "line\u2028para\u2029end", "\u00e9\u0301",
}

func TestAppendQuotedMatchesEncodingJSON(t *testing.T) {
	for _, s := range quoteCases {
		want, _ := json.Marshal(s)
		if got := appendQuoted(nil, s); string(got) != string(want) {
			t.Errorf("appendQuoted(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendQuoted(f *testing.F) {
	for _, s := range quoteCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendQuoted(nil, s); string(got) != string(want) {
			t.Fatalf("appendQuoted(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestContentTextRoundTrip(t *testing.T) {
	for _, s := range quoteCases {
		b, err := json.Marshal(Message{Role: "user", Content: Text(s)})
		if err != nil {
			t.Fatalf("marshal %q: %v", s, err)
		}
		var viaString struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(b, &viaString); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if m.Content.Text != viaString.Content {
			t.Errorf("content %s decoded as %q, want %q", b, m.Content.Text, viaString.Content)
		}
	}
	// Invalid UTF-8 inside a literal decodes as encoding/json decodes a string.
	raw := []byte("{\"content\":\"a\xffb\"}")
	var m Message
	var s struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &s)
	if m.Content.Text != s.Content {
		t.Errorf("invalid UTF-8 decoded as %q, want %q", m.Content.Text, s.Content)
	}
}
