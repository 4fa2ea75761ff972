package retrieval

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"unicode/utf8"

	"gantry/config"
)

// Limits of what a collection accepts, so one upload cannot exhaust memory or
// an index. Documents over them are refused with the reason.
const (
	MaxDocumentBytes  = 2 << 20
	MaxLineBytes      = 32 << 10
	MaxDocIDBytes     = config.MaxDocumentIDBytes
	MaxTitleBytes     = 512
	MaxMetadata       = 32
	MaxMetaValueBytes = 256
	MaxChunksPerDoc   = 10000
)

// Document formats.
const (
	FormatText     = "text"
	FormatMarkdown = "markdown"
)

// Document is one text of a collection. Metadata values can be used as
// retrieval filters.
type Document struct {
	ID       string            `json:"id"`
	Title    string            `json:"title,omitempty"`
	Format   string            `json:"format,omitempty"` // text, markdown, or "" to follow the chunking rules
	Text     string            `json:"text"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ErrDocument is wrapped by every error that refuses a document.
var ErrDocument = errors.New("document refused")

var metaKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// Check refuses a document that is not text or is too large, saying why.
func (d Document) Check() error {
	fail := func(format string, args ...any) error {
		id := d.ID
		if len(id) > 64 {
			id = id[:64] + "…"
		}
		return fmt.Errorf("%w: %q: %s", ErrDocument, id, fmt.Sprintf(format, args...))
	}
	if err := config.CheckDocumentID(d.ID); err != nil {
		return fail("%s", err)
	}
	switch d.Format {
	case "", FormatText, FormatMarkdown:
	default:
		return fail("unknown format %q (want text or markdown)", d.Format)
	}
	if len(d.Text) > MaxDocumentBytes {
		return fail("%d bytes, more than the limit of %d", len(d.Text), MaxDocumentBytes)
	}
	if i := bytes.IndexByte([]byte(d.Text), 0); i >= 0 {
		return fail("NUL byte at offset %d: binary content is not a document", i)
	}
	if !utf8.ValidString(d.Text) {
		off := 0
		for off < len(d.Text) {
			r, n := utf8.DecodeRuneInString(d.Text[off:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			off += n
		}
		return fail("invalid UTF-8 at offset %d: binary or mis-encoded content", off)
	}
	line, start := 1, 0
	for i := 0; i <= len(d.Text); i++ {
		if i == len(d.Text) || d.Text[i] == '\n' {
			if i-start > MaxLineBytes {
				return fail("line %d is %d bytes, more than the limit of %d", line, i-start, MaxLineBytes)
			}
			line++
			start = i + 1
		}
	}
	if len(d.Title) > MaxTitleBytes || !utf8.ValidString(d.Title) {
		return fail("title is longer than %d bytes or not UTF-8", MaxTitleBytes)
	}
	if len(d.Metadata) > MaxMetadata {
		return fail("%d metadata entries, more than the limit of %d", len(d.Metadata), MaxMetadata)
	}
	keys := make([]string, 0, len(d.Metadata))
	for k := range d.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := d.Metadata[k]
		if len(k) > 64 || !metaKeyRE.MatchString(k) {
			return fail("metadata key %q may hold only letters, digits, _ and -", k)
		}
		if len(v) > MaxMetaValueBytes || !utf8.ValidString(v) {
			return fail("metadata %q: value longer than %d bytes or not UTF-8", k, MaxMetaValueBytes)
		}
	}
	return nil
}
