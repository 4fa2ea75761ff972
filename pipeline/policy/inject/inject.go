// Package inject scores text for prompt-injection attempts with linear-time
// heuristics: instruction overrides in several phrasings, role switches,
// requests to reveal the system prompt, role markers such as "system:" at
// the start of a line inside user content, and hidden payloads (zero-width
// characters, bidi controls, Unicode tag characters, HTML comments, base64
// blobs that decode to instructions).
//
// A heuristic score is evidence, not proof: each feature picks the
// threshold at which it blocks or flags.
package inject

import (
	"encoding/base64"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Reason names.
const (
	Override           = "override"
	NewInstructions    = "new_instructions"
	RoleSwitch         = "role_switch"
	PromptLeak         = "prompt_leak"
	RoleMarker         = "role_marker"
	ZeroWidth          = "zero_width"
	Bidi               = "bidi_control"
	TagChars           = "tag_characters"
	HTMLComment        = "html_comment"
	Base64Text         = "base64_text"
	Base64Instructions = "base64_instructions"
)

// weights of the reasons; the score combines them as independent evidence.
var weights = map[string]float64{
	Override:           0.75,
	NewInstructions:    0.35,
	RoleSwitch:         0.45,
	PromptLeak:         0.5,
	RoleMarker:         0.55,
	ZeroWidth:          0.3,
	Bidi:               0.35,
	TagChars:           0.6,
	HTMLComment:        0.2,
	Base64Text:         0.15,
	Base64Instructions: 0.8,
}

// Reason is one piece of evidence with its byte offsets in the text.
type Reason struct {
	Rule   string
	Start  int
	End    int
	Weight float64
}

// Result is a score in [0,1] and the reasons behind it, one per rule.
type Result struct {
	Score   float64
	Reasons []Reason
}

// Has reports whether rule is among the reasons.
func (r Result) Has(rule string) bool {
	for _, x := range r.Reasons {
		if x.Rule == rule {
			return true
		}
	}
	return false
}

const (
	minBase64     = 40      // shorter runs are ids and hashes, not payloads
	maxBase64Scan = 8 << 10 // bytes of one blob that are decoded
	maxBlobs      = 8       // blobs decoded per text
)

// Score scores text.
func Score(text string) Result {
	var r Result
	s := scorer{r: &r, closeAt: -2}
	s.scan(text, 0, true)
	r.Score = combine(r.Reasons)
	return r
}

func combine(rs []Reason) float64 {
	p := 1.0
	for _, x := range rs {
		p *= 1 - x.Weight
	}
	return 1 - p
}

type scorer struct {
	r     *Result
	seen  uint32 // bit per rule already reported
	blobs int
	// closeAt caches the next "-->" at or after closeFrom (-1: none), so
	// many unclosed comments do not rescan the rest of the text.
	closeAt, closeFrom int
	// work counts bytes examined, so tests can prove the scan is linear.
	work int
}

var ruleBit = map[string]uint32{}

func init() {
	i := 0
	for _, r := range []string{Override, NewInstructions, RoleSwitch, PromptLeak, RoleMarker, ZeroWidth, Bidi, TagChars, HTMLComment, Base64Text, Base64Instructions} {
		ruleBit[r] = 1 << i
		i++
	}
}

func (s *scorer) add(rule string, start, end int) {
	b := ruleBit[rule]
	if s.seen&b != 0 {
		return
	}
	s.seen |= b
	s.r.Reasons = append(s.r.Reasons, Reason{Rule: rule, Start: start, End: end, Weight: weights[rule]})
}

// word is a recent vocabulary word: its entry, its number among the
// words of the text, and its offsets.
type word struct {
	v          *vocab
	num        int
	start, end int
}

const window = 8 // a power of two: the ring index is a mask

// scan walks text once. base offsets reasons found in decoded payloads;
// outer is false inside a payload, where blobs are not decoded again.
func (s *scorer) scan(text string, base int, outer bool) {
	// recent is a ring of the last vocabulary words; the others only
	// count, so most words cost no store.
	var recent [window]word
	n := 0          // words seen
	vocabWords := 0 // vocabulary words seen
	lineStart := true
	nonASCII := false
scan:
	for i := 0; i < len(text); {
		c := text[i]
		if c == '\n' {
			lineStart = true
			i++
			continue
		}
		if c == ' ' || c == '\t' || c == '\r' {
			i++
			continue
		}
		if lineStart {
			s.roleMarker(text, i, base)
			lineStart = false
		}
		switch {
		case isLetter(c):
			for {
				j := i + 1
				if j+8 <= len(text) {
					// Most words end within eight bytes: nonLetters, by hand
					// inlined, finds their end without a call.
					const lo, hi = 0x0101010101010101, 0x8080808080808080
					b := text[j : j+8]
					y := (uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
						uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56) | 0x20*lo
					t := y &^ hi
					if nl := (^(t + (0x80-'a')*lo) | (t + (0x80-'z'-1)*lo) | y) & hi; nl != 0 {
						j += bits.TrailingZeros64(nl) >> 3
					} else {
						j = letterRun(text, j+8)
					}
				} else {
					j = letterRun(text, j)
				}
				// Only a word that runs on into digits or base64 symbols, or a
				// very long one, can start a payload.
				if outer && (j-i >= minBase64 || j < len(text) && isB64(text[j])) && (i == 0 || !isB64(text[i-1])) {
					if e := s.blob(text, i, base); e > i {
						i = e
						continue scan
					}
				}
				if j-i >= 2 && j-i <= maxWord && candidate(text[i:j]) {
					if v := find(text[i:j]); v != nil {
						w := word{v: v, num: n, start: base + i, end: base + j}
						s.onWord(w, &recent, vocabWords)
						recent[vocabWords&(window-1)] = w
						vocabWords++
					}
				}
				n++
				i = j
				// Prose goes on with a space and the next word: read it
				// without another turn of the outer loop.
				if i+1 < len(text) && text[i] == ' ' && isLetter(text[i+1]) {
					i++
					continue
				}
				break
			}
		case c == '<' && strings.HasPrefix(text[i:], "<!--"):
			if s.seen&ruleBit[HTMLComment] == 0 {
				end := s.commentClose(text, i+4)
				if end < 0 {
					end = len(text)
				}
				if nonBlank(text[i+4 : min(end, i+4+64)]) {
					s.add(HTMLComment, base+i, base+end)
				}
			}
			i += 4 // the comment's text is scanned like the rest
		case c >= utf8.RuneSelf:
			nonASCII = true
			r, w := utf8.DecodeRuneInString(text[i:])
			switch {
			case r == 0x200B || r == 0x200C || r == 0x200D || r == 0x2060 || r == 0xFEFF:
				s.add(ZeroWidth, base+i, base+i+w)
			case r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069:
				s.add(Bidi, base+i, base+i+w)
			case r >= 0xE0000 && r <= 0xE007F:
				s.add(TagChars, base+i, base+i+w)
			}
			i += w
		case isDigit(c):
			if outer && (i == 0 || !isB64(text[i-1])) {
				if e := s.blob(text, i, base); e > i {
					i = e
					continue
				}
			}
			for i < len(text) && isDigit(text[i]) {
				i++
			}
		default:
			i++
		}
	}
	if nonASCII {
		s.phrases(text, base)
	}
	s.work += len(text)
}

func (s *scorer) commentClose(text string, from int) int {
	if s.closeAt == -1 && from >= s.closeFrom || s.closeAt >= from {
		return s.closeAt
	}
	s.closeFrom = from
	if k := strings.Index(text[from:], "-->"); k >= 0 {
		s.closeAt = from + k
		s.work += k
	} else {
		s.closeAt = -1
		s.work += len(text) - from
	}
	return s.closeAt
}

func nonBlank(s string) bool {
	for k := 0; k < len(s); k++ {
		if s[k] != ' ' && s[k] != '\t' && s[k] != '\n' && s[k] != '\r' {
			return true
		}
	}
	return false
}

var letters, b64chars [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		letters[c] = b|0x20 >= 'a' && b|0x20 <= 'z'
		b64chars[c] = letters[c] || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '-' || b == '_'
	}
}

