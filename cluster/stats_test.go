package cluster

import (
	"strings"
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/stats"
)

func TestStatsFromTwoAgentsAreReadOnAThird(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	apply(t, nodes[0], env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	waitConverged(t, nodes)
	accs := []*stats.Accumulator{stats.NewAccumulator(nodes[0].ID()), stats.NewAccumulator(nodes[1].ID())}
	for i, a := range accs {
		for j := range 10 * (i + 1) {
			a.Record("support", 1, stats.Call{LatencyMs: float64(100 * (i + 1)), Error: j == 0, CostUSD: 0.01})
		}
		a.Record("support", 9, stats.Call{LatencyMs: 1}) // no such release: dropped
	}
	// Agent 0's first commit is acknowledged but the agent never hears so:
	// it sends the same batch again, which must count once.
	b, at, _ := accs[0].NextBatch(time.Now().UTC())
	e := env(t, command.CommitStats, command.Stats{Batch: b})
	e.RequestID, e.Time, e.Skippable = StatsRequestID(b.Agent, b.Seq), at, true
	apply(t, nodes[0], e)
	for i, a := range accs {
		if err := nodes[i].SyncStats(ctxT(t, 5*time.Second), a); err != nil {
			t.Fatalf("sync %s: %v", nodes[i].ID(), err)
		}
		if err := nodes[i].SyncStats(ctxT(t, 5*time.Second), a); err != nil {
			t.Fatalf("sync %s with nothing new: %v", nodes[i].ID(), err)
		}
	}
	s, err := nodes[2].ConsistentState(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := s.Stats.Releases["support@v1"]
	if !ok || r.Requests != 30 || r.Errors != 2 || r.Latency.Count() != 30 {
		t.Fatalf("support@v1 on the third agent: %+v, want 30 requests, 2 errors, 30 latencies", r.Counters)
	}
	if len(s.Stats.Releases) != 1 {
		t.Fatalf("releases with stats: %d, want 1", len(s.Stats.Releases))
	}
	if s.Stats.Seqs[nodes[0].ID()] != 1 || s.Stats.Seqs[nodes[1].ID()] != 1 {
		t.Fatalf("sequences %v, want 1 each", s.Stats.Seqs)
	}
	waitConverged(t, nodes)
}

func TestStatsRequestIDStaysBounded(t *testing.T) {
	id := StatsRequestID(strings.Repeat("n", 200), 7)
	if len(id) > command.MaxRequestIDLen || id == StatsRequestID(strings.Repeat("n", 200), 8) {
		t.Fatalf("request id %q: too long or not unique per sequence", id)
	}
	if got := StatsRequestID("a1", 3); got != "stats:a1:3" {
		t.Fatalf("request id %q, want stats:a1:3", got)
	}
}
