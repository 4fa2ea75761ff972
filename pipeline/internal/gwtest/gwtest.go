// Package gwtest builds a real gateway over the simulator for the inbound
// APIs' conformance tests: every stage runs (keys, policy, routing,
// validation, traces) with no network.
package gwtest

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"gantry/config"
	"gantry/pipeline"
	"gantry/pipeline/provider"
	"gantry/pipeline/trace"
)

// Key is the virtual key the gateway accepts.
const Key = "gk_conformance-key-0123456789"

// Gateway is a gateway and the traces it recorded.
type Gateway struct {
	*pipeline.Gateway
	mu     sync.Mutex
	traces []*trace.Trace
}

// Traces returns the traces recorded so far.
func (g *Gateway) Traces() []*trace.Trace {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*trace.Trace(nil), g.traces...)
}

// New serves models sim-small (chat) and sim-embed (embeddings) from a
// simulator that never fails. Each edit may add parts to the gateway.
func New(t *testing.T, edits ...func(*pipeline.Deps)) *Gateway {
	t.Helper()
	cfg := &config.Config{
		Providers: []config.Provider{{Name: "sim", Kind: config.KindSim, Sim: &config.SimSettings{Seed: 7, OutputTokens: 12}}},
		Models: []config.Model{
			{Name: "sim-small", Provider: "sim", Price: config.Price{Input: 0.15, Output: 0.60}},
			{Name: "sim-embed", Provider: "sim", Price: config.Price{Input: 0.02}},
		},
		Keys: []config.Key{{Name: "conformance", Team: "qa", Hash: config.HashKey(Key)}},
	}
	set := pipeline.NewProviderSet(func(p config.Provider) (provider.Provider, error) { return provider.New(p, nil, nil) })
	snap, err := pipeline.Compile(cfg, set)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	g := &Gateway{}
	d := pipeline.Deps{Record: func(tr *trace.Trace) {
		g.mu.Lock()
		g.traces = append(g.traces, tr)
		g.mu.Unlock()
	}}
	for _, edit := range edits {
		edit(&d)
	}
	g.Gateway = pipeline.NewGateway(d)
	g.Swap(snap)
	return g
}

// Secret is the key a request presents: x-api-key, or a Bearer token.
func Secret(r *http.Request) string {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return k
	}
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}
