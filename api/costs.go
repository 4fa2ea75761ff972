package api

import (
	"gantry/pipeline/costs"

	"sort"
	"time"
)

// PathCosts is where cost per good answer is read: GET, query by
// (feature, release, model or team; default feature) and window (a
// duration up to 24h; default 24h).
const PathCosts = Prefix + "/costs"

// CostRow is one group of a cost table: what its calls cost and what a good
// answer cost. A cost per something is null when there was none of it.
type CostRow struct {
	Group   string  `json:"group"`
	Calls   int64   `json:"calls"`
	CostUSD float64 `json:"cost_usd"`
	// CostPerCallUSD divides the cost among every call; the others among
	// validated answers, answers without negative feedback, and passing
	// cases of the latest evaluation run in the window (by release, and
	// by feature summed over its releases).
	CostPerCallUSD        *float64 `json:"cost_per_call_usd"`
	CostPerValidatedUSD   *float64 `json:"cost_per_validated_usd"`
	CostPerGoodUSD        *float64 `json:"cost_per_good_usd"`
	CostPerPassingCaseUSD *float64 `json:"cost_per_passing_case_usd,omitempty"`
	Answered              int64    `json:"answered"`
	Validated             int64    `json:"validated"`
	NegativeFeedback      int64    `json:"negative_feedback"`
	// Cascades: calls that went through a cascade route, how many of
	// them escalated, and what all calls would have cost had no cascade
	// escalated.
	CascadeCalls             int64    `json:"cascade_calls"`
	Escalated                int64    `json:"escalated"`
	EscalationRate           *float64 `json:"escalation_rate"`
	CostWithoutEscalationUSD float64  `json:"cost_without_escalation_usd"`
	TokensSaved              int64    `json:"tokens_saved"`
	SemanticHits             int64    `json:"semantic_hits"`
}

// Costs answers PathCosts. The rows count the answering agent's traffic
// (MergeCosts adds up several agents'); evaluation traffic is left out.
type Costs struct {
	Node          string    `json:"node"`
	Time          time.Time `json:"time"`
	By            string    `json:"by"`
	WindowSeconds int       `json:"window_s"`
	Rows          []CostRow `json:"rows"`
}

// MergeCosts adds up the rows of several agents group by group and works
// the costs per thing out again, largest cost first. The cost per passing
// case comes from the cluster's evaluation runs, the same on every agent.
func MergeCosts(tables ...[]CostRow) []CostRow {
	byGroup := map[string]*CostRow{}
	var order []string
	for _, rows := range tables {
		for _, r := range rows {
			m := byGroup[r.Group]
			if m == nil {
				m = &CostRow{Group: r.Group}
				byGroup[r.Group] = m
				order = append(order, r.Group)
			}
			m.Calls += r.Calls
			m.CostUSD += r.CostUSD
			m.Answered += r.Answered
			m.Validated += r.Validated
			m.NegativeFeedback += r.NegativeFeedback
			m.CascadeCalls += r.CascadeCalls
			m.Escalated += r.Escalated
			m.CostWithoutEscalationUSD += r.CostWithoutEscalationUSD
			m.TokensSaved += r.TokensSaved
			m.SemanticHits += r.SemanticHits
			if m.CostPerPassingCaseUSD == nil {
				m.CostPerPassingCaseUSD = r.CostPerPassingCaseUSD
			}
		}
	}
	out := make([]CostRow, 0, len(order))
	for _, g := range order {
		m := byGroup[g]
		m.SetRates()
		out = append(out, *m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CostUSD > out[j].CostUSD })
	return out
}

// SetRates works the costs per call, per validated answer and per answer
// without negative feedback, and the escalation rate, out of the row's
// counts. The cost per passing case comes from evaluation runs, not from
// the counts, and is left alone.
func (r *CostRow) SetRates() {
	r.CostPerCallUSD = costs.Per(r.CostUSD, r.Calls)
	r.CostPerValidatedUSD = costs.Per(r.CostUSD, r.Validated)
	r.CostPerGoodUSD = costs.Per(r.CostUSD, r.Answered-r.NegativeFeedback)
	r.EscalationRate = nil
	if r.CascadeCalls > 0 {
		rate := float64(r.Escalated) / float64(r.CascadeCalls)
		r.EscalationRate = &rate
	}
}
