package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestWatchCluster(t *testing.T) {
	tests := []struct {
		name string
		st   ClusterStatus
		want []string
	}{
		{"leader", ClusterStatus{Leader: true, LeaderKnown: true, Term: 3, CommitIndex: 120, AppliedIndex: 118}, []string{
			`gantry_raft_leader 1`, `gantry_raft_leader_known 1`, `gantry_raft_term 3`, `gantry_raft_commit_index 120`,
			`gantry_raft_applied_index 118`, `gantry_raft_commit_lag 2`, `gantry_raft_last_contact_seconds 0`, `gantry_state_halted 0`}},
		{"follower behind the leader", ClusterStatus{LeaderKnown: true, Term: 3, CommitIndex: 90, LeaderCommitIndex: 120, AppliedIndex: 90,
			LastContact: 1500 * time.Millisecond}, []string{
			`gantry_raft_leader 0`, `gantry_raft_commit_lag 30`, `gantry_raft_last_contact_seconds 1.5`}},
		{"halted without quorum", ClusterStatus{CommitIndex: 5, AppliedIndex: 7, Halted: true}, []string{
			`gantry_raft_leader_known 0`, `gantry_raft_commit_lag 0`, `gantry_state_halted 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			if err := m.WatchCluster(func() ClusterStatus { return tt.st }); err != nil {
				t.Fatalf("WatchCluster: %v", err)
			}
			body := scrape(t, m)
			wantLines(t, body, tt.want...)
			for _, name := range ClusterSeries {
				if !strings.Contains(body, "\n"+name+" ") {
					t.Fatalf("series %s missing", name)
				}
			}
		})
	}
}

func TestWatchBudgets(t *testing.T) {
	m := New()
	budgets := []BudgetStatus{{Name: "support-monthly", LimitUSD: 100, SpentUSD: 82.5}, {Name: "over", LimitUSD: 10, SpentUSD: 12}}
	for i := range MaxSeries {
		budgets = append(budgets, BudgetStatus{Name: fmt.Sprintf("b%d", i), LimitUSD: 1})
	}
	if err := m.WatchBudgets(func() []BudgetStatus { return budgets }); err != nil {
		t.Fatalf("WatchBudgets: %v", err)
	}
	body := scrape(t, m)
	wantLines(t, body,
		`gantry_budget_limit_usd{budget="support-monthly"} 100`,
		`gantry_budget_spent_usd{budget="support-monthly"} 82.5`,
		`gantry_budget_remaining_usd{budget="support-monthly"} 17.5`,
		`gantry_budget_remaining_usd{budget="over"} 0`,
	)
	if n := strings.Count(body, "\ngantry_budget_limit_usd{"); n != MaxSeries {
		t.Fatalf("%d budget series, want the bound %d", n, MaxSeries)
	}
}
