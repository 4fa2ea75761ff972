package retrieval

import (
	"fmt"
	"regexp"
	"strings"

	"gantry/config"
	"gantry/pipeline/tokens"
)

// Chunk is a piece of a document as it is indexed and retrieved.
type Chunk struct {
	// ID is the document id, "#" and the chunk's position in the document.
	// The same document cut by the same rules always gets the same ids.
	ID       string   `json:"id"`
	Document string   `json:"document"`
	Seq      int      `json:"seq"`
	Title    string   `json:"title,omitempty"`
	Headings []string `json:"headings,omitempty"` // Markdown heading path, outermost first
	Text     string   `json:"text"`
	Tokens   int      `json:"tokens"`
}

// DefaultSeparators split text that is too long: paragraphs, then lines,
// then sentences, then words.
var DefaultSeparators = []string{"\n\n", "\n", ". ", " "}

// Split cuts a document into chunks by the rules. With Markdown rules, for a
// document not marked as plain text, no chunk straddles a heading and each
// carries its heading path; headings inside fenced code blocks are text.
func Split(doc Document, rules config.Chunking) ([]Chunk, error) {
	if err := doc.Check(); err != nil {
		return nil, err
	}
	if ps := config.CheckChunking("chunking", rules); len(ps) > 0 {
		return nil, fmt.Errorf("chunking rules: %s", ps[0].Error())
	}
	rules = rules.WithDefaults()
	seps := rules.Separators
	if len(seps) == 0 {
		seps = DefaultSeparators
	}
	s := splitter{size: rules.SizeTokens, overlap: rules.Overlap}
	var sections []section
	if rules.Markdown && doc.Format != FormatText {
		sections = markdownSections(doc.Text)
	} else {
		sections = []section{{body: doc.Text}}
	}
	var out []Chunk
	for _, sec := range sections {
		for _, text := range s.split(sec.body, seps) {
			text = strings.TrimSpace(text)
			if text == "" {
				continue
			}
			if len(out) >= MaxChunksPerDoc {
				return nil, fmt.Errorf("%w: %q: more than %d chunks; raise size_tokens or split the document", ErrDocument, doc.ID, MaxChunksPerDoc)
			}
			out = append(out, Chunk{
				ID:       fmt.Sprintf("%s#%d", doc.ID, len(out)),
				Document: doc.ID,
				Seq:      len(out),
				Title:    doc.Title,
				Headings: sec.headings,
				Text:     text,
				Tokens:   tokens.Count(text),
			})
		}
	}
	return out, nil
}

type section struct {
	headings []string
	body     string
}

var (
	atxRE   = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	fenceRE = regexp.MustCompile("^ {0,3}(```+|~~~+)")
)

// markdownSections splits Markdown at ATX headings, outside fenced code.
func markdownSections(text string) []section {
	var out []section
	var path []string
	levels := []int{}
	var body strings.Builder
	flush := func() {
		if strings.TrimSpace(body.String()) != "" {
			out = append(out, section{headings: append([]string(nil), path...), body: body.String()})
		}
		body.Reset()
	}
	fence := ""
	for _, line := range strings.SplitAfter(text, "\n") {
		trimmed := strings.TrimRight(line, "\r\n")
		if m := fenceRE.FindStringSubmatch(trimmed); m != nil {
			switch {
			case fence == "":
				fence = m[1]
			case strings.HasPrefix(m[1], fence[:1]) && len(m[1]) >= len(fence):
				fence = ""
			}
		} else if fence == "" {
			if m := atxRE.FindStringSubmatch(trimmed); m != nil {
				flush()
				level := len(m[1])
				for len(levels) > 0 && levels[len(levels)-1] >= level {
					levels = levels[:len(levels)-1]
					path = path[:len(path)-1]
				}
				levels = append(levels, level)
				path = append(path, strings.TrimSpace(m[2]))
				continue
			}
		}
		body.WriteString(line)
	}
	flush()
	return out
}

// splitter cuts text into pieces of at most size tokens, repeating up to
// overlap tokens of one piece at the start of the next.
type splitter struct {
	size, overlap int
}

type piece struct {
	text   string
	tokens int
}

func (s splitter) split(text string, seps []string) []string {
	if tokens.Count(text) <= s.size {
		return []string{text}
	}
	var parts []piece
	sep, rest := "", seps
	for len(rest) > 0 {
		sep, rest = rest[0], rest[1:]
		if strings.Contains(text, sep) {
			break
		}
		sep = ""
	}
	if sep == "" {
		for _, p := range s.hardSplit(text) {
			parts = append(parts, piece{p, tokens.Count(p)})
		}
	} else {
		for _, p := range strings.SplitAfter(text, sep) {
			if p == "" {
				continue
			}
			n := tokens.Count(p)
			if n <= s.size {
				parts = append(parts, piece{p, n})
				continue
			}
			for _, sub := range s.split(p, rest) {
				parts = append(parts, piece{sub, tokens.Count(sub)})
			}
		}
	}
	return s.merge(parts)
}

// merge packs consecutive pieces into chunks of at most size tokens.
func (s splitter) merge(parts []piece) []string {
	var out []string
	var cur []piece
	total := 0
	emit := func() {
		var b strings.Builder
		for _, p := range cur {
			b.WriteString(p.text)
		}
		out = append(out, b.String())
	}
	for _, p := range parts {
		if total+p.tokens > s.size && len(cur) > 0 {
			emit()
			// Keep a tail of at most overlap tokens that leaves room for p.
			for len(cur) > 0 && (total > s.overlap || total+p.tokens > s.size) {
				total -= cur[0].tokens
				cur = cur[1:]
			}
		}
		cur = append(cur, p)
		total += p.tokens
	}
	if len(cur) > 0 {
		emit()
	}
	return out
}

// hardSplit cuts text without separators (a very long word or a URL) into
// the longest prefixes that fit, at character boundaries.
func (s splitter) hardSplit(text string) []string {
	var out []string
	for text != "" {
		runes := []rune(text)
		lo, hi := 1, len(runes)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if tokens.Count(string(runes[:mid])) <= s.size {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		out = append(out, string(runes[:lo]))
		text = string(runes[lo:])
	}
	return out
}
