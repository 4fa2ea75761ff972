package api

import "time"

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

// Costs answers PathCosts. The rows count the answering agent's traffic;
// evaluation traffic is left out.
type Costs struct {
	Node          string    `json:"node"`
	Time          time.Time `json:"time"`
	By            string    `json:"by"`
	WindowSeconds int       `json:"window_s"`
	Rows          []CostRow `json:"rows"`
}
