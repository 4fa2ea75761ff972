package tokens

import (
	"hash/maphash"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The tokenizer library splits text into pieces with a backtracking regular
// expression before it runs byte-pair merges on each piece; the regular
// expression costs most of the time and allocates a match per piece. split
// does the same split by hand for o200k_base, and the count of each short
// piece is remembered, so counting ordinary prose mostly looks up words
// already seen. FuzzSplit checks the result against the library on
// arbitrary input.
//
// The pattern, from o200k_base:
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|\p{N}{1,3}
//	| ?[^\s\p{L}\p{N}]+[\r\n/]*
//	|\s*[\r\n]+
//	|\s+(?!\S)
//	|\s+

// Character classes of the pattern.
const (
	clsUpper  = 1 << iota // \p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}
	clsLower              // \p{Ll}\p{Lm}\p{Lo}\p{M}
	clsLetter             // \p{L}
	clsNumber             // \p{N}
	clsSpace              // \s
)

var asciiClass [128]uint8

func init() {
	for r := rune(0); r < 128; r++ {
		asciiClass[r] = slowClass(r)
	}
}

func class(r rune) uint8 {
	if r < 128 {
		return asciiClass[r]
	}
	return slowClass(r)
}

func slowClass(r rune) uint8 {
	var c uint8
	switch {
	case unicode.IsLetter(r):
		c |= clsLetter
		if unicode.IsLower(r) {
			c |= clsLower
		} else if unicode.In(r, unicode.Lm, unicode.Lo) {
			c |= clsLower | clsUpper
		} else {
			c |= clsUpper // Lu, Lt
		}
	case unicode.IsMark(r):
		c |= clsLower | clsUpper
	case unicode.IsNumber(r):
		c |= clsNumber
	}
	if unicode.IsSpace(r) {
		c |= clsSpace
	}
	return c
}

// prefixOK reports whether r may open a word: [^\r\n\p{L}\p{N}].
func prefixOK(r rune, c uint8) bool {
	return r != '\r' && r != '\n' && r != del && c&(clsLetter|clsNumber) == 0
}

// del (U+007F) matches no class in the library's compiled pattern, so the
// library skips it; split does the same so that counts agree.
const del = 0x7f

// runes decodes s for the splitter. Like the library, an invalid byte
// becomes U+FFFD.
type runes struct {
	s   string
	pos []int // byte offset of each rune, and len(s) at the end
	r   []rune
}

func (rs *runes) load(s string) {
	rs.s = s
	rs.pos = rs.pos[:0]
	rs.r = rs.r[:0]
	for i, r := range s {
		rs.pos = append(rs.pos, i)
		rs.r = append(rs.r, r)
	}
	rs.pos = append(rs.pos, len(s))
}

// split calls piece for every piece of s, which must be valid UTF-8.
func (rs *runes) split(piece func(string)) {
	r := rs.r
	n := len(r)
	cls := func(i int) uint8 {
		if i >= n {
			return 0
		}
		return class(r[i])
	}
	for i := 0; i < n; {
		if r[i] == del {
			i++
			continue
		}
		e := matchAt(r, n, i, cls)
		piece(rs.s[rs.pos[i]:rs.pos[e]])
		i = e
	}
}

// matchAt returns the end of the piece that starts at i.
func matchAt(r []rune, n, i int, cls func(int) uint8) int {
	c0 := cls(i)
	// Words: the first two alternatives, each with and without an opening
	// character.
	for _, alt := range [2]int{1, 2} {
		starts := [2]int{i + 1, i}
		if !prefixOK(r[i], c0) {
			starts = [2]int{i, -1}
		}
		for _, p := range starts {
			if p < 0 {
				continue
			}
			if e, ok := word(r, n, p, alt, cls); ok {
				return e
			}
		}
	}
	if c0&clsNumber != 0 {
		e := i + 1
		for e < n && e < i+3 && cls(e)&clsNumber != 0 {
			e++
		}
		return e
	}
	// Punctuation and symbols, with one space before them.
	p := i
	if r[i] == ' ' {
		p++
	}
	e := p
	for e < n && r[e] != del && cls(e)&(clsSpace|clsLetter|clsNumber) == 0 {
		e++
	}
	if e > p {
		for e < n && (r[e] == '\r' || r[e] == '\n' || r[e] == '/') {
			e++
		}
		return e
	}
	// Whitespace.
	e = i
	for e < n && cls(e)&clsSpace != 0 {
		e++
	}
	if e == i {
		// Every character falls in some class above; this is unreachable
		// but keeps the loop moving.
		return i + 1
	}
	for q := e - 1; q >= i; q-- {
		if r[q] == '\r' || r[q] == '\n' {
			return q + 1
		}
	}
	if e == n {
		return e
	}
	if e-1 > i {
		return e - 1
	}
	return e
}

// word matches the first (alt 1) or second (alt 2) alternative from p.
func word(r []rune, n, p, alt int, cls func(int) uint8) (int, bool) {
	e1 := p
	for e1 < n && cls(e1)&clsUpper != 0 {
		e1++
	}
	var s int
	if alt == 1 {
		// U* then L+: give back upper characters until a lower one can
		// start the run.
		s = -1
		for m := e1; m >= p; m-- {
			if cls(m)&clsLower != 0 {
				s = m
				break
			}
		}
		if s < 0 {
			return 0, false
		}
		e2 := s
		for e2 < n && cls(e2)&clsLower != 0 {
			e2++
		}
		return e2 + suffix(r, n, e2), true
	}
	if e1 == p {
		return 0, false
	}
	e2 := e1
	for e2 < n && cls(e2)&clsLower != 0 {
		e2++
	}
	return e2 + suffix(r, n, e2), true
}

// suffix matches (?i:'s|'t|'re|'ve|'m|'ll|'d) at i and returns its length.
func suffix(r []rune, n, i int) int {
	if i+1 >= n || r[i] != '\'' {
		return 0
	}
	lower := func(c rune) rune {
		if c >= 'A' && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	a := lower(r[i+1])
	switch a {
	case 's', 't', 'ſ', 'm', 'd':
		return 2
	}
	if i+2 >= n {
		return 0
	}
	b := lower(r[i+2])
	switch {
	case a == 'r' && b == 'e', a == 'v' && b == 'e', a == 'l' && b == 'l':
		return 3
	}
	return 0
}

// Piece counts are cached in shards, each holding two bounded generations.
const (
	pieceShards = 16
	pieceGen    = 2048
	pieceMaxLen = 32 // longer pieces are rare and counted each time
)

type pieceShard struct {
	mu        sync.RWMutex
	cur, prev map[string]int32
}

var (
	pieceSeed  = maphash.MakeSeed()
	pieceCache [pieceShards]pieceShard
	runesPool  = sync.Pool{New: func() any { return new(runes) }}
)

func pieceCount(piece string) int {
	if len(piece) > pieceMaxLen {
		return libraryCount(encoder(false), piece)
	}
	sh := &pieceCache[maphash.String(pieceSeed, piece)%pieceShards]
	sh.mu.RLock()
	n, ok := sh.cur[piece]
	if !ok {
		n, ok = sh.prev[piece]
	}
	sh.mu.RUnlock()
	if ok {
		return int(n)
	}
	v := libraryCount(encoder(false), piece)
	sh.mu.Lock()
	if sh.cur == nil || len(sh.cur) >= pieceGen {
		sh.prev, sh.cur = sh.cur, make(map[string]int32, pieceGen)
	}
	sh.cur[piece] = int32(v)
	sh.mu.Unlock()
	return v
}

// fastCount counts o200k_base tokens of text through split and the piece
// cache.
func fastCount(text string) int {
	if !utf8.ValidString(text) {
		text = string([]rune(text))
	}
	rs := runesPool.Get().(*runes)
	rs.load(text)
	n := 0
	rs.split(func(p string) { n += pieceCount(p) })
	rs.s = ""
	if cap(rs.r) <= 1<<16 {
		runesPool.Put(rs)
	}
	return n
}
