package retrieval

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"gantry/config"
)

// BenchmarkRetrieveTop5 measures a top-5 query over 10,000 chunks, one
// chunk per synthetic document of 40 words, compacted after loading.
//
// "zipf" draws 10 words of each chunk from the help-centre corpus and 30
// from a 50,000-word vocabulary with a Zipf distribution, which is how words
// spread over a real collection of this size. "dense" draws all 40 from the
// corpus's 900-odd distinct words, so every query term matches thousands of
// chunks: a worst case. In both every chunk has 40 words, so chunks that
// match the same query terms once tie, and nearly every query takes the
// second search that keeps tied chunks by id. "varlen" is zipf with 20 to
// 60 words a chunk, as real chunks vary, where ties at the cut are as rare
// as in the help-centre corpus (3 of 132 queries there).
func BenchmarkRetrieveTop5(b *testing.B) {
	for _, tc := range []struct {
		name   string
		corpus int  // words per chunk from the corpus; the rest are Zipf
		varlen bool // 20 to 60 words a chunk instead of 40
	}{{"zipf", 10, false}, {"dense", 40, false}, {"varlen", 10, true}} {
		b.Run(tc.name, func(b *testing.B) {
			ix := benchIndex(b, tc.corpus, tc.varlen)
			queries := []string{
				"how do I reset my password", "thermostat offline wifi", "refund subscription within fourteen days",
				"room sensor battery", "pre-heat cheap electricity heat pump", "warranty water damage",
			}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				res, err := ix.Retrieve(ctx, Query{Text: queries[i%len(queries)], TopK: 5})
				if err != nil || len(res) != 5 {
					b.Fatalf("got %d results, %v", len(res), err)
				}
				i++
			}
		})
	}
}

func benchIndex(b *testing.B, fromCorpus int, varlen bool) *Index {
	b.Helper()
	ctx := context.Background()
	var vocab []string
	for _, d := range corpus(b) {
		vocab = append(vocab, strings.Fields(d.Text)...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 2, 49999)
	const n = 10000
	docs := make([]Document, n)
	for i := range docs {
		n := 40
		if varlen {
			n = 20 + rng.IntN(41)
		}
		words := make([]string, n)
		for j := range words {
			if j < fromCorpus {
				words[j] = vocab[rng.IntN(len(vocab))]
			} else {
				words[j] = fmt.Sprintf("t%x", zipf.Uint64())
			}
		}
		rng.Shuffle(len(words), func(a, c int) { words[a], words[c] = words[c], words[a] })
		docs[i] = Document{ID: fmt.Sprintf("doc-%05d", i), Text: strings.Join(words, " "),
			Metadata: map[string]string{"category": []string{"a", "b", "c"}[i%3]}}
	}
	store, err := OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	ix, err := store.Index(ctx, "bench", config.Chunking{SizeTokens: 256})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 1000 {
		if err := ix.Add(ctx, docs[i:i+1000]...); err != nil {
			b.Fatal(err)
		}
	}
	if err := ix.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	if c, _ := ix.Count(); c != n {
		b.Fatalf("index holds %d chunks, want %d", c, n)
	}
	return ix
}
