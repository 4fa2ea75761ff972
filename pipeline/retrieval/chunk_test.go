package retrieval

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/config"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// casePart is one "-- name --" part of a case file; the unnamed first one
// describes the case.
type casePart struct {
	name string
	data string
}

func parseCase(data string) []casePart {
	out := []casePart{{}}
	for _, line := range strings.SplitAfter(data, "\n") {
		trim := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			out = append(out, casePart{name: trim[3 : len(trim)-3]})
			continue
		}
		out[len(out)-1].data += line
	}
	return out
}

func formatCase(secs []casePart) string {
	var b strings.Builder
	for _, s := range secs {
		if s.name != "" {
			fmt.Fprintf(&b, "-- %s --\n", s.name)
		}
		b.WriteString(s.data)
	}
	return b.String()
}

func formatChunks(chunks []Chunk) string {
	var b strings.Builder
	for _, c := range chunks {
		fmt.Fprintf(&b, "== %s tokens=%d", c.ID, c.Tokens)
		if len(c.Headings) > 0 {
			fmt.Fprintf(&b, " headings=%q", strings.Join(c.Headings, " > "))
		}
		fmt.Fprintf(&b, "\n%s\n", c.Text)
	}
	return b.String()
}

// TestSplitGolden cuts each testdata/chunk/*.txtar document (casePart
// "doc.md" or "doc.txt") by its rules (casePart "rules.json") and compares
// the chunks with casePart "want".
func TestSplitGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/chunk/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d golden cases, want at least 6", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			secs := parseCase(string(raw))
			var rules config.Chunking
			doc := Document{ID: strings.TrimSuffix(filepath.Base(file), ".txtar")}
			var want *string
			for i, s := range secs {
				switch s.name {
				case "rules.json":
					if err := json.Unmarshal([]byte(s.data), &rules); err != nil {
						t.Fatalf("rules.json: %v", err)
					}
				case "doc.md":
					doc.Text, doc.Format = s.data, FormatMarkdown
				case "doc.txt":
					doc.Text, doc.Format = s.data, FormatText
				case "want":
					want = &secs[i].data
				}
			}
			chunks, err := Split(doc, rules)
			var got string
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				got = formatChunks(chunks)
				for _, c := range chunks {
					if !strings.Contains(doc.Text, c.Text) {
						t.Fatalf("chunk %s is not a piece of the document:\n%s", c.ID, c.Text)
					}
				}
			}
			if *update {
				var kept []casePart
				for _, s := range secs {
					if s.name != "want" {
						kept = append(kept, s)
					}
				}
				kept = append(kept, casePart{name: "want", data: got})
				if err := os.WriteFile(file, []byte(formatCase(kept)), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want == nil {
				t.Fatal("case has no want casePart; run with -update")
			}
			if got != *want {
				t.Fatalf("chunks\n%s\nwant\n%s", got, *want)
			}
		})
	}
}

func TestSplitBounds(t *testing.T) {
	long := strings.Repeat("The Dial keeps heating on its last schedule while offline. ", 200)
	for _, rules := range []config.Chunking{
		{SizeTokens: 32},
		{SizeTokens: 32, Overlap: 8},
		{SizeTokens: 100, Overlap: 20, Separators: []string{". "}},
		{SizeTokens: 16, Separators: []string{"|"}}, // separator absent: hard split
	} {
		t.Run(fmt.Sprintf("%+v", rules), func(t *testing.T) {
			chunks, err := Split(Document{ID: "long", Text: long}, rules)
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) < 2 {
				t.Fatalf("%d chunks, want several", len(chunks))
			}
			for i, c := range chunks {
				// BPE can merge across the joins of pieces, never split
				// more; allow a token of slack per join all the same.
				if c.Tokens > rules.SizeTokens+2 {
					t.Fatalf("chunk %d has %d tokens, more than size %d", i, c.Tokens, rules.SizeTokens)
				}
				if c.ID != fmt.Sprintf("long#%d", i) || c.Seq != i {
					t.Fatalf("chunk %d has id %s seq %d", i, c.ID, c.Seq)
				}
			}
			again, _ := Split(Document{ID: "long", Text: long}, rules)
			if formatChunks(again) != formatChunks(chunks) {
				t.Fatal("splitting is not deterministic")
			}
		})
	}
}

func TestOverlapRepeatsTail(t *testing.T) {
	var words []string
	for i := 0; i < 200; i++ {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	text := strings.Join(words, " ")
	chunks, err := Split(Document{ID: "d", Text: text}, config.Chunking{SizeTokens: 40, Overlap: 10, Separators: []string{" "}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(chunks); i++ {
		prev := strings.Fields(chunks[i-1].Text)
		first := strings.Fields(chunks[i].Text)[0]
		found := false
		for _, w := range prev[len(prev)/2:] {
			if w == first {
				found = true
			}
		}
		if !found {
			t.Fatalf("chunk %d starts with %q, which is not in the tail of chunk %d: no overlap", i, first, i-1)
		}
	}
	plain, _ := Split(Document{ID: "d", Text: text}, config.Chunking{SizeTokens: 40, Separators: []string{" "}})
	if len(plain) >= len(chunks) {
		t.Fatalf("overlap gave %d chunks, none gave %d; want more with overlap", len(chunks), len(plain))
	}
}

func TestDocumentCheck(t *testing.T) {
	tests := []struct {
		name string
		doc  Document
		want string
	}{
		{"ok", Document{ID: "help/reset-password.md", Text: "hello"}, ""},
		{"no id", Document{Text: "x"}, "no id"},
		{"bad id", Document{ID: "a#b", Text: "x"}, "id may hold only"},
		{"nul", Document{ID: "bin", Text: "PK\x03\x04\x00\x00"}, "NUL byte at offset 4"},
		{"invalid utf8", Document{ID: "latin1", Text: "caf\xe9 au lait"}, "invalid UTF-8 at offset 3"},
		{"huge", Document{ID: "big", Text: strings.Repeat("a\n", MaxDocumentBytes/2+1)}, "more than the limit of 2097152"},
		{"long line", Document{ID: "min", Text: "ok\n" + strings.Repeat("x", MaxLineBytes+1)}, "line 2 is 32769 bytes"},
		{"format", Document{ID: "f", Format: "pdf", Text: "x"}, `unknown format "pdf"`},
		{"meta key", Document{ID: "m", Text: "x", Metadata: map[string]string{"a=b": "c"}}, `metadata key "a=b"`},
		{"meta value", Document{ID: "m", Text: "x", Metadata: map[string]string{"k": strings.Repeat("v", 300)}}, `metadata "k": value longer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.doc.Check()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("error %v does not wrap ErrDocument", err)
			}
		})
	}
}
