package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"gantry/pipeline/chat"
)

// Embedder is the optional capability of a provider that serves
// embeddings. The request's Model is already the upstream model id;
// EncodingFormat is the gateway's business: an Embedder always returns
// float vectors, in input order.
type Embedder interface {
	Embed(ctx context.Context, req *chat.EmbeddingRequest) (*chat.EmbeddingResponse, error)
}

var (
	_ Embedder = (*OpenAI)(nil)
	_ Embedder = (*Azure)(nil)
	_ Embedder = (*Gemini)(nil)
	_ Embedder = (*Bedrock)(nil)
)

// openAIEmbedBody is the request every OpenAI-compatible server takes.
func openAIEmbedBody(req *chat.EmbeddingRequest, dims bool) ([]byte, error) {
	body := struct {
		Model          string   `json:"model"`
		Input          []string `json:"input"`
		EncodingFormat string   `json:"encoding_format"`
		Dimensions     int      `json:"dimensions,omitempty"`
	}{req.Model, req.Input, "float", 0}
	if dims {
		body.Dimensions = req.Dimensions
	}
	b, err := json.Marshal(&body)
	if err != nil {
		return nil, fmt.Errorf("encode embeddings request for model %s: %w", req.Model, err)
	}
	return b, nil
}

func decodeOpenAIEmbeddings(data []byte, n int) (*chat.EmbeddingResponse, error) {
	var r chat.EmbeddingResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: "the answer is not an embeddings list", Err: err}
	}
	return ordered(&r, n)
}

// ordered checks that an answer has one vector per input and puts them in
// input order.
func ordered(r *chat.EmbeddingResponse, n int) (*chat.EmbeddingResponse, error) {
	if len(r.Data) != n {
		return nil, &Error{Kind: KindProtocol, Message: fmt.Sprintf("the answer has %d embeddings for %d inputs", len(r.Data), n)}
	}
	out := make([]chat.Embedding, n)
	seen := make([]bool, n)
	for _, e := range r.Data {
		if e.Index < 0 || e.Index >= n || seen[e.Index] {
			return nil, &Error{Kind: KindProtocol, Message: fmt.Sprintf("the answer has an embedding with index %d", e.Index)}
		}
		seen[e.Index] = true
		e.Base64 = false
		out[e.Index] = e
	}
	r.Object, r.Data = chat.ObjectList, out
	return r, nil
}

// Embed calls the server's /embeddings.
func (p *OpenAI) Embed(ctx context.Context, req *chat.EmbeddingRequest) (*chat.EmbeddingResponse, error) {
	dims := true
	if p.preset != nil && p.preset.NoDimensions {
		if req.Dimensions > 0 {
			return nil, chat.BadRequest("dimensions", "%s cannot shorten embeddings; leave dimensions out or route to another provider", p.preset.Name)
		}
		dims = false
	}
	body, err := openAIEmbedBody(req, dims)
	if err != nil {
		return nil, err
	}
	url := strings.TrimSuffix(p.url, "/chat/completions") + "/embeddings"
	resp, err := post(ctx, p.client, url, p.completeHeader, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := readAll(ctx, resp.Body, resp.ContentLength)
	if err != nil {
		return nil, err
	}
	return decodeOpenAIEmbeddings(data, len(req.Input))
}

// Embed calls the deployment's embeddings.
func (a *Azure) Embed(ctx context.Context, req *chat.EmbeddingRequest) (*chat.EmbeddingResponse, error) {
	body, err := openAIEmbedBody(req, true)
	if err != nil {
		return nil, err
	}
	data, err := a.complete(ctx, a.url(req.Model, "embeddings"), body)
	if err != nil {
		return nil, err
	}
	return decodeOpenAIEmbeddings(data, len(req.Input))
}

// Embed calls batchEmbedContents. Gemini reports no token counts for
// embeddings; the gateway counts them.
func (g *Gemini) Embed(ctx context.Context, req *chat.EmbeddingRequest) (*chat.EmbeddingResponse, error) {
	type part struct {
		Text string `json:"text"`
	}
	type one struct {
		Model   string `json:"model"`
		Content struct {
			Parts []part `json:"parts"`
		} `json:"content"`
		OutputDimensionality int `json:"outputDimensionality,omitempty"`
	}
	model := "models/" + strings.TrimPrefix(req.Model, "models/")
	body := struct {
		Requests []one `json:"requests"`
	}{}
	for _, text := range req.Input {
		o := one{Model: model, OutputDimensionality: req.Dimensions}
		o.Content.Parts = []part{{Text: text}}
		body.Requests = append(body.Requests, o)
	}
	b, err := json.Marshal(&body)
	if err != nil {
		return nil, fmt.Errorf("encode Gemini embeddings request: %w", err)
	}
	data, err := g.complete(ctx, g.url(req.Model, "batchEmbedContents"), b)
	if err != nil {
		return nil, err
	}
	var r struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &Error{Kind: KindProtocol, Message: "the answer is not a batch of embeddings", Err: err}
	}
	out := &chat.EmbeddingResponse{Object: chat.ObjectList, Model: req.Model}
	for i, e := range r.Embeddings {
		out.Data = append(out.Data, chat.Embedding{Index: i, Vector: e.Values})
	}
	return ordered(out, len(req.Input))
}

