package agent

import (
	"context"

	"gantry/config"
	"gantry/pipeline"
	"gantry/pipeline/retrieval"
)

// retrieve is the gateway's context stage's access to the document store:
// the release's strategy picks the collection and the index cut by its
// chunking rules.
func (s *Server) retrieve(ctx context.Context, cfg *config.Config, strat config.Retrieval, query string) (pipeline.Retrieved, error) {
	r, strat, err := retrieval.For(ctx, s.docs, cfg, strat)
	if err != nil {
		return pipeline.Retrieved{}, err
	}
	c, err := retrieval.Fetch(ctx, r, strat, query)
	if err != nil {
		return pipeline.Retrieved{}, err
	}
	format := func(keep []int) string {
		kept := make([]retrieval.Result, 0, len(keep))
		for _, i := range keep {
			kept = append(kept, c.Results[i])
		}
		return retrieval.Format(kept)
	}
	return pipeline.Retrieved{Block: c.Block, Sources: c.Sources, Format: format}, nil
}
