// Package deny matches deny-list terms in text: case-insensitive (ASCII),
// whole words, all terms at once in one linear pass (Aho-Corasick compiled
// to a DFA over the byte classes the terms use).
package deny

import (
	"errors"
	"fmt"
	"strings"

	"gantry/config"
)

// Bounds on a deny list; they match the configuration's.
const (
	MaxTerms     = config.MaxDenyTerms
	MaxTermBytes = config.MaxDenyTermBytes
	MaxBytes     = config.MaxDenyBytes
)

// Match is a term found in a text: its index in the list and byte offsets.
type Match struct {
	Term       int
	Start, End int
}

// Matcher finds deny-list terms. It is immutable and safe for concurrent use.
type Matcher struct {
	class   [256]uint8 // byte -> class; 0 is every byte no term uses
	classes int
	// next maps row+class to the next state's row (state*classes),
	// negated when that state ends a term, so the scan tests one sign.
	next []int32
	out  []int32 // state -> term ending here (longest), or -1
	dict []int32 // state -> nearest proper suffix state with a term, or -1
	lens []int   // term -> length in bytes
	// first marks the bytes that start a term, and pairs the byte pairs
	// that start one (or begin with a one-byte term). At the root the scan
	// skips positions where no term starts without following the chain of
	// transitions, whose loads depend on each other.
	first [256]bool
	pairs [256 * 256 / 8]byte
}

func fold(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c | 0x20
	}
	return c
}

