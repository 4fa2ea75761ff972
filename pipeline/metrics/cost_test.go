package metrics

import (
	"testing"

	"gantry/pipeline/trace"
)

func TestCostPerGoodAnswerSeries(t *testing.T) {
	m := New()
	// An escalated cascade call that validated and saved context tokens,
	// and a cheap call whose stream failed validation.
	m.ObserveTrace(&trace.Trace{Feature: "triage", Release: "triage@v2", Model: "premium", Status: "ok", HTTPStatus: 200, CostUSD: 0.25,
		Tiers:       []trace.Tier{{Route: "cheap", CostUSD: 0.05, Escalated: "invalid"}, {Route: "premium", CostUSD: 0.2}},
		Compression: &trace.Compression{Strategy: "drop_oldest", TokensSaved: 300}})
	m.ObserveTrace(&trace.Trace{Feature: "triage", Release: "triage@v2", Model: "cheap", Status: "ok", HTTPStatus: 200, CostUSD: 0.5,
		Stream: true, Validation: []string{"schema /priority: missing"}})
	m.SemanticLookup("triage", true)
	m.SemanticLookup("triage", false)
	wantLines(t, scrape(t, m),
		`gantry_release_cost_usd_total{feature="triage",release="triage@v2"} 0.75`,
		`gantry_validated_answers_total{feature="triage",release="triage@v2"} 1`,
		`gantry_cascade_calls_total{feature="triage",release="triage@v2"} 1`,
		`gantry_cascade_escalations_total{feature="triage",reason="invalid",release="triage@v2"} 1`,
		`gantry_cost_without_escalation_usd_total{feature="triage",release="triage@v2"} 0.55`,
		`gantry_context_tokens_saved_total{feature="triage",strategy="drop_oldest"} 300`,
		`gantry_semantic_cache_requests_total{feature="triage",result="hit"} 1`,
		`gantry_semantic_cache_requests_total{feature="triage",result="miss"} 1`,
	)
}
