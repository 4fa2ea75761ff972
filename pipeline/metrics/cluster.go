package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ClusterStatus is what WatchCluster reads of this agent's Raft node at
// each scrape. The agent fills it from its node's status.
type ClusterStatus struct {
	Leader      bool // this agent leads
	LeaderKnown bool // this agent knows a leader, itself included
	Term        uint64
	CommitIndex uint64
	// LeaderCommitIndex is the leader's commit index when this agent
	// knows it, else 0; the lag then counts from this agent's own.
	LeaderCommitIndex uint64
	AppliedIndex      uint64
	// LastContact is how long ago a follower last heard from the leader;
	// 0 on the leader.
	LastContact time.Duration
	// Halted is set when the replicated state machine stopped on an entry
	// it could not apply.
	Halted bool
}

// BudgetStatus is one budget's standing for WatchBudgets: its limit over
// the current window and what the cluster committed as spent in it.
type BudgetStatus struct {
	Name     string
	LimitUSD float64
	SpentUSD float64
}

var (
	raftLeader      = desc("raft_leader", "1 while this agent is the Raft leader.")
	raftLeaderKnown = desc("raft_leader_known", "1 while this agent knows a Raft leader; 0 means no quorum as far as it can tell.")
	raftTerm        = desc("raft_term", "Current Raft term; a term that climbs means repeated elections.")
	raftCommit      = desc("raft_commit_index", "Index of the last log entry this agent knows committed.")
	raftApplied     = desc("raft_applied_index", "Index of the last log entry applied to this agent's state.")
	raftCommitLag   = desc("raft_commit_lag", "Log entries committed in the cluster and not yet applied here: the leader's commit index (this agent's own when unknown) minus the applied index.")
	raftContact     = desc("raft_last_contact_seconds", "Seconds since this follower last heard from the leader; 0 on the leader.")
	stateHalted     = desc("state_halted", "1 when the replicated state machine stopped on an entry it could not apply; GET /admin/v1/status says which.")

	budgetLimit     = prometheus.NewDesc("gantry_budget_limit_usd", "Configured limit of each budget over its window, in US dollars.", []string{"budget"}, nil)
	budgetSpent     = prometheus.NewDesc("gantry_budget_spent_usd", "Spend the cluster committed against each budget in its current window, in US dollars.", []string{"budget"}, nil)
	budgetRemaining = prometheus.NewDesc("gantry_budget_remaining_usd", "What each budget has left in its current window (limit minus spent, never below 0), in US dollars.", []string{"budget"}, nil)
)

// ClusterSeries and BudgetSeries name the series WatchCluster and
// WatchBudgets add, for documentation and for tests.
var (
	ClusterSeries = []string{"gantry_raft_leader", "gantry_raft_leader_known", "gantry_raft_term", "gantry_raft_commit_index",
		"gantry_raft_applied_index", "gantry_raft_commit_lag", "gantry_raft_last_contact_seconds", "gantry_state_halted"}
	BudgetSeries = []string{"gantry_budget_limit_usd", "gantry_budget_spent_usd", "gantry_budget_remaining_usd"}
)

// WatchCluster exposes the Raft figures read is asked for at each scrape.
// read must be cheap and must not block (Raft's own accessors are).
// Call it once per agent; a second call returns the registry's
// AlreadyRegisteredError.
func (m *Metrics) WatchCluster(read func() ClusterStatus) error {
	return m.reg.Register(clusterCollector(read))
}

// WatchBudgets exposes each budget's limit, spend and what is left, read
// at each scrape. Budgets are configured names; past MaxSeries of them the
// rest are left out rather than merged, since sums of limits mean nothing.
func (m *Metrics) WatchBudgets(read func() []BudgetStatus) error {
	return m.reg.Register(budgetCollector(read))
}

type clusterCollector func() ClusterStatus

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftLeader, raftLeaderKnown, raftTerm, raftCommit, raftApplied, raftCommitLag, raftContact, stateHalted} {
		ch <- d
	}
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(raftLeader, b2f(st.Leader))
	g(raftLeaderKnown, b2f(st.LeaderKnown))
	g(raftTerm, float64(st.Term))
	g(raftCommit, float64(st.CommitIndex))
	g(raftApplied, float64(st.AppliedIndex))
	committed := st.CommitIndex
	if st.LeaderCommitIndex > 0 {
		committed = st.LeaderCommitIndex
	}
	lag := 0.0
	if committed > st.AppliedIndex {
		lag = float64(committed - st.AppliedIndex)
	}
	g(raftCommitLag, lag)
	g(raftContact, st.LastContact.Seconds())
	g(stateHalted, b2f(st.Halted))
}

type budgetCollector func() []BudgetStatus

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetLimit
	ch <- budgetSpent
	ch <- budgetRemaining
}

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	bs := c()
	if len(bs) > MaxSeries {
		bs = bs[:MaxSeries]
	}
	seen := make(map[string]bool, len(bs))
	for _, b := range bs {
		name := label(b.Name)
		if seen[name] { // two names cut to one label: keep the first
			continue
		}
		seen[name] = true
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		g(budgetLimit, b.LimitUSD)
		g(budgetSpent, b.SpentUSD)
		g(budgetRemaining, max(b.LimitUSD-b.SpentUSD, 0))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
