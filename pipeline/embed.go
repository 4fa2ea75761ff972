package pipeline

import (
	"context"
	"net/http"
	"strings"

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
