package agent

import (
	"context"

	"gantry/config"
	"gantry/pipeline/retrieval"
	"gantry/pipeline/trace"
)

// retrieve is the gateway's context stage's access to the document store:
// the release's strategy picks the collection and the index cut by its
// chunking rules.
func (s *Server) retrieve(ctx context.Context, cfg *config.Config, strat config.Retrieval, query string) (string, []trace.Source, error) {
	r, strat, err := retrieval.For(ctx, s.docs, cfg, strat)
	if err != nil {
		return "", nil, err
	}
	c, err := retrieval.Fetch(ctx, r, strat, query)
	if err != nil {
		return "", nil, err
	}
	return c.Block, c.Sources, nil
}
