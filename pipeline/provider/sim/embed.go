package sim

import (
	"context"
	"hash/fnv"
	"math"
	"strings"
	"unicode"

	"gantry/pipeline/chat"
	"gantry/pipeline/tokens"
)

// EmbeddingDimensions is the size of the simulator's vectors when the
// request names none.
const EmbeddingDimensions = 256

// Embed returns the simulator's deterministic vectors, which are not a
// model's: each text is hashed into a vector (feature hashing) of its
// lower-cased words and of their three-letter pieces, with stop words left
// out, then scaled to length 1. The same text always gives the same vector,
// texts that share words and word stems ("shipped", "shipping") point the
// same way, and unrelated texts are nearly orthogonal, so cosine
// similarity ranks a paraphrase above an unrelated text as a real model
// would, and tests of caches and retrieval can rely on it.
func (s *Simulator) Embed(ctx context.Context, req *chat.EmbeddingRequest) (*chat.EmbeddingResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dims := req.Dimensions
	if dims == 0 {
		dims = EmbeddingDimensions
	}
	out := &chat.EmbeddingResponse{Object: chat.ObjectList, Model: req.Model, Usage: &chat.EmbeddingUsage{}}
	for i, text := range req.Input {
		out.Data = append(out.Data, chat.Embedding{Index: i, Vector: Vector(text, dims)})
		out.Usage.PromptTokens += tokens.Count(text)
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	return out, nil
}

// simStopWords carry little meaning and would make every English text look
// alike.
var simStopWords = map[string]bool{"a": true, "an": true, "the": true, "is": true, "are": true, "was": true, "were": true,
	"to": true, "of": true, "and": true, "or": true, "in": true, "on": true, "at": true, "for": true, "with": true,
	"my": true, "your": true, "it": true, "this": true, "that": true, "be": true, "do": true, "does": true, "did": true,
	"i": true, "you": true, "we": true, "me": true, "can": true, "will": true, "has": true, "have": true}

// Vector is the simulator's embedding of text with dims dimensions.
func Vector(text string, dims int) []float32 {
	v := make([]float64, dims)
	add := func(feature string, weight float64) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		sum := h.Sum64()
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1
		}
		v[int(sum%uint64(dims))] += sign * weight
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, w := range words {
		if simStopWords[w] {
			continue
		}
		add("w:"+w, 1)
		r := []rune("^" + w + "$")
		for j := 0; j+3 <= len(r); j++ {
			add("t:"+string(r[j:j+3]), 0.5)
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, dims)
	if norm == 0 {
		out[0] = 1 // a text of stop words only: a fixed unit vector
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}
