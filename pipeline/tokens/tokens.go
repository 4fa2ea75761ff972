// Package tokens counts tokens the way OpenAI's models do, with the real
// byte-pair encodings (o200k_base for current models, cl100k_base for older
// ones). Gantry uses the counts to estimate prompt size before a call, to
// reserve budget, and to fill usage when an upstream reports none.
package tokens

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer"

	"gantry/pipeline/chat"
)

// OpenAI's chat format adds a few tokens around every message and primes the
// reply with a few more.
const (
	perMessage = 3
	perName    = 1
	priming    = 3
	// perImage is what OpenAI charges for an image at low detail; the size
	// of a high-detail image is unknown until it is fetched, so this is the
	// floor of the estimate.
	perImage = 85
)

// Encoders are built on first use: each holds a large vocabulary map, and a
// binary that never counts should not pay for it. Once built they are only
// read, so they are safe for concurrent use.
var (
	o200kOnce, cl100kOnce sync.Once
	o200k, cl100k         tokenizer.Codec
)

func encoder(legacy bool) tokenizer.Codec {
	if legacy {
		cl100kOnce.Do(func() { cl100k = mustGet(tokenizer.Cl100kBase) })
		return cl100k
	}
	o200kOnce.Do(func() { o200k = mustGet(tokenizer.O200kBase) })
	return o200k
}

func mustGet(e tokenizer.Encoding) tokenizer.Codec {
	c, err := tokenizer.Get(e)
	if err != nil {
		// The vocabularies are compiled in; failing here is a build defect.
		panic("tokens: encoding " + string(e) + " is missing: " + err.Error())
	}
	return c
}

// Legacy reports whether a model name belongs to the generation that used
// cl100k_base (GPT-4 before 4o, GPT-3.5). Every other name, including those
// of other vendors, is counted with o200k_base as the best estimate.
func Legacy(model string) bool {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	switch {
	case strings.HasPrefix(m, "gpt-4o"), strings.HasPrefix(m, "gpt-4.1"), strings.HasPrefix(m, "gpt-4.5"):
		return false
	case strings.HasPrefix(m, "gpt-4"), strings.HasPrefix(m, "gpt-3.5"), strings.HasPrefix(m, "gpt-35"),
		strings.HasPrefix(m, "text-embedding-ada"), strings.HasPrefix(m, "text-embedding-3"):
		return true
	}
	return false
}

// Count returns the number of o200k_base tokens in text.
func Count(text string) int { return count(encoder(false), text) }

// CountModel counts text with the encoding of the named model.
func CountModel(model, text string) int { return count(encoder(Legacy(model)), text) }

func count(c tokenizer.Codec, text string) int {
	if text == "" {
		return 0
	}
	if len(text) < cacheMinLen {
		return encode(c, text)
	}
	k := cache.key(c == cl100k, text)
	if n, ok := cache.get(k); ok {
		return n
	}
	n := encode(c, text)
	cache.put(k, n)
	return n
}

// encode counts text with c, through the hand-written split and the piece
// cache for o200k_base, short texts included: the library's regexp engine
// costs dozens of allocations a call.
func encode(c tokenizer.Codec, text string) int {
	if c == o200k {
		return fastCount(text)
	}
	return libraryCount(c, text)
}

func libraryCount(c tokenizer.Codec, text string) int {
	n, err := c.Count(text)
	if err != nil {
		// The codec fails only on a regexp engine error, which a plain
		// string cannot cause in practice; fall back to the usual ratio of
		// four bytes per token rather than report nothing.
		return (len(text) + 3) / 4
	}
	return n
}

// CountMessages estimates the prompt tokens of a chat: the text of every
// message, tool-call names and arguments, names and tool-call ids, images at
// their low-detail price, plus OpenAI's per-message overhead and reply
// priming.
func CountMessages(msgs []chat.Message) int { return countMessages(encoder(false), msgs) }

func countMessages(c tokenizer.Codec, msgs []chat.Message) int {
	if len(msgs) == 0 {
		return 0
	}
	n := priming
	for i := range msgs {
		m := &msgs[i]
		n += perMessage
		n += count(c, m.Role)
		n += count(c, m.Content.Text)
		for _, part := range m.Content.Parts {
			switch part.Type {
			case chat.PartImageURL:
				n += perImage
			case chat.PartRefusal:
				n += count(c, part.Refusal)
			case chat.PartInputAudio:
				// No tokenizer for audio or files: a token per four bytes
				// of their encoding keeps a budget's worst case above it.
				n += len(part.InputAudio.Data) / 4
			case chat.PartFile:
				n += (len(part.File.FileData) + len(part.File.Filename)) / 4
			}
		}
		if m.Name != "" {
			n += perName + count(c, m.Name)
		}
		if m.ToolCallID != "" {
			n += count(c, m.ToolCallID)
		}
		for _, tc := range m.ToolCalls {
			n += count(c, tc.Function.Name) + count(c, tc.Function.Arguments)
		}
	}
	return n
}

// CountTools estimates the tokens that tool definitions add to a prompt:
// names, descriptions and parameter schemas as the upstream sees them.
func CountTools(tools []chat.Tool) int {
	c := encoder(false)
	n := 0
	for _, t := range tools {
		n += perMessage + count(c, t.Function.Name) + count(c, t.Function.Description)
		if len(t.Function.Parameters) > 0 {
			n += count(c, compact(t.Function.Parameters))
		}
	}
	return n
}

func compact(raw json.RawMessage) string {
	var b strings.Builder
	b.Grow(len(raw))
	inString, escaped := false, false
	for _, ch := range string(raw) {
		switch {
		case inString:
			b.WriteRune(ch)
			if escaped {
				escaped = false
			} else if ch == '\\' {
				escaped = true
			} else if ch == '"' {
				inString = false
			}
		case ch == '"':
			inString = true
			b.WriteRune(ch)
		case ch == ' ', ch == '\n', ch == '\t', ch == '\r':
		default:
			b.WriteRune(ch)
		}
	}
	return b.String()
}

// Counter counts with the default encoding: CountMessages and Count as
// methods, for whoever takes a counter.
type Counter struct{}

// Messages is CountMessages.
func (Counter) Messages(msgs []chat.Message) int { return CountMessages(msgs) }

// Text is Count.
func (Counter) Text(text string) int { return Count(text) }
