package pii

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Redactor replaces findings with typed placeholders such as [EMAIL_1].
// One Redactor numbers the values of a whole request, so the same address
// in two messages gets the same placeholder and the model can still tell
// people apart. It keeps the values it has seen in memory for its own
// lifetime only; drop it once the request is redacted.
type Redactor struct {
	seen  map[redacted]int // rule and value -> number
	count map[string]int   // rule -> numbers given
}

// redacted keys a value by its rule. The value is a slice of the text,
// so keying it allocates nothing.
type redacted struct{ rule, value string }

// NewRedactor returns a Redactor with fresh numbering.
func NewRedactor() *Redactor {
	return &Redactor{seen: map[redacted]int{}, count: map[string]int{}}
}

// Redact returns text with each finding replaced. Findings must be in
// order and not overlap, as Scan returns them.
func (r *Redactor) Redact(text string, fs []Finding) string {
	if len(fs) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, f := range fs {
		if f.Start < last || f.End > len(text) || f.Start > f.End {
			continue
		}
		b.WriteString(text[last:f.Start])
		key := redacted{f.Rule, text[f.Start:f.End]}
		n, ok := r.seen[key]
		if !ok {
			r.count[f.Rule]++
			n = r.count[f.Rule]
			r.seen[key] = n
		}
		b.WriteByte('[')
		writeUpper(&b, f.Rule)
		b.WriteByte('_')
		b.WriteString(strconv.Itoa(n))
		b.WriteByte(']')
		last = f.End
	}
	b.WriteString(text[last:])
	return b.String()
}

// Redact replaces the findings of one text, numbering from 1.
func Redact(text string, fs []Finding) string {
	return NewRedactor().Redact(text, fs)
}

// writeUpper writes rule in upper case; rule names are ASCII, which is
// upper-cased without building a string.
func writeUpper(b *strings.Builder, rule string) {
	for k := 0; k < len(rule); k++ {
		if rule[k] >= utf8.RuneSelf {
			b.WriteString(strings.ToUpper(rule))
			return
		}
	}
	for k := 0; k < len(rule); k++ {
		c := rule[k]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
}