// Embed calls InvokeModel with the body of the model's family: Amazon
// Titan takes one text a call, Cohere a list.
func (b *Bedrock) Embed(ctx context.Context, req *chat.EmbeddingRequest) (*chat.EmbeddingResponse, error) {
	id := req.Model
	for _, geo := range []string{"us.", "eu.", "apac.", "global."} {
		id = strings.TrimPrefix(id, geo)
	}
	out := &chat.EmbeddingResponse{Object: chat.ObjectList, Model: req.Model, Usage: &chat.EmbeddingUsage{}}
	switch {
	case strings.HasPrefix(id, "amazon.titan-embed"):
		for i, text := range req.Input {
			body, _ := json.Marshal(map[string]any{"inputText": text, "dimensions": req.Dimensions, "normalize": true})
			if req.Dimensions == 0 {
				body, _ = json.Marshal(map[string]any{"inputText": text, "normalize": true})
			}
			data, err := b.complete(ctx, b.url(req.Model, "invoke"), body)
			if err != nil {
				return nil, err
			}
			var r struct {
				Embedding  []float32 `json:"embedding"`
				TokenCount int       `json:"inputTextTokenCount"`
			}
			if err := json.Unmarshal(data, &r); err != nil || len(r.Embedding) == 0 {
				return nil, &Error{Kind: KindProtocol, Message: "the answer is not a Titan embedding", Err: err}
			}
			out.Data = append(out.Data, chat.Embedding{Index: i, Vector: r.Embedding})
			out.Usage.PromptTokens += r.TokenCount
		}
	case strings.HasPrefix(id, "cohere.embed"):
		if req.Dimensions > 0 {
			return nil, chat.BadRequest("dimensions", "Cohere embeddings on Bedrock have a fixed size; leave dimensions out")
		}
		body, _ := json.Marshal(map[string]any{"texts": req.Input, "input_type": "search_document"})
		data, err := b.complete(ctx, b.url(req.Model, "invoke"), body)
		if err != nil {
			return nil, err
		}
		var r struct {
			Embeddings [][]float32 `json:"embeddings"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, &Error{Kind: KindProtocol, Message: "the answer is not a Cohere embedding list", Err: err}
		}
		for i, v := range r.Embeddings {
			out.Data = append(out.Data, chat.Embedding{Index: i, Vector: v})
		}
		out.Usage = nil // Cohere reports no counts here; the gateway counts
	default:
		return nil, chat.BadRequest("model", "Gantry knows the embedding request of Amazon Titan and Cohere models on Bedrock, not of %q", req.Model)
	}
	if out.Usage != nil {
		out.Usage.TotalTokens = out.Usage.PromptTokens
	}
	return ordered(out, len(req.Input))
}
