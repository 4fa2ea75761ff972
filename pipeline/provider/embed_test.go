package provider

import (
	"context"
	"errors"
	"math"
	"testing"

	"gantry/pipeline/chat"
)

func embedReq(model string) *chat.EmbeddingRequest {
	return &chat.EmbeddingRequest{Model: model, Input: chat.EmbeddingInput{"Where is my order?", "Reset the thermostat"}, Dimensions: 3}
}

func TestRecordedEmbeddings(t *testing.T) {
	tests := []struct {
		name      string
		recording string
		build     func(url string) Embedder
		req       *chat.EmbeddingRequest
		path      string
		tokens    int // -1: the provider reports none
		check     func(t *testing.T, body map[string]any)
	}{
		{"openai", "openai/embeddings.http", func(url string) Embedder { return NewOpenAI(url+"/v1", "k", nil) }, embedReq("text-embedding-3-small"),
			"/v1/embeddings", 9, func(t *testing.T, body map[string]any) {
				if body["dimensions"] != 3.0 || body["encoding_format"] != "float" || jsonAt(body, "input", 1) != "Reset the thermostat" {
					t.Fatalf("body: %v", body)
				}
			}},
		{"azure", "openai/embeddings.http", func(url string) Embedder { return NewAzure(url, "", AzureAuth{Key: "k"}, nil) }, embedReq("embed-deployment"),
			"/openai/deployments/embed-deployment/embeddings?api-version=2024-10-21", 9, nil},
		{"gemini", "gemini/embeddings.http", func(url string) Embedder { return NewGemini(url, "k", nil) }, embedReq("gemini-embedding-001"),
			"/v1beta/models/gemini-embedding-001:batchEmbedContents", -1, func(t *testing.T, body map[string]any) {
				if jsonAt(body, "requests", 1, "content", "parts", 0, "text") != "Reset the thermostat" || jsonAt(body, "requests", 0, "model") != "models/gemini-embedding-001" || jsonAt(body, "requests", 0, "outputDimensionality") != 3.0 {
					t.Fatalf("body: %v", body)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp, url := serve(t, recording(t, tt.recording))
			resp, err := tt.build(url).Embed(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Embed: %v", err)
			}
			// The first input's vector comes first, whatever order the
			// upstream listed them in.
			if len(resp.Data) != 2 || resp.Data[0].Vector[1] != 0.75 || resp.Data[1].Vector[1] != -0.25 || resp.Data[1].Index != 1 {
				t.Fatalf("data: %+v", resp.Data)
			}
			if tt.tokens >= 0 && (resp.Usage == nil || resp.Usage.PromptTokens != tt.tokens) {
				t.Fatalf("usage: %+v, want %d tokens", resp.Usage, tt.tokens)
			}
			if got := rp.Requests()[0].Path; got != tt.path {
				t.Fatalf("path: got %s, want %s", got, tt.path)
			}
			if tt.check != nil {
				tt.check(t, sentBody(t, rp, 0))
			}
		})
	}
}

func TestBedrockTitanEmbeddings(t *testing.T) {
	rp, url := serve(t, recording(t, "bedrock/titan-embed.http"))
	resp, err := newBedrockTest(url).Embed(context.Background(), embedReq("amazon.titan-embed-text-v2:0"))
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	// Titan takes one text a call.
	if len(rp.Requests()) != 2 || len(resp.Data) != 2 || resp.Usage.PromptTokens != 10 {
		t.Fatalf("calls %d, data %d, usage %+v; want 2 calls, 2 vectors, 10 tokens", len(rp.Requests()), len(resp.Data), resp.Usage)
	}
	body := sentBody(t, rp, 1)
	if body["inputText"] != "Reset the thermostat" || body["dimensions"] != 3.0 || rp.Requests()[0].Path != "/model/amazon.titan-embed-text-v2%3A0/invoke" {
		t.Fatalf("request: %s %v", rp.Requests()[0].Path, body)
	}
}

func TestEmbeddingDimensionsRefused(t *testing.T) {
	rp, url := serve(t, recording(t, "openai/embeddings.http"))
	_, err := NewPreset(presets["mistral"], url, "k", nil).Embed(context.Background(), embedReq("mistral-embed"))
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Param != "dimensions" || len(rp.Requests()) != 0 {
		t.Fatalf("got %v, want a 400 naming dimensions before any call", err)
	}
}

func TestEmbeddingsWithMissingVectors(t *testing.T) {
	_, url := serve(t, recording(t, "gemini/embeddings.http"))
	req := embedReq("gemini-embedding-001")
	req.Input = append(req.Input, "a third text")
	_, err := NewGemini(url, "k", nil).Embed(context.Background(), req)
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindProtocol {
		t.Fatalf("got %v, want a protocol error for 2 vectors to 3 inputs", err)
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
