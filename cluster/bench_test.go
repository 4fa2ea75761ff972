package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/config"
)

// BenchmarkCommitLatency measures a config write from Apply to the reply on
// a three-node loopback cluster, on the leader and forwarded from a
// follower, and reports p50 and p99.
func BenchmarkCommitLatency(b *testing.B) {
	for _, via := range []string{"leader", "follower"} {
		b.Run(via, func(b *testing.B) {
			nodes := benchCluster(b)
			n := leaderOfB(b, nodes)
			if via == "follower" {
				for _, o := range nodes {
					if o != n {
						n = o
						break
					}
				}
			}
			ctx := context.Background()
			seed, _ := command.New(command.ApplyConfig, command.Config{Config: seedConfig()})
			if _, err := n.Apply(ctx, seed); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e, _ := command.New(command.PutModel, command.Model{Model: config.Model{Name: "m1", Provider: "sim", Price: config.Price{Input: float64(i%1000) / 100, Output: 2}}})
				start := time.Now()
				if _, err := n.Apply(ctx, e); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
		})
	}
}

// benchCluster starts three nodes for a benchmark; the helpers of the tests
// take a *testing.T, so this repeats the small part they need.
func benchCluster(b *testing.B) []*Node {
	b.Helper()
	var nodes []*Node
	var servers []*benchServer
	for i := range 3 {
		srv := newBenchServer()
		servers = append(servers, srv)
		opts := Options{
			NodeID: fmt.Sprintf("b%d", i), RaftAddr: "127.0.0.1:0", DataDir: b.TempDir(), HTTPAddr: srv.URL(), Secret: testSecret,
			Voters: 3, Bootstrap: i == 0, JoinInterval: 100 * time.Millisecond, ReconcileInterval: 100 * time.Millisecond,
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond,
			CommitTimeout: 5 * time.Millisecond, Logger: discardLogger(),
		}
		if i > 0 {
			opts.Join = []string{servers[0].URL()}
		}
		n, err := Open(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		srv.set(n.Handler())
		nodes = append(nodes, n)
	}
	b.Cleanup(func() {
		for i, n := range nodes {
			n.Close()
			servers[i].Close()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok := true
		for _, a := range nodes {
			for _, o := range nodes {
				if m, found := a.State().Member(o.ID()); !found || m.HTTPAddr == "" {
					ok = false
				}
			}
		}
		if ok {
			return nodes
		}
		if time.Now().After(deadline) {
			b.Fatal("cluster did not form")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leaderOfB(b *testing.B, nodes []*Node) *Node {
	b.Helper()
	for range 1000 {
		for _, n := range nodes {
			if n.IsLeader() {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("no leader")
	return nil
}

// bigState builds a state with features × perFeature releases.
func bigState(tb testing.TB, features, perFeature int) *state.State {
	tb.Helper()
	cfg := seedConfig()
	cfg.Features = nil
	for f := range features {
		feat := config.Feature{Name: fmt.Sprintf("feature-%d", f), Labels: config.Labels{Production: 1}}
		for v := 1; v <= perFeature; v++ {
			feat.Releases = append(feat.Releases, config.Release{
				Version: v, Route: "r1",
				System:   fmt.Sprintf("You answer questions about product %d. Release %d keeps answers under 100 words.", f, v),
				Template: []config.Message{{Role: "user", Content: "Question: {{.question}}\nContext: {{.context}}"}},
				Schema:   map[string]any{"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}}},
			})
		}
		cfg.Features = append(cfg.Features, feat)
	}
	e, _ := command.New(command.ApplyConfig, command.Config{Config: cfg})
	e.RequestID, e.Time = "big", time.Unix(0, 0).UTC()
	data, err := command.Encode(e)
	if err != nil {
		tb.Fatal(err)
	}
	// Through the log encoding, as a replica would see it.
	decoded, err := command.Decode(data)
	if err != nil {
		tb.Fatal(err)
	}
	s, _, err := state.New().Apply(1, decoded)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

type bufSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *bufSink) ID() string    { return "bench" }
func (s *bufSink) Cancel() error { s.cancelled = true; return nil }
func (s *bufSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*bufSink)(nil)

// BenchmarkSnapshotRestore10kReleases measures the state machine's snapshot
// (capture and persist) and restore of a state with 10,000 releases.
func BenchmarkSnapshotRestore10kReleases(b *testing.B) {
	f := newFSM(discardLogger())
	f.state.Store(bigState(b, 10, 1000))
	var size int
	var persist, restore time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		sink := &bufSink{}
		if err := snap.Persist(sink); err != nil {
			b.Fatal(err)
		}
		persist += time.Since(start)
		size = sink.Len()
		start = time.Now()
		g := newFSM(discardLogger())
		if err := g.Restore(io.NopCloser(&sink.Buffer)); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(start)
	}
	b.ReportMetric(float64(persist.Milliseconds())/float64(b.N), "persist-ms")
	b.ReportMetric(float64(restore.Milliseconds())/float64(b.N), "restore-ms")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

func TestSnapshotIsIsolatedAndRestoresEqual(t *testing.T) {
	f := newFSM(discardLogger())
	s := bigState(t, 4, 100)
	f.state.Store(s)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Applying after the snapshot was taken does not change it.
	e, _ := command.New(command.CreateRelease, command.Release{Feature: "feature-0", Release: config.Release{Route: "r1"}})
	e.RequestID, e.Time = "after", time.Unix(1, 0).UTC()
	data, _ := command.Encode(e)
	if resp := f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: data}).(fsmResponse); resp.err != nil {
		t.Fatal(resp.err)
	}
	sink := &bufSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM(discardLogger())
	if err := g.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if g.state.Load().Hash() != s.Hash() {
		t.Fatal("restored state differs from the snapshot's")
	}
	if g.state.Load().Hash() == f.state.Load().Hash() {
		t.Fatal("snapshot saw a command applied after it was taken")
	}
}

// BenchmarkRecoverState replays 10,000 log entries, as an agent restarted
// without a leader does to serve what it applied before it stopped.
func BenchmarkRecoverState(b *testing.B) {
	logs := raft.NewInmemStore()
	base := state.New()
	seed := seedConfig()
	var entries []*raft.Log
	add := func(t command.Type, payload any) {
		e, err := command.New(t, payload)
		if err != nil {
			b.Fatal(err)
		}
		e.RequestID, e.Actor, e.Time = fmt.Sprintf("r%d", len(entries)+1), "bench", time.Unix(0, 0).UTC()
		data, err := command.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, &raft.Log{Index: uint64(len(entries) + 1), Term: 1, Type: raft.LogCommand, Data: data})
	}
	add(command.ApplyConfig, command.Config{Config: seed})
	for i := len(entries); i < 10000; i++ {
		add(command.PutKey, command.Key{Key: config.Key{Name: fmt.Sprintf("k%d", i%500), Hash: config.HashKey(fmt.Sprintf("gk_bench-key-%08d", i))}})
	}
	if err := logs.StoreLogs(entries); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		s, err := recoverState(base, logs, 10000)
		if err != nil || s.Index != 10000 {
			b.Fatalf("recovered to %d: %v", s.Index, err)
		}
	}
}
