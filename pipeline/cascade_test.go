package pipeline

import (
	"math"
	"testing"

	"gantry/pipeline/chat"
)

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		choice chat.Choice
		want   bool
	}{
		{"apology", chat.Choice{Message: chat.Message{Content: chat.Text("I'm sorry, but I can't help with that.")}}, true},
		{"curly apostrophe", chat.Choice{Message: chat.Message{Content: chat.Text("  I can’t help with requests like this one.")}}, true},
		{"content filter", chat.Choice{FinishReason: "content_filter", Message: chat.Message{Content: chat.Text("Here is")}}, true},
		{"refusal part", chat.Choice{Message: chat.Message{Content: chat.Content{Parts: []chat.Part{{Type: chat.PartRefusal, Refusal: "No."}}}}}, true},
		{"an answer quoting a refusal", chat.Choice{Message: chat.Message{Content: chat.Text("The bot said \"I can't help with that\" because the plan expired.")}}, false},
		{"an answer", chat.Choice{Message: chat.Message{Content: chat.Text("Your invoice covers the renewal.")}}, false},
	} {
		if got := Refused(tc.choice); got != tc.want {
			t.Errorf("%s: Refused = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseScore(t *testing.T) {
	for in, want := range map[string]float64{`{"score": 0.75}`: 0.75, " 1 ": 1, "0": 0, `{"score":0}`: 0} {
		if got, err := ParseScore(in); err != nil || got != want {
			t.Errorf("ParseScore(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "high", `{"score": 1.5}`, `{"score": -0.1}`, `{"grade": 1}`, "NaN", `{"score": "0.5"}`, "0.5 because"} {
		if got, err := ParseScore(bad); err == nil {
			t.Errorf("ParseScore(%q) = %v, want an error", bad, got)
		}
	}
}

func FuzzParseScore(f *testing.F) {
	for _, s := range []string{`{"score": 0.75}`, "1", "", `{"score": 1e400}`, "-0", "0x1p-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseScore(s)
		if err == nil && (math.IsNaN(v) || v < 0 || v > 1) {
			t.Fatalf("ParseScore(%q) = %v without an error", s, v)
		}
	})
}
