package console

import (
	"context"
	"net/http"

	"gantry/api"
	"gantry/tui"
)

// Evals is the cluster's recorded evaluation runs and comparison
// verdicts, newest first.
func (c *Client) Evals(ctx context.Context) (tui.EvalsMsg, error) {
	var runs api.Runs
	if err := c.do(ctx, http.MethodGet, api.PathRuns, nil, &runs); err != nil {
		return tui.EvalsMsg{}, err
	}
	var verdicts api.Verdicts
	if err := c.do(ctx, http.MethodGet, api.PathVerdicts, nil, &verdicts); err != nil {
		return tui.EvalsMsg{}, err
	}
	return tui.EvalsMsg{Runs: runs.Runs, Verdicts: verdicts.Verdicts}, nil
}