func isLetter(c byte) bool { return letters[c] }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isB64(c byte) bool    { return b64chars[c] }

// nonLetters sets the high bit of each byte of b (eight bytes, read little
// endian) that is not an ASCII letter: a byte is a letter when, folded to
// lower case, it lies in 'a'..'z'. Words are the bulk of a text, and this
// tests eight of their bytes without a branch.
func nonLetters(b string) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	y := (uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56) | 0x20*lo
	t := y &^ hi
	// High bits: t >= 'a'; t > 'z'; y is not ASCII.
	ge := t + (0x80-'a')*lo
	gt := t + (0x80-'z'-1)*lo
	return (^ge | gt | y) & hi
}

// letterRun returns the end of the run of ASCII letters at j, testing
// eight bytes at a time.
func letterRun(text string, j int) int {
	for j+8 <= len(text) {
		if nl := nonLetters(text[j : j+8]); nl != 0 {
			return j + bits.TrailingZeros64(nl)>>3
		}
		j += 8
	}
	for j < len(text) && isLetter(text[j]) {
		j++
	}
	return j
}

// blob checks for a base64 run starting at i. It returns the end of a run
// long enough to be a payload, which the caller skips, or -1. A shorter run
// is left to the word scanner; it is at most minBase64 bytes, so rescanning
// it from each of its words keeps the whole scan linear.
func (s *scorer) blob(text string, i int, base int) int {
	end := i
	for end < len(text) && isB64(text[end]) && end-i < minBase64 {
		end++
	}
	s.work += end - i
	if end-i < minBase64 {
		return -1
	}
	for end < len(text) && isB64(text[end]) {
		end++
	}
	pad := end
	for pad < len(text) && pad-end < 2 && text[pad] == '=' {
		pad++
	}
	s.work += pad - i
	if s.blobs >= maxBlobs {
		return pad
	}
	s.blobs++
	blob := text[i:min(end, i+maxBase64Scan)]
	blob = blob[:len(blob)/4*4]
	dec := base64.RawStdEncoding
	if strings.ContainsAny(blob, "-_") {
		dec = base64.RawURLEncoding
	}
	out, err := dec.DecodeString(blob)
	if err != nil || !mostlyText(out) {
		return pad
	}
	s.add(Base64Text, base+i, base+end)
	inner := scorer{r: &Result{}, blobs: maxBlobs, closeAt: -2}
	inner.scan(string(out), 0, false)
	s.work += inner.work
	if combine(inner.r.Reasons) >= 0.3 {
		s.add(Base64Instructions, base+i, base+end)
	}
	return pad
}

