package retrieval

import (
	"strings"
	"testing"

	"gantry/config"
)

// FuzzSplit feeds arbitrary Markdown to the section parser and chunker. It
// must never panic, and every chunk must be non-empty text taken from the
// document with ids numbered in order.
func FuzzSplit(f *testing.F) {
	f.Add("# Title\n\nIntro.\n\n## Part\nBody text here.", 16, 0)
	f.Add("```\n# code\n```\n# Real\ntext", 8, 2)
	f.Add("####### seven\n#no-space\n  ## indented\nx", 4, 1)
	f.Add(strings.Repeat("word ", 100), 10, 3)
	f.Fuzz(func(t *testing.T, text string, size, overlap int) {
		rules := config.Chunking{SizeTokens: 1 + abs(size)%64, Markdown: true}
		rules.Overlap = abs(overlap) % rules.SizeTokens
		chunks, err := Split(Document{ID: "f", Text: text}, rules)
		if err != nil {
			return // refused documents say why; Check has its own tests
		}
		for i, c := range chunks {
			if strings.TrimSpace(c.Text) == "" || c.Seq != i || !strings.Contains(text, c.Text) {
				t.Fatalf("chunk %d bad: %+v", i, c)
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n {
			return 0
		}
		return -n
	}
	return n
}
