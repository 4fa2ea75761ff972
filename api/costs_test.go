package api

import "testing"

func TestMergeCostsAddsAgentsUp(t *testing.T) {
	pass := 0.05
	a := []CostRow{{Group: "triage@v1", Calls: 10, CostUSD: 1, Answered: 10, Validated: 8, NegativeFeedback: 1, CascadeCalls: 10, Escalated: 2, CostWithoutEscalationUSD: 0.4, CostPerPassingCaseUSD: &pass}}
	b := []CostRow{{Group: "triage@v1", Calls: 30, CostUSD: 2, Answered: 30, Validated: 30, CascadeCalls: 30, Escalated: 6, CostWithoutEscalationUSD: 1, CostPerPassingCaseUSD: &pass},
		{Group: "triage@v2", Calls: 1, CostUSD: 5, Answered: 0}}
	got := MergeCosts(a, b)
	if len(got) != 2 || got[0].Group != "triage@v2" {
		t.Fatalf("rows %+v, want v2 (larger cost) first", got)
	}
	r := got[1]
	if r.Calls != 40 || r.CostUSD != 3 || r.Validated != 38 || r.Escalated != 8 || r.CostWithoutEscalationUSD != 1.4 {
		t.Fatalf("merged %+v", r)
	}
	if *r.CostPerCallUSD != 3.0/40 || *r.CostPerValidatedUSD != 3.0/38 || *r.CostPerGoodUSD != 3.0/39 || *r.EscalationRate != 0.2 || *r.CostPerPassingCaseUSD != pass {
		t.Fatalf("ratios %v %v %v %v %v", *r.CostPerCallUSD, *r.CostPerValidatedUSD, *r.CostPerGoodUSD, *r.EscalationRate, *r.CostPerPassingCaseUSD)
	}
	if got[0].CostPerValidatedUSD != nil || got[0].EscalationRate != nil {
		t.Fatalf("a group without validated answers or cascades: %+v", got[0])
	}
}
