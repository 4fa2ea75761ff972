package deny

import (
	"strings"
	"testing"
)

// naive finds whole-word matches term by term, for comparison.
func naive(terms []string, text string) map[[2]int]bool {
	lower := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			b[i] = fold(c)
		}
		return string(b)
	}
	lt := lower(text)
	out := map[[2]int]bool{}
	for _, t := range terms {
		t = lower(strings.TrimSpace(t))
		for i := 0; i+len(t) <= len(lt); i++ {
			if lt[i:i+len(t)] == t && whole(text, i, i+len(t)) {
				out[[2]int{i, i + len(t)}] = true
			}
		}
	}
	return out
}

func FuzzMatcher(f *testing.F) {
	f.Add("he,she,hers,his", "ushers and his HE she")
	f.Add("project falcon,falcon", "Project Falcon's falcon")
	f.Add("비밀,a", "우리비밀 a b")
	f.Fuzz(func(t *testing.T, list, text string) {
		if len(list) > 200 || len(text) > 2000 {
			return
		}
		var terms []string
		for _, s := range strings.Split(list, ",") {
			if strings.TrimSpace(s) != "" {
				terms = append(terms, s)
			}
		}
		m, err := Compile(terms)
		if err != nil {
			return
		}
		want := naive(terms, text)
		got := map[[2]int]bool{}
		for _, mt := range m.FindAll(text, 1<<20) {
			got[[2]int{mt.Start, mt.End}] = true
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("terms %q text %q: missed match %v", terms, text, k)
			}
		}
		for k := range got {
			if !want[k] {
				t.Fatalf("terms %q text %q: false match %v", terms, text, k)
			}
		}
	})
}
