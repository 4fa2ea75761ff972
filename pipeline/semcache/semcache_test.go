package semcache

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gantry/pipeline/provider/sim"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func vec(text string) []float32 { return sim.Vector(Normalize(text), sim.EmbeddingDimensions) }

func TestParaphraseHitsAndOtherPartitionMisses(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	c := New(8, clk.now)
	ix := c.Index("sha256:r1/embed", 100, sim.EmbeddingDimensions)
	ix.Put("team:acme", vec("How do I reset my password?"), []byte("answer-1"), "trace-1", time.Hour)
	ix.Put("team:acme", vec("What are your opening hours on Sunday?"), []byte("answer-2"), "trace-2", time.Hour)

	hit, ok := ix.Lookup("team:acme", vec("how can I reset the password"), 0.8)
	if !ok || string(hit.Value) != "answer-1" || hit.Trace != "trace-1" {
		t.Fatalf("paraphrase: got %+v %v, want answer-1 from trace-1", hit, ok)
	}
	if hit.Similarity < 0.8 || hit.Similarity > 1 {
		t.Fatalf("similarity %v", hit.Similarity)
	}
	if _, ok := ix.Lookup("team:globex", vec("How do I reset my password?"), 0.8); ok {
		t.Fatal("another team's identical question hit acme's answer")
	}
	if hit, ok := ix.Lookup("team:acme", vec("Which payment cards do you accept?"), 0.8); ok {
		t.Fatalf("an unrelated question hit %q", hit.Value)
	}
	clk.t = clk.t.Add(time.Hour)
	if _, ok := ix.Lookup("team:acme", vec("How do I reset my password?"), 0.8); ok {
		t.Fatal("an entry past its TTL was served")
	}
	if n := ix.Len(); n != 0 {
		t.Fatalf("%d live entries after the TTL", n)
	}
}

func TestIndexIsBounded(t *testing.T) {
	c := New(8, nil)
	ix := c.Index("r", 3, 4)
	for i := range 5 {
		v := make([]float32, 4)
		v[i%4] = 1
		ix.Put("p", v, []byte(fmt.Sprint(i)), "", time.Hour)
	}
	if n := ix.Len(); n != 3 {
		t.Fatalf("%d entries, want the bound 3", n)
	}
	// Entries 0 and 1 made room: the vector of 0 now finds 4, which
	// points the same way.
	if hit, ok := ix.Lookup("p", []float32{1, 0, 0, 0}, 0.99); !ok || string(hit.Value) != "4" {
		t.Fatalf("got %q %v, want the newer entry 4", hit.Value, ok)
	}
	if _, ok := ix.Lookup("p", []float32{0, 1, 0, 0}, 0.99); ok {
		t.Fatal("the evicted entry 1 was served")
	}
	if _, ok := ix.Lookup("p", []float32{1, 0}, 0.5); ok {
		t.Fatal("a vector of the wrong size matched")
	}
}

func TestCacheBoundsIndexesAndReplacesReshaped(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	c := New(2, clk.now)
	a := c.Index("a", 10, 2)
	a.Put("p", []float32{1, 0}, []byte("x"), "", time.Hour)
	clk.t = clk.t.Add(time.Second)
	c.Index("b", 10, 2)
	clk.t = clk.t.Add(time.Second)
	c.Index("c", 10, 2) // a is the least recently used
	if c.Index("a", 10, 2).Len() != 0 {
		t.Fatal("index a outlived the bound of two indexes")
	}
	b := c.Index("b", 10, 2)
	b.Put("p", []float32{1, 0}, []byte("x"), "", time.Hour)
	if c.Index("b", 10, 3).Len() != 0 {
		t.Fatal("an index kept vectors of another size")
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"  How do I RESET my password?? ": "how do i reset my password",
		"Ça va, Zoë!":                     "ça va zoë",
		"":                                "",
		"--- ...":                         "",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	if n := len(Normalize(strings.Repeat("word ", 10000))); n > MaxNormalizedBytes+utf8.UTFMax {
		t.Fatalf("normalised text of %d bytes", n)
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add("How do I reset my password?")
	f.Add("\xff\xfe ÉCOLE")
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if !utf8.ValidString(n) && utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 from valid input %q", s)
		}
		if len(n) > MaxNormalizedBytes+utf8.UTFMax {
			t.Fatalf("%d bytes", len(n))
		}
		if Normalize(n) != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, Normalize(n))
		}
	})
}

// BenchmarkLookup measures one lookup in a full index of 10k and 100k
// entries of the simulator's 256 dimensions, all in the query's partition:
// the worst case, as every entry is compared.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			ix := New(1, nil).Index("r", n, sim.EmbeddingDimensions)
			v := make([]float32, sim.EmbeddingDimensions)
			for i := range n {
				for j := range v {
					v[j] = float32(rng.NormFloat64())
				}
				ix.Put("p", v, []byte{byte(i)}, "", time.Hour)
			}
			q := vec("how do I reset my password")
			b.ResetTimer()
			for range b.N {
				ix.Lookup("p", q, 0.9)
			}
		})
	}
}
