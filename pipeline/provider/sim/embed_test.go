package sim

import (
	"context"
	"math"
	"testing"

	"gantry/config"
	"gantry/pipeline/chat"
)

// TestSimEmbeddingsRankParaphrases is what a paraphrase test relies on:
// a paraphrase is closer than an unrelated text, and vectors repeat.
func TestSimEmbeddingsRankParaphrases(t *testing.T) {
	s := New(config.SimSettings{Seed: 1})
	resp, err := s.Embed(context.Background(), &chat.EmbeddingRequest{Model: "sim-embed", Input: chat.EmbeddingInput{
		"Where is my order? It has not shipped yet.",
		"My order still hasn't shipped, where is it?",
		"How do I reset the thermostat to factory settings?",
	}})
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	v := resp.Data
	para, unrelated := cosine(v[0].Vector, v[1].Vector), cosine(v[0].Vector, v[2].Vector)
	if para < 0.5 || unrelated > 0.2 || para <= unrelated {
		t.Fatalf("paraphrase similarity %.2f, unrelated %.2f; want the paraphrase above 0.5 and the other below 0.2", para, unrelated)
	}
	if len(v[0].Vector) != EmbeddingDimensions || math.Abs(cosine(v[0].Vector, v[0].Vector)-1) > 1e-6 {
		t.Fatalf("vectors must have %d dimensions and unit length", EmbeddingDimensions)
	}
	again := Vector("Where is my order? It has not shipped yet.", EmbeddingDimensions)
	for i := range again {
		if again[i] != v[0].Vector[i] {
			t.Fatal("the same text gave another vector")
		}
	}
	if resp.Usage.PromptTokens <= 0 {
		t.Fatalf("usage: %+v", resp.Usage)
	}
	if got := Vector("the and of", 8); got[0] != 1 {
		t.Fatalf("stop words only: got %v, want a fixed unit vector", got)
	}
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}
