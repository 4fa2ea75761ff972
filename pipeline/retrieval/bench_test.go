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
// chunks: a worst case.
func BenchmarkRetrieveTop5(b *testing.B) {
	for _, tc := range []struct {
		name   string
		corpus int // words per chunk from the corpus; the rest are Zipf
	}{{"zipf", 10}, {"dense", 40}} {
		b.Run(tc.name, func(b *testing.B) {
			ix := benchIndex(b, tc.corpus)
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

func benchIndex(b *testing.B, fromCorpus int) *Index {
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
		words := make([]string, 40)
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