// Compile builds a matcher. Terms are trimmed; blank terms are an error.
func Compile(terms []string) (*Matcher, error) {
	if len(terms) > MaxTerms {
		return nil, fmt.Errorf("deny list has %d terms, more than %d", len(terms), MaxTerms)
	}
	m := &Matcher{lens: make([]int, len(terms))}
	// Byte classes: one per distinct folded byte in the terms.
	m.classes = 1
	total := 0
	for i, t := range terms {
		total += len(t)
		if total > MaxBytes {
			return nil, fmt.Errorf("deny list has more than %d bytes of terms", MaxBytes)
		}
		t = strings.TrimSpace(t)
		if t == "" || len(t) > MaxTermBytes {
			return nil, fmt.Errorf("deny list term %d: want 1..%d bytes, not blank", i, MaxTermBytes)
		}
		for k := 0; k < len(t); k++ {
			c := fold(t[k])
			if m.class[c] == 0 {
				if m.classes == 256 {
					return nil, errors.New("deny list uses too many distinct bytes")
				}
				m.class[c] = uint8(m.classes)
				m.classes++
			}
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		m.class[c] = m.class[c|0x20]
	}
	// Trie.
	k := m.classes
	m.next = make([]int32, k) // root
	m.out = []int32{-1}
	for i, t := range terms {
		t = strings.TrimSpace(t)
		m.lens[i] = len(t)
		s := int32(0)
		for j := 0; j < len(t); j++ {
			c := int32(m.class[t[j]])
			n := m.next[s*int32(k)+c]
			if n == 0 {
				n = int32(len(m.out))
				m.next[s*int32(k)+c] = n
				m.next = append(m.next, make([]int32, k)...)
				m.out = append(m.out, -1)
			}
			s = n
		}
		if m.out[s] < 0 || len(t) > m.lens[m.out[s]] {
			m.out[s] = int32(i)
		}
	}
	m.filters()
	// Failure links by breadth-first search, folded into the DFA.
	states := len(m.out)
	fail := make([]int32, states)
	m.dict = make([]int32, states)
	for i := range m.dict {
		m.dict[i] = -1
	}
	queue := make([]int32, 0, states)
	for c := 0; c < k; c++ {
		if n := m.next[c]; n != 0 {
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := fail[s]
		if m.out[f] >= 0 {
			m.dict[s] = f
		} else {
			m.dict[s] = m.dict[f]
		}
		for c := 0; c < k; c++ {
			idx := int(s)*k + c
			if n := m.next[idx]; n != 0 {
				fail[n] = m.next[int(f)*k+c]
				queue = append(queue, n)
			} else {
				m.next[idx] = m.next[int(f)*k+c]
			}
		}
	}
	for i, n := range m.next {
		row := n * int32(k)
		if m.out[n] >= 0 || m.dict[n] >= 0 {
			row = -row // the root (row 0) never ends a term
		}
		m.next[i] = row
	}
	return m, nil
}

// filters fills first and pairs from the trie, before failure links fill
// the gaps of the transition table.
func (m *Matcher) filters() {
	k := m.classes
	var classPair [256][256]bool
	for c0 := 1; c0 < k; c0++ {
		n := m.next[c0]
		if n == 0 {
			continue
		}
		for c1 := 0; c1 < k; c1++ {
			classPair[c0][c1] = m.out[n] >= 0 || m.next[int(n)*k+c1] != 0
		}
	}
	for b0 := 0; b0 < 256; b0++ {
		c0 := m.class[b0]
		m.first[b0] = m.next[c0] != 0
		if !m.first[b0] {
			continue
		}
		for b1 := 0; b1 < 256; b1++ {
			if classPair[c0][m.class[b1]] {
				idx := b0<<8 | b1
				m.pairs[idx>>3] |= 1 << (idx & 7)
			}
		}
	}
}

func (m *Matcher) startsAt(text string, i int) bool {
	if i+1 >= len(text) {
		return m.first[text[i]]
	}
	idx := int(text[i])<<8 | int(text[i+1])
	return m.pairs[idx>>3]&(1<<(idx&7)) != 0
}

// skip returns the first position at or after i where a whole-word
// match can start. Past a word byte that starts no term, the rest of its
// word is skipped: a match starting inside a word is never whole.
func (m *Matcher) skip(text string, i int) int {
	for i < len(text) {
		c := text[i]
		if m.first[c] && m.startsAt(text, i) {
			return i
		}
		i++
		if wordByte[c] {
			for i < len(text) && wordByte[text[i]] {
				i++
			}
			// The space after the word starts no term either: Compile
			// trims the terms.
			if i < len(text) && text[i] == ' ' {
				i++
			}
		}
	}
	return i
}

var wordByte [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		wordByte[c] = b >= '0' && b <= '9' || b|0x20 >= 'a' && b|0x20 <= 'z' || b == '_'
	}
}

func isWord(c byte) bool { return wordByte[c] }

// whole reports whether text[start:end] stands as a word. Boundaries are
// only required next to ASCII letters and digits: scripts such as Hangul
// attach particles to words.
func whole(text string, start, end int) bool {
	if start > 0 && isWord(text[start]) && isWord(text[start-1]) {
		return false
	}
	if end < len(text) && isWord(text[end-1]) && isWord(text[end]) {
		return false
	}
	return true
}

// Find returns the first whole-word match in text.
func (m *Matcher) Find(text string) (Match, bool) {
	var found Match
	ok := false
	m.scan(text, func(mt Match) bool {
		found, ok = mt, true
		return false
	})
	return found, ok
}

// FindAll returns up to max whole-word matches in order of their ends.
func (m *Matcher) FindAll(text string, max int) []Match {
	var out []Match
	m.scan(text, func(mt Match) bool {
		out = append(out, mt)
		return len(out) < max
	})
	return out
}

func (m *Matcher) scan(text string, yield func(Match) bool) {
	if m == nil || len(m.out) <= 1 {
		return
	}
	k := int32(m.classes)
	row := int32(0)
	for i := 0; i < len(text); i++ {
		if row == 0 {
			if i = m.skip(text, i); i == len(text) {
				return
			}
		}
		row = m.next[row+int32(m.class[text[i]])]
		if row >= 0 {
			continue
		}
		row = -row
		for t := row / k; t > 0; t = m.dict[t] {
			if term := m.out[t]; term >= 0 {
				start := i + 1 - m.lens[term]
				if whole(text, start, i+1) && !yield(Match{Term: int(term), Start: start, End: i + 1}) {
					return
				}
			}
		}
	}
}
