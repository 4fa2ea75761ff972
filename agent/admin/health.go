package admin

import (
	"net/http"
	"slices"
	"sort"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/pipeline"
	"gantry/pipeline/trace"
)

// health serves GET /admin/v1/health: this agent's calls over the last
// ?window= seconds by model and provider, with each model's breaker.
func (a *API) health(w http.ResponseWriter, r *http.Request) {
	window, ok := windowParam(w, r, 10*time.Second, MaxOverviewWindow)
	if !ok {
		return
	}
	now := time.Now()
	recent := a.Traces.Recent(now.Add(-window), a.TraceMaxCount)
	httpio.JSON(w, http.StatusOK, computeHealth(a.NodeID, now, window, recent, a.models(), a.breaker))
}

// models are the configured models and their providers.
func (a *API) models() map[string]string {
	out := map[string]string{}
	if snap := a.Gateway.Snapshot(); snap != nil && snap.Config != nil {
		for _, m := range snap.Config.Models {
			out[m.Name] = m.Provider
		}
	}
	return out
}

// breaker is a model's circuit state as the API names it.
func (a *API) breaker(model string) string {
	return breakerName(a.Gateway.Breaker(model))
}

func breakerName(s pipeline.BreakerState) string {
	switch s {
	case pipeline.Open:
		return api.BreakerOpen
	case pipeline.HalfOpen:
		return api.BreakerHalfOpen
	}
	return api.BreakerClosed
}

// healthAcc accumulates api.HealthStats with the latencies it needs for
// percentiles.
type healthAcc struct {
	api.HealthStats
	lat, ttft []float64
}

func (h *healthAcc) kind(k string) {
	if h.ErrorsByKind == nil {
		h.ErrorsByKind = map[string]int64{}
	}
	h.ErrorsByKind[k]++
}

// done fills in the percentiles and the error rate of errors per of.
func (h *healthAcc) done(of int64) api.HealthStats {
	slices.Sort(h.lat)
	slices.Sort(h.ttft)
	h.P50, h.P95 = percentile(h.lat, 0.50), percentile(h.lat, 0.95)
	h.TTFTP50, h.TTFTP95 = percentile(h.ttft, 0.50), percentile(h.ttft, 0.95)
	h.ErrorRate = rate(h.Errors, of)
	return h.HealthStats
}

func rate(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// computeHealth turns the window's traces into health by model and
// provider. A model's figures come from the attempts made to it, retries
// included; an attempt the open circuit skipped is counted by kind
// (circuit_open) but is no upstream call. Totals count calls, including
// calls refused before any model was chosen. models maps the configured
// models to their providers; models seen only in traces are added to it.
func computeHealth(node string, now time.Time, window time.Duration, traces []*trace.Trace, models map[string]string, breaker func(string) string) api.Health {
	out := api.Health{Node: node, Time: now.UTC(), WindowSeconds: int(window / time.Second), Models: []api.ModelHealth{}, Providers: []api.ProviderHealth{}}
	var total healthAcc
	byModel, byProvider := map[string]*healthAcc{}, map[string]*healthAcc{}
	get := func(m map[string]*healthAcc, k string) *healthAcc {
		h := m[k]
		if h == nil {
			h = &healthAcc{}
			m[k] = h
		}
		return h
	}
	for _, t := range traces {
		total.Calls++
		total.Attempts += int64(len(t.Attempts))
		total.lat = append(total.lat, float64(t.Duration))
		if t.TTFT > 0 {
			total.ttft = append(total.ttft, float64(t.TTFT))
		}
		if k := t.ErrorKind(); k != "" {
			total.Errors++
			total.kind(k)
		}
		if t.Fallbacks > 0 {
			total.Fallbacks++
		}
		seen := map[string]bool{}
		for i, at := range t.Attempts {
			if at.Provider == "" {
				at.Provider = models[at.Model]
			}
			m, p := get(byModel, at.Model), get(byProvider, at.Provider)
			if models[at.Model] == "" {
				models[at.Model] = at.Provider
			}
			for _, h := range []*healthAcc{m, p} {
				if !seen[at.Model] && h == m || !seen["provider\x00"+at.Provider] && h == p {
					h.Calls++
				}
				if i > 0 && t.Attempts[i-1].Model == at.Model {
					h.Retries++
					if h == m {
						total.Retries++
					}
				}
				// Moving on to another model after this one failed is a
				// fallback away from it.
				if at.Status != "ok" && i+1 < len(t.Attempts) && t.Attempts[i+1].Model != at.Model {
					h.Fallbacks++
				}
				if at.Status == "circuit_open" {
					h.kind(at.Status)
					continue
				}
				h.Attempts++
				h.lat = append(h.lat, float64(at.Duration))
				if at.Status != "ok" {
					h.Errors++
					h.kind(at.Status)
				}
			}
			seen[at.Model], seen["provider\x00"+at.Provider] = true, true
		}
		if t.TTFT > 0 && t.Model != "" {
			get(byModel, t.Model).ttft = append(get(byModel, t.Model).ttft, float64(t.TTFT))
			get(byProvider, t.Provider).ttft = append(get(byProvider, t.Provider).ttft, float64(t.TTFT))
		}
	}
	out.Totals = total.done(total.Calls)
	// Every configured model is listed, with traffic or not, so an open
	// breaker shows even when nothing reaches the model.
	for name, provider := range models {
		h := get(byModel, name)
		get(byProvider, provider)
		out.Models = append(out.Models, api.ModelHealth{Model: name, Provider: provider, Breaker: breaker(name), HealthStats: h.done(h.Attempts)})
	}
	sort.Slice(out.Models, func(i, j int) bool { return out.Models[i].Model < out.Models[j].Model })
	for name, h := range byProvider {
		if name == "" {
			continue
		}
		out.Providers = append(out.Providers, api.ProviderHealth{Provider: name, HealthStats: h.done(h.Attempts)})
	}
	sort.Slice(out.Providers, func(i, j int) bool { return out.Providers[i].Provider < out.Providers[j].Provider })
	return out
}
