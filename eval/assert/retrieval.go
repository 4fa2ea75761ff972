package assert

import (
	"strings"

	"gantry/pipeline/trace"
)

// RetrievalMetrics are how well a release's retrieval found the sources a
// case expects.
type RetrievalMetrics struct {
	K        int     `json:"k"`        // retrieved sources looked at
	Expected int     `json:"expected"` // sources the case names
	Found    int     `json:"found"`    // expected sources among the top K
	Recall   float64 `json:"recall"`   // Found / Expected: recall@k
	RR       float64 `json:"rr"`       // 1 / rank of the first expected source, 0 if none
}

// Retrieve measures retrieved (best first) against the expected sources,
// looking at the top k (all when k <= 0). An expected source names a
// document, or one chunk as "document#chunk" or by the chunk id alone; a
// retrieved chunk matches any of these. Each expected source counts once
// however many of its chunks were retrieved.
func Retrieve(expected []string, retrieved []trace.Source, k int) RetrievalMetrics {
	if k <= 0 || k > len(retrieved) {
		k = len(retrieved)
	}
	m := RetrievalMetrics{K: k, Expected: len(expected)}
	found := make([]bool, len(expected))
	for rank, src := range retrieved[:k] {
		for i, e := range expected {
			if !matches(e, src) {
				continue
			}
			if m.RR == 0 {
				m.RR = 1 / float64(rank+1)
			}
			if !found[i] {
				found[i] = true
				m.Found++
			}
		}
	}
	if m.Expected > 0 {
		m.Recall = float64(m.Found) / float64(m.Expected)
	}
	return m
}

func matches(expected string, src trace.Source) bool {
	if expected == src.Document || (src.Chunk != "" && expected == src.Chunk) {
		return true
	}
	doc, chunk, ok := strings.Cut(expected, "#")
	return ok && doc == src.Document && chunk == src.Chunk
}
