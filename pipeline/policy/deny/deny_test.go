package deny

import (
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	m, err := Compile([]string{"Project Falcon", "falcon", "acme", "비밀 프로젝트", "c++", "he"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		want []string // matched text, in order
	}{
		{"tell me about project falcon today", []string{"project falcon", "falcon"}},
		{"PROJECT FALCON", []string{"PROJECT FALCON", "FALCON"}},
		{"falcons are birds", nil},
		{"the falcon, flies", []string{"falcon"}},
		{"acme's plan", []string{"acme"}},
		{"acmeco and subacme", nil},
		{"우리 비밀 프로젝트는", []string{"비밀 프로젝트"}},
		{"I write c++ code", []string{"c++"}},
		{"then she", nil},
		{"he said", []string{"he"}},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var got []string
			for _, mt := range m.FindAll(tt.text, 10) {
				got = append(got, tt.text[mt.Start:mt.End])
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			_, ok := m.Find(tt.text)
			if ok != (len(tt.want) > 0) {
				t.Fatalf("Find ok=%v, want %v", ok, len(tt.want) > 0)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for name, terms := range map[string][]string{
		"blank":    {"ok", "  "},
		"too long": {strings.Repeat("x", MaxTermBytes+1)},
		"too many": make([]string, MaxTerms+1),
		"too large": func() []string {
			s := make([]string, 300)
			for i := range s {
				s[i] = strings.Repeat("y", 250)
			}
			return s
		}(),
	} {
		if _, err := Compile(terms); err == nil {
			t.Fatalf("%s: no error", name)
		}
	}
	var nilMatcher *Matcher
	if _, ok := nilMatcher.Find("x"); ok {
		t.Fatal("nil matcher matched")
	}
}

func TestNestedTermsLinear(t *testing.T) {
	terms := make([]string, 32)
	for i := range terms {
		terms[i] = strings.Repeat("a", i+1)
	}
	m, err := Compile(terms)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("a", 256<<10)
	if got := m.FindAll(text, 10); len(got) != 0 {
		t.Fatalf("matches inside one long word: %v", got)
	}
	if mt, ok := m.Find("x " + strings.Repeat("a", 32) + " y"); !ok || mt.End-mt.Start != 32 {
		t.Fatalf("longest whole-word term not found: %+v %v", mt, ok)
	}
}

func BenchmarkFind4KB(b *testing.B) {
	terms := []string{"project falcon", "acme", "internal only", "confidential", "비밀"}
	for i := 0; i < 200; i++ {
		terms = append(terms, "codename"+strings.Repeat("x", i%7)+string(rune('a'+i%26)))
	}
	m, err := Compile(terms)
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("The parcel arrived late and the box was damaged on one side. ", 70)[:4096]
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		m.Find(text)
	}
}

func TestShortTermsAndEnds(t *testing.T) {
	m, err := Compile([]string{"x", "ab"})
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]int{"x": 1, "a x b": 1, "xx": 0, "ab": 1, "cab ab x": 2, "a": 0, "zab": 0} {
		if got := len(m.FindAll(text, 10)); got != want {
			t.Fatalf("%q: %d matches, want %d", text, got, want)
		}
	}
}
