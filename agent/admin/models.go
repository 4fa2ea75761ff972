package admin

import (
	"net/http"

	"gantry/agent/httpio"
	"gantry/api"
)

// getModels serves GET /admin/v1/models: each model this agent serves,
// its provider, and the price a call is charged at with where it came
// from, so a model that would be counted free can be seen before traffic.
func (a *API) getModels(w http.ResponseWriter, r *http.Request) {
	// One snapshot for the models and their prices.
	snap := a.Gateway.Snapshot()
	if snap == nil {
		a.served(w) // answers why not
		return
	}
	cfg := snap.Config
	kinds := make(map[string]string, len(cfg.Providers))
	for _, p := range cfg.Providers {
		kinds[p.Name] = p.Kind
		if preset := p.PresetName(); preset != "" {
			kinds[p.Name] = preset
		}
	}
	out := api.Models{Models: make([]api.Model, 0, len(cfg.Models))}
	for _, m := range cfg.Models {
		q, _ := snap.ModelPrice(m.Name)
		out.Models = append(out.Models, api.Model{Name: m.Name, Provider: m.Provider, Kind: kinds[m.Provider], Upstream: m.UpstreamName(),
			Price: q.Price, PriceSource: q.Source, PriceTable: q.Table, PriceEntry: q.Entry})
	}
	httpio.JSON(w, http.StatusOK, out)
}
