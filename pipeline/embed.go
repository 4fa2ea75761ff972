package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"strings"

	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
)

// NewEmbeddingCall prepares an embeddings request for Serve: the call runs
// the same stages as a chat call (key, model permission, rate limits and
// budget on the input's tokens, routing with retries and fallbacks, trace
// and cost), with each input as one message so the stages that count and
// scan messages see the texts. The vectors land in c.Embedding.
func NewEmbeddingCall(c *Call, req *chat.EmbeddingRequest) error {
	if strings.HasPrefix(req.Model, FeaturePrefix) {
		return chat.BadRequest("model", "features answer chat requests; name an embedding model or route")
	}
	msgs := make([]chat.Message, len(req.Input))
	for i, text := range req.Input {
		msgs[i] = chat.Message{Role: "user", Content: chat.Text(text)}
	}
	// One output token keeps the budget's worst case at the input's cost.
	c.Req = &chat.Request{Model: req.Model, Messages: msgs, MaxTokens: 1, User: req.User}
	c.Embed, c.Entry = req, EntryEmbeddings
	return nil
}

// embed asks the target's provider for vectors.
func embed(ctx context.Context, c *Call, t *Target) error {
	e, ok := t.Provider.(provider.Embedder)
	if !ok {
		return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "embeddings_unsupported", Param: "model",
			Message: "model " + t.Model.Name + " is served by a provider without embeddings"}
	}
	req := *c.Embed
	req.Model = t.Model.UpstreamName()
	resp, err := e.Embed(ctx, &req)
	if err != nil {
		return err
	}
	resp.Object, resp.Model = chat.ObjectList, t.Model.Name
	for i := range resp.Data {
		resp.Data[i].Base64 = c.Embed.EncodingFormat == "base64"
	}
	c.Embedding, c.Answered = resp, t
	if resp.Usage != nil {
		c.Usage, c.UsageKnown = chat.Usage{PromptTokens: resp.Usage.PromptTokens, TotalTokens: resp.Usage.PromptTokens}, true
	} else {
		// No count from the provider: the prompt stage's estimate, which
		// the trace marks as one.
		resp.Usage = &chat.EmbeddingUsage{PromptTokens: c.InputTokens, TotalTokens: c.InputTokens}
	}
	return nil
}

// embedCached answers an embeddings call from the embeddings cache, and
// otherwise calls the upstream and keeps its vectors for EmbedTTL. A hit
// still passed the key, limits and budget stages and is traced, at no
// cost, as cached.
func (g *Gateway) embedCached(ctx context.Context, c *Call) error {
	if g.embedCache == nil || g.embedTTL <= 0 || c.NoCache {
		return g.route(ctx, c)
	}
	var targets []string
	for _, t := range c.Route.all() {
		targets = append(targets, t.Model.Name+"\x00"+t.Model.Provider+"\x00"+t.Model.UpstreamName())
	}
	key := cache.EmbeddingKeyFor(targets, c.Embed.Dimensions, c.Embed.Input)
	b, hit := g.embedCache.Get(key)
	if g.obs != nil {
		g.obs.CacheLookup("", hit)
	}
	if hit {
		if resp, err := decodeEmbeddings(b); err == nil {
			if t, ok := c.Snap.models[resp.Model]; ok {
				for i := range resp.Data {
					resp.Data[i].Base64 = c.Embed.EncodingFormat == "base64"
				}
				c.Embedding, c.Answered, c.Cached = resp, t, true
				c.Usage, c.UsageKnown = chat.Usage{PromptTokens: resp.Usage.PromptTokens, TotalTokens: resp.Usage.PromptTokens}, true
				return nil
			}
		}
	}
	if err := g.route(ctx, c); err != nil {
		return err
	}
	g.embedCache.Put(key, encodeEmbeddings(c.Embedding), g.embedTTL)
	return nil
}

// encodeEmbeddings packs an answer for the embeddings cache: the model's
// name, the input tokens, then each vector's index, length and float32
// values, little-endian. Decoding it is a copy, where JSON would cost more
// than the simulator's call.
func encodeEmbeddings(r *chat.EmbeddingResponse) []byte {
	n := 0
	for _, e := range r.Data {
		n += 16 + 4*len(e.Vector)
	}
	b := make([]byte, 0, 16+len(r.Model)+n)
	b = binary.AppendUvarint(b, uint64(len(r.Model)))
	b = append(b, r.Model...)
	tokens := 0
	if r.Usage != nil {
		tokens = r.Usage.PromptTokens
	}
	b = binary.AppendUvarint(b, uint64(tokens))
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	for _, e := range r.Data {
		b = binary.AppendUvarint(b, uint64(e.Index))
		b = binary.AppendUvarint(b, uint64(len(e.Vector)))
		for _, v := range e.Vector {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b
}

var errEmbeddingEntry = errors.New("embeddings cache entry is malformed")

// decodeEmbeddings unpacks what encodeEmbeddings packed.
func decodeEmbeddings(b []byte) (*chat.EmbeddingResponse, error) {
	next := func() (int, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > 1<<31 {
			return 0, false
		}
		b = b[n:]
		return int(v), true
	}
	ln, ok := next()
	if !ok || ln > len(b) {
		return nil, errEmbeddingEntry
	}
	r := &chat.EmbeddingResponse{Object: chat.ObjectList, Model: string(b[:ln])}
	b = b[ln:]
	tokens, ok1 := next()
	count, ok2 := next()
	if !ok1 || !ok2 || count > chat.MaxEmbeddingInputs {
		return nil, errEmbeddingEntry
	}
	r.Usage = &chat.EmbeddingUsage{PromptTokens: tokens, TotalTokens: tokens}
	r.Data = make([]chat.Embedding, count)
	for i := range r.Data {
		index, ok1 := next()
		dims, ok2 := next()
		if !ok1 || !ok2 || 4*dims > len(b) {
			return nil, errEmbeddingEntry
		}
		vec := make([]float32, dims)
		for j := range vec {
			vec[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
		b = b[4*dims:]
		r.Data[i] = chat.Embedding{Index: index, Vector: vec}
	}
	if len(b) != 0 {
		return nil, errEmbeddingEntry
	}
	return r, nil
}