// mostlyText reports whether b is valid UTF-8 with at least 90% printable
// characters and some spaces, as instructions are.
func mostlyText(b []byte) bool {
	if !utf8.Valid(b) || len(b) == 0 {
		return false
	}
	printable, spaces := 0, 0
	for _, c := range b {
		switch {
		case c == ' ':
			spaces++
			printable++
		case c >= 0x20 && c != 0x7F || c == '\n' || c == '\t' || c >= 0x80:
			printable++
		}
	}
	return printable*10 >= len(b)*9 && spaces > 0
}

// roleMarker checks for a chat role marker at a line start: "system:",
// "### System", "[system]", "<|im_start|>system", "<system>", "[INST]".
func (s *scorer) roleMarker(text string, i, base int) {
	j := i
	for j < len(text) && j-i < 8 && strings.IndexByte("#*[<|> \t", text[j]) >= 0 {
		j++
	}
	rest := text[j:min(len(text), j+24)]
	s.work += j - i + len(rest)
	for _, p := range []string{"im_start|>system", "im_start|>assistant", "system", "assistant", "inst]", "developer"} {
		if !hasPrefixFold(rest, p) {
			continue
		}
		k := len(p)
		if strings.HasPrefix(p, "im_start") || p == "inst]" {
			s.add(RoleMarker, base+i, base+j+k)
			return
		}
		// The role word must be a label: followed by ':', ']' or '>', or
		// alone on a heading line, optionally with "message" or "prompt".
		tail := strings.TrimLeft(rest[k:], " ")
		for _, w := range []string{"message", "prompt"} {
			if hasPrefixFold(tail, w) {
				tail = strings.TrimLeft(tail[len(w):], " ")
			}
		}
		heading := j > i && strings.ContainsAny(text[i:j], "#[<")
		end := len(tail) == 0 && j+len(rest) == len(text) || len(tail) > 0 && (tail[0] == '\n' || tail[0] == '\r')
		if len(tail) > 0 && strings.IndexByte(":]>", tail[0]) >= 0 || heading && end {
			s.add(RoleMarker, base+i, base+j+k)
		}
		return
	}
}

func hasPrefixFold(s, p string) bool {
	return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p)
}

// phrases looks for instruction overrides written in Korean, Japanese and
// Chinese, where words are not separated the English way.
func (s *scorer) phrases(text string, base int) {
	for _, p := range cjkPhrases {
		s.work += len(text)
		if k := strings.Index(text, p.text); k >= 0 {
			s.add(p.rule, base+k, base+k+len(p.text))
		}
	}
}

var cjkPhrases = []struct{ text, rule string }{
	{"이전 지시", Override}, {"지시를 무시", Override}, {"지시사항을 무시", Override}, {"명령을 무시", Override},
	{"시스템 프롬프트", PromptLeak}, {"이제부터 너는", RoleSwitch},
	{"以前の指示を無視", Override}, {"システムプロンプト", PromptLeak},
	{"忽略之前的指令", Override}, {"忽略以上", Override}, {"系统提示", PromptLeak},
}
