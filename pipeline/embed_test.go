package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"gantry/pipeline"
	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/internal/gwtest"
	"gantry/pipeline/provider/sim"
	"gantry/pipeline/trace"
)

// embeddingsHandler is what the agent's /v1/embeddings handler does.
func embeddingsHandler(g *gwtest.Gateway) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(err error) {
			var ce *chat.Error
			if !errors.As(err, &ce) {
				ce = &chat.Error{Status: 500, Type: chat.TypeServer, Message: err.Error()}
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(ce.Status)
			json.NewEncoder(w).Encode(ce.Body())
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		req, err := chat.DecodeEmbeddingRequest(body)
		if err != nil {
			fail(err)
			return
		}
		c := &pipeline.Call{ID: "e1", TraceID: trace.NewTraceID(), Received: time.Now(), Secret: gwtest.Secret(r)}
		if err := pipeline.NewEmbeddingCall(c, req); err != nil {
			fail(err)
			return
		}
		if err := g.Serve(r.Context(), c); err != nil {
			fail(err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c.Embedding)
	})
}

func TestSDKEmbeddings(t *testing.T) {
	g := gwtest.New(t)
	mux := http.NewServeMux()
	mux.Handle("POST /v1/embeddings", embeddingsHandler(g))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := openai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey(gwtest.Key), option.WithMaxRetries(0))
	texts := []string{"Where is my order? It has not shipped.", "My order still hasn't shipped, where is it?", "How do I reset the thermostat?"}
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		resp, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "sim-embed", Dimensions: openai.Int(64),
			EncodingFormat: format, Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts}})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if len(resp.Data) != 3 || len(resp.Data[0].Embedding) != 64 || resp.Model != "sim-embed" || resp.Usage.PromptTokens <= 0 {
			t.Fatalf("%s: %d vectors of %d, model %s, usage %+v", format, len(resp.Data), len(resp.Data[0].Embedding), resp.Model, resp.Usage)
		}
		want := sim.Vector(texts[0], 64)
		for i, v := range resp.Data[0].Embedding {
			if math.Abs(v-float64(want[i])) > 1e-6 {
				t.Fatalf("%s: vector differs at %d: %v, want %v", format, i, v, want[i])
			}
		}
	}
	tr := g.Traces()[0]
	if tr.Entry != pipeline.EntryEmbeddings || tr.Status != "ok" || tr.Model != "sim-embed" || tr.InputTokens <= 0 || tr.CostUSD <= 0 || tr.TokensEstimate {
		t.Fatalf("trace: %+v", tr)
	}
	// Token ids are refused in OpenAI's error shape.
	_, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "sim-embed", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 2}}})
	var ae *openai.Error
	if !errors.As(err, &ae) || ae.StatusCode != 400 {
		t.Fatalf("token ids: got %v, want a 400", err)
	}
	// A wrong key never reaches the provider.
	bad := openai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey("gk_wrong-key-0000000000"), option.WithMaxRetries(0))
	_, err = bad.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "sim-embed", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	if !errors.As(err, &ae) || ae.StatusCode != 401 {
		t.Fatalf("wrong key: got %v, want a 401", err)
	}
}

func TestEmbeddingsCache(t *testing.T) {
	g := gwtest.New(t, func(d *pipeline.Deps) { d.EmbedCache, d.EmbedTTL = cache.New(1<<20, time.Now), time.Minute })
	call := func(format string, dims int, noCache bool) *pipeline.Call {
		t.Helper()
		c := &pipeline.Call{ID: "e", TraceID: trace.NewTraceID(), Received: time.Now(), Secret: gwtest.Key, NoCache: noCache}
		req := &chat.EmbeddingRequest{Model: "sim-embed", Input: chat.EmbeddingInput{"Where is my order?", "Reset the thermostat"}, Dimensions: dims, EncodingFormat: format}
		if err := pipeline.NewEmbeddingCall(c, req); err != nil {
			t.Fatal(err)
		}
		if err := g.Serve(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := call("", 64, false)
	again := call("base64", 64, false)
	other := call("", 32, false)
	bypass := call("", 64, true)
	if first.Cached || !again.Cached || other.Cached || bypass.Cached {
		t.Fatalf("cached: first %v, again %v, other dimensions %v, bypass %v; want only again", first.Cached, again.Cached, other.Cached, bypass.Cached)
	}
	for i := range first.Embedding.Data {
		a, b := first.Embedding.Data[i], again.Embedding.Data[i]
		if a.Index != b.Index || len(a.Vector) != 64 || fmt.Sprint(a.Vector) != fmt.Sprint(b.Vector) || a.Base64 || !b.Base64 {
			t.Fatalf("vector %d from the cache differs or keeps the wrong format", i)
		}
	}
	traces := g.Traces()
	if tr := traces[1]; !tr.Cached || tr.CostUSD != 0 || tr.InputTokens != first.Embedding.Usage.PromptTokens || tr.Model != "sim-embed" {
		t.Fatalf("cached call's trace: %+v", tr)
	}
	if tr := traces[0]; tr.Cached || tr.CostUSD <= 0 {
		t.Fatalf("first call's trace: %+v", tr)
	}
}
