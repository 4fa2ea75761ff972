package tokens

import (
	"strings"
	"testing"
)

// libraryPieces is how the tokenizer library splits s.
func libraryPieces(t testing.TB, s string) []string {
	t.Helper()
	_, toks, err := encoder(false).Encode(s)
	if err != nil {
		t.Fatalf("library encode: %v", err)
	}
	return toks
}

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"I'm here, they'LL go", []string{"I'm", " here", ",", " they'LL", " go"}},
		{"1234567", []string{"123", "456", "7"}},
		{"a  b", []string{"a", " ", " b"}},
		{"end  ", []string{"end", "  "}},
		{"x\n\n  y", []string{"x", "\n\n", " ", " y"}},
		{"path/to\n", []string{"path", "/to", "\n"}},
		{"CamelCaseHTTPServer", []string{"Camel", "Case", "HTTPServer"}},
		{" ...!!\n/", []string{" ...!!\n/"}},
		{"héllo wörld", []string{"héllo", " wörld"}},
	}
	for _, tt := range tests {
		var got []string
		var rs runes
		rs.load(tt.in)
		rs.split(func(p string) { got = append(got, p) })
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Fatalf("split(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFastCountAgrees(t *testing.T) {
	texts := []string{
		"", "hello", prompt4K(),
		"Don't stop: it's 3.14159 and 2,000,000 users' data\r\n\r\n\tindented\u00a0nbsp",
		"日本語のテキストと한국어 그리고 русский текст, ελληνικά.",
		"emoji 👍🏽 and combining e\u0301 marks \u0301\u0301 alone",
		"invalid \xff\xfe bytes \xc3",
		"ǅungla Ǆ titlecase ſ's 'S 'Re 'VE 'lL 'D",
		"    \n   \n\n \t  x",
	}
	for _, s := range texts {
		if got, want := fastCount(s), libraryCount(encoder(false), s); got != want {
			t.Fatalf("fastCount(%q): got %d, want %d", s, got, want)
		}
	}
}

// FuzzSplit checks the hand-written split and the piece cache against the
// tokenizer library on any input.
func FuzzSplit(f *testing.F) {
	f.Add("Hello, world! I'm 12345 years old.\n\n  Next paragraph\r\n")
	f.Add("日本語 ǅ e\u0301 \u0301 👍🏽 \xff 'S 'll")
	f.Add("a  b\t\t\n c   ")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		if got, want := fastCount(s), libraryCount(encoder(false), s); got != want {
			var pieces []string
			var rs runes
			rs.load(string([]rune(s)))
			rs.split(func(p string) { pieces = append(pieces, p) })
			t.Fatalf("fastCount(%q) = %d, library %d\nsplit:   %q\nlibrary: %q", s, got, want, pieces, libraryPieces(t, s))
		}
	})
}

// TestFastCountRandomUnicode compares with the library on strings drawn
// from every class the pattern cares about, which byte mutation rarely
// reaches.
func TestFastCountRandomUnicode(t *testing.T) {
	alphabet := []rune("aZ'sStTrReEvVlLmMdD ſ\t\r\n\u000b\u000c\u0085\u00a0\u2028\u3000/.,!#7\u0661\u2163\u00bd" +
		"ǅǈ\u02b0\u02b1\u05d0\u4e00\u0301\u0903\u20dd\u00e9\u00c9\u0391\u03b1\u007f\u0000😀\U0001F3FD\ufffd")
	rng := uint64(1)
	next := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	for i := range 10000 {
		b := make([]rune, 1+next(24))
		for j := range b {
			b[j] = alphabet[next(len(alphabet))]
		}
		s := string(b)
		if got, want := fastCount(s), libraryCount(encoder(false), s); got != want {
			t.Fatalf("string %d %q: fastCount %d, library %d", i, s, got, want)
		}
	}
}
