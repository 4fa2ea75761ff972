package compress

import (
	"strings"
	"testing"

	"gantry/pipeline/chat"
)

func msg(role, text string) chat.Message { return chat.Message{Role: role, Content: chat.Text(text)} }

// words counts one token a word, enough to steer the strategies.
func words(msgs []chat.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(strings.Fields(Text(m)))
	}
	return n
}

func roles(msgs []chat.Message) string {
	var b []string
	for _, m := range msgs {
		b = append(b, m.Role+":"+strings.Fields(Text(m) + " -")[0])
	}
	return strings.Join(b, " ")
}

func conversation() []chat.Message {
	return []chat.Message{
		msg("system", "You answer billing questions."),
		msg("user", "u1 one two three four"),
		msg("assistant", "a1 one two three four"),
		msg("user", "u2 one two three four"),
		msg("assistant", "a2 one two three four"),
		msg("user", "u3 one two three four"),
	}
}

func TestDropOldestKeepsInstructionsAndLastTurns(t *testing.T) {
	tests := []struct {
		name        string
		keep, limit int
		want        string
		dropped     int
	}{
		{"fits already", 2, 100, "system:You user:u1 assistant:a1 user:u2 assistant:a2 user:u3", 0},
		{"drops until it fits", 2, 19, "system:You user:u2 assistant:a2 user:u3", 2},
		{"stops at keep", 2, 1, "system:You assistant:a2 user:u3", 3},
		{"keeps everything", 5, 1, "system:You user:u1 assistant:a1 user:u2 assistant:a2 user:u3", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := conversation()
			out, dropped := DropOldest(in, tt.keep, tt.limit, words)
			if got := roles(out); got != tt.want || dropped != tt.dropped {
				t.Fatalf("got %s (%d dropped), want %s (%d)", got, dropped, tt.want, tt.dropped)
			}
			if roles(in) != roles(conversation()) {
				t.Fatal("the input was changed")
			}
		})
	}
}

func TestToolAnswersStayWithTheirCall(t *testing.T) {
	call := chat.Message{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "c1", Type: "function", Function: chat.FunctionCall{Name: "lookup", Arguments: `{"id":1}`}}}}
	msgs := []chat.Message{
		msg("system", "s"),
		msg("user", "u1 a b c d e f"),
		call,
		{Role: "tool", ToolCallID: "c1", Content: chat.Text("result one two three")},
		msg("assistant", "a1 x"),
		msg("user", "u2 y"),
	}
	// Keeping 3 turns would start at the tool answer: the call stays too.
	if older := Older(msgs, 3); len(older) != 1 || older[0] != 1 {
		t.Fatalf("older %v, want [1]", older)
	}
	out, dropped := DropOldest(msgs, 1, 3, words)
	if got := roles(out); got != "system:s user:u2" || dropped != 4 {
		t.Fatalf("got %s (%d dropped)", got, dropped)
	}
	for i, m := range out {
		if m.Role == "tool" && (i == 0 || len(out[i-1].ToolCalls) == 0) {
			t.Fatalf("a tool answer without its call: %s", roles(out))
		}
	}
}

func TestSummaryReplacesOlderTurnsInPlace(t *testing.T) {
	in := conversation()
	older := Older(in, 2)
	out := Summarized(in, older, "The user asked u1 and u2.")
	if got := roles(out); got != "system:You system:Summary assistant:a2 user:u3" {
		t.Fatalf("got %s", got)
	}
	if !strings.HasSuffix(out[1].Content.Text, "The user asked u1 and u2.") {
		t.Fatalf("summary message %q", out[1].Content.Text)
	}
	req := Request(in, older, "", 64)
	if req.MaxTokens != 64 || !strings.Contains(req.Messages[1].Content.Text, "user: u1 one two three four\nassistant: a1") {
		t.Fatalf("summary request %+v", req)
	}
	if strings.Contains(req.Messages[1].Content.Text, "u3") {
		t.Fatal("the kept turns went to the summary")
	}
}

func TestKeyIsThePrefixItReplaces(t *testing.T) {
	a := conversation()
	b := append(conversation(), msg("assistant", "a3"), msg("user", "u4"))
	if Key("cheap", a, Older(a, 2)) == Key("cheap", b, Older(b, 2)) {
		t.Fatal("different prefixes share a key")
	}
	// The same prefix with a different latest question: same summary.
	c := conversation()
	c[5] = msg("user", "u3 something else entirely")
	if Key("cheap", a, Older(a, 2)) != Key("cheap", c, Older(c, 2)) {
		t.Fatal("the same prefix has two keys")
	}
	if Key("cheap", a, Older(a, 2)) == Key("other", a, Older(a, 2)) {
		t.Fatal("two summary routes share a key")
	}
	// Length prefixes: moving text between fields changes the key.
	d := []chat.Message{msg("user", "ab"), msg("user", "c"), msg("user", "z")}
	e := []chat.Message{msg("user", "a"), msg("user", "bc"), msg("user", "z")}
	if Key("r", d, Older(d, 1)) == Key("r", e, Older(e, 1)) {
		t.Fatal("ambiguous encoding")
	}
}

func TestKeysExtendThePrefix(t *testing.T) {
	a := conversation()
	b := append(conversation(), msg("assistant", "a3"), msg("user", "u4"))
	ka, kb := Keys("cheap", a, Older(a, 2)), Keys("cheap", b, Older(b, 2))
	if len(ka) != 3 || len(kb) != 5 {
		t.Fatalf("%d and %d keys", len(ka), len(kb))
	}
	// The grown conversation's first turns have the keys the shorter one
	// had: its summary is found and built on.
	for k := range ka {
		if ka[k] != kb[k] {
			t.Fatalf("key %d differs", k)
		}
	}
	if Key("cheap", a, Older(a, 2)) != ka[2] {
		t.Fatal("Key is not the last of Keys")
	}
	req := Request(b, Older(b, 2)[3:], "The user asked u1 and u2.", 64)
	if text := req.Messages[1].Content.Text; !strings.HasPrefix(text, "(summary of what came before) The user asked u1 and u2.\nassistant: a2") || strings.Contains(text, "u1 one") {
		t.Fatalf("incremental request %q", text)
	}
}
