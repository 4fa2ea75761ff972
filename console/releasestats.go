package console

import (
	"context"
	"net/http"

	"gantry/api"
)

// ReleaseStats is every release's traffic as the whole cluster committed
// it, from the agent's replicated state; ErrNotFound from agents that do
// not keep cluster-wide counters.
func (c *Client) ReleaseStats(ctx context.Context) (api.ClusterStats, error) {
	var out api.ClusterStats
	err := c.do(ctx, http.MethodGet, api.PathReleaseStats, nil, &out)
	return out, err
}
