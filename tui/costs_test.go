package tui

import (
	"strings"
	"testing"

	"gantry/api"
)

func TestCostsShowWhereASharedBudgetSits(t *testing.T) {
	a := loaded(t, false, 120, 40)
	if v := a.costs.View(); strings.Contains(v, "left to grant") {
		t.Fatalf("budgets each agent enforces alone show a cluster line:\n%s", v)
	}
	b := fixtureBudgets()
	for i := range b.Budgets {
		b.Budgets[i].Cluster = &api.BudgetLedger{SpentUSD: b.Budgets[i].SpentUSD, AvailableUSD: 7.25, Grants: []api.BudgetGrant{
			{Agent: "agent-1", GrantedUSD: 3, UsedUSD: 1}, {Agent: "agent-2", GrantedUSD: 1, UsedUSD: 1.5}}}
	}
	send(t, a, BudgetsMsg(b))
	v := a.costs.View()
	// The selected budget is the one closest to exhaustion.
	want := "support-day across the cluster (burn/h of this agent's calls): $7.25 left to grant; held agent-1 $2.00 agent-2 $0"
	if !strings.Contains(v, want) {
		t.Fatalf("costs view lacks %q:\n%s", want, v)
	}
	// Once the agent has measured the cluster's burn, the line says the
	// table shows that.
	for i := range b.Budgets {
		b.Budgets[i].Cluster.BurnPerHour = 1.5
	}
	send(t, a, BudgetsMsg(b))
	if v := a.costs.View(); !strings.Contains(v, "support-day across the cluster (burn/h of the cluster's spend)") {
		t.Fatalf("costs view does not say the burn is the cluster's:\n%s", v)
	}
}
