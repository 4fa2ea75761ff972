package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/semcache"
	"gantry/pipeline/trace"
)

// semanticEntry is where a call's answer goes in the semantic cache.
type semanticEntry struct {
	ix        *semcache.Index
	partition string
	vec       []float32
	ttl       time.Duration
}

// semanticPolicy is the release's semantic cache policy when it applies to
// the call, and the partition the call reads and writes: one feature's
// release (the index is the release's), one team or user of it when the
// policy says so, and one set of rendered instructions. A call
// with tools or a stream is left out unless the policy lets it in, and so
// is a call whose caller bypasses caches.
func (g *Gateway) semanticPolicy(c *Call) (*config.SemanticCache, string, bool) {
	if g.semantic == nil || c.NoCache || c.Embed != nil || c.Release == nil || c.Release.SemanticCache == nil {
		return nil, "", false
	}
	p := c.Release.SemanticCache
	if (len(c.Req.Tools) > 0 && !p.Tools) || (c.Emit != nil && !p.Streams) || c.Req.Choices() > 1 {
		return nil, "", false
	}
	partition := "release"
	switch p.ScopeOrDefault() {
	case config.ScopeTeam:
		// A key without a team is a tenant of its own.
		partition = "team:" + c.Key.Team
		if c.Key.Team == "" {
			partition = "key:" + c.Key.Name
		}
	case config.ScopeUser:
		if c.User == "" {
			return nil, "", false // no user to keep the answer to
		}
		partition = "user:" + c.User
	}
	return p, partition + "|" + instructionsDigest(c.Messages), true
}

// instructionsDigest identifies the instructions a call was answered under:
// the same for every call of a release unless its system template renders
// variables (a customer's name, say), and then an answer written for one
// set of them is not served to another.
func instructionsDigest(msgs []chat.Message) string {
	h := sha256.New()
	for _, m := range msgs {
		if m.Role == "system" || m.Role == "developer" {
			h.Write([]byte(m.Role))
			h.Write([]byte{0})
			h.Write([]byte(m.Content.Text))
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// semanticWorstCase is what embedding the request may cost.
func (c *Call) semanticWorstCase() float64 {
	if c.Release == nil || c.Release.SemanticCache == nil {
		return 0
	}
	r, ok := c.Snap.Route(c.Release.SemanticCache.EmbeddingRoute)
	if !ok {
		return 0
	}
	return worstOn(r.all(), c.InputTokens, 0)
}

// requestText is what a request is embedded as: its messages other than
// the instructions, which every call of the release shares, normalised.
func requestText(msgs []chat.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		if m.Role == "system" || m.Role == "developer" {
			continue
		}
		b.WriteString(m.Content.Text)
		b.WriteByte('\n')
		if b.Len() > semcache.MaxNormalizedBytes*2 {
			break
		}
	}
	return semcache.Normalize(b.String())
}

// semanticLookup answers the call from the semantic cache when an earlier
// answer of its partition is close enough. On a miss it leaves where the
// answer goes for storeSemantic. A failing embedding route only costs the
// cache: the call goes on to the upstream.
func (g *Gateway) semanticLookup(ctx context.Context, c *Call) (bool, error) {
	p, partition, ok := g.semanticPolicy(c)
	if !ok {
		return false, nil
	}
	route, ok := c.Snap.Route(p.EmbeddingRoute)
	if !ok {
		return false, nil // validation refuses this
	}
	vec, model, cost, err := g.embedText(ctx, route, requestText(c.Messages))
	c.ExtraCostUSD += cost
	if err != nil {
		g.log.Warn("semantic cache: embedding failed; calling the upstream", "request_id", c.ID, "route", p.EmbeddingRoute, "err", err)
		return false, nil
	}
	ix := g.semantic.Index(c.Release.Hash+"|"+model, p.Entries(), len(vec))
	hit, found := ix.Lookup(partition, vec, p.Threshold)
	if g.obs != nil {
		g.obs.SemanticLookup(c.Feature.Name, found)
	}
	if found {
		var resp chat.Response
		if json.Unmarshal(hit.Value, &resp) == nil && len(resp.Choices) > 0 {
			if t, ok := c.Snap.models[resp.Model]; ok {
				c.Cached = true
				c.Semantic = &trace.SemanticHit{Similarity: hit.Similarity, Source: hit.Trace}
				c.finish(t, &resp)
				return true, g.emitWhole(c)
			}
		}
	}
	c.semantic = &semanticEntry{ix: ix, partition: partition, vec: vec, ttl: p.TTL.D()}
	return false, nil
}

// storeSemantic keeps an answer that passed validation for later similar
// requests of its partition.
func (g *Gateway) storeSemantic(c *Call) {
	e := c.semantic
	if e == nil || c.Cached || c.Resp == nil || len(c.Validation) > 0 {
		return
	}
	if b, err := json.Marshal(c.Resp); err == nil {
		e.ix.Put(e.partition, e.vec, b, c.ID, e.ttl)
	}
}

// emitWhole sends a cached answer to a streaming client as one chunk.
func (g *Gateway) emitWhole(c *Call) error {
	if c.Emit == nil {
		return nil
	}
	ch := c.Resp.Choices[0]
	text := ch.Message.Content.Text
	finish := ch.FinishReason
	if finish == "" {
		finish = "stop"
	}
	chunk := &chat.Chunk{ID: c.Resp.ID, Object: chat.ObjectChunk, Created: c.Resp.Created, Model: c.Resp.Model,
		Choices: []chat.ChunkChoice{{Delta: chat.Delta{Role: "assistant", Content: &text, ToolCalls: ch.Message.ToolCalls}, FinishReason: &finish}}}
	c.Streamed = true
	if err := c.Emit(chunk); err != nil {
		return &chat.Error{Status: StatusClientClosed, Type: chat.TypeInvalidRequest, Code: "client_closed_request", Message: "the client closed the request", Cause: err}
	}
	return nil
}

// embedText embeds one text through a route, with its retries and
// fallbacks, and returns the vector, the model that made it and what it
// cost.
func (g *Gateway) embedText(ctx context.Context, route *Route, text string) ([]float32, string, float64, error) {
	var vec []float32
	var model string
	var cost float64
	err := g.router.Do(ctx, route, func(actx context.Context, a *Attempt, _ func()) error {
		e, ok := a.Target.Provider.(provider.Embedder)
		if !ok {
			return fmt.Errorf("model %s is served by a provider without embeddings", a.Target.Model.Name)
		}
		resp, err := e.Embed(actx, &chat.EmbeddingRequest{Model: a.Target.Model.UpstreamName(), Input: []string{text}})
		if err != nil {
			return err
		}
		if len(resp.Data) != 1 || len(resp.Data[0].Vector) == 0 {
			return fmt.Errorf("model %s answered with no vector", a.Target.Model.Name)
		}
		n := g.CountText(text)
		if resp.Usage != nil {
			n = resp.Usage.PromptTokens
		}
		vec, model, cost = resp.Data[0].Vector, a.Target.Model.Name, a.Target.Price.Cost(n, 0, 0, 0)
		return nil
	}, func(Outcome) {})
	return vec, model, cost, err
}
