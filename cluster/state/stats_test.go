package state

import (
	"gantry/eval/sketch"

	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gantry/cluster/command"
	"gantry/cluster/stats"
	"gantry/config"
)

// statsBatch is agent's batch seq: one call per latency of support@v1, one
// error, all with the same cost.
func statsBatch(t *testing.T, agent string, seq uint64, lat []float64) command.Envelope {
	t.Helper()
	b := sketch.NewBuilder()
	for _, v := range lat {
		b.Add(v)
	}
	it := stats.Item{Feature: "support", Version: 1, Latency: b.Sketch(),
		Counters: stats.Counters{Requests: int64(len(lat)), Errors: 1, ValidationFailures: 2, FeedbackUp: 3, CostUSD: 0.25, InputTokens: 100, OutputTokens: 40}}
	e := mk(t, command.CommitStats, command.Stats{Batch: stats.Batch{Agent: agent, Seq: seq, Items: []stats.Item{it}}}, "stats:"+agent+":"+string(rune('0'+seq)))
	e.Skippable = true
	return e
}

func draw(seed uint64, n int, median float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = median * math.Exp(0.5*r.NormFloat64())
	}
	return out
}

func TestStatsBatchCountsOnce(t *testing.T) {
	s := seeded(t)
	e := statsBatch(t, "a1", 1, draw(1, 50, 200))
	s1, _ := mustApply(t, s, 2, e)
	if got := s1.Stats.Releases["support@v1"].Requests; got != 50 {
		t.Fatalf("requests %d, want 50", got)
	}
	// The same command again: a duplicate, nothing changes.
	s2, res := mustApply(t, s1, 3, e)
	if !res.Duplicate || s2.Hash() != s1.Hash() {
		t.Fatalf("resent command: duplicate %v, state changed %v", res.Duplicate, s2.Hash() != s1.Hash())
	}
	// The same batch under a request id the state no longer remembers: the
	// sequence still keeps it from counting twice.
	e.RequestID = "stats:a1:1:late"
	s3, _ := mustApply(t, s1, 3, e)
	if got := s3.Stats.Releases["support@v1"]; got.Requests != 50 || got.Latency.Count() != 50 {
		t.Fatalf("batch counted twice: %d requests, %d latencies", got.Requests, got.Latency.Count())
	}
	// Not in the audit log: it would push configuration changes out.
	if len(s3.Audit()) != len(s.Audit()) {
		t.Fatal("a stats batch was audited")
	}
}

func TestStatsOfTwoAgentsAddUp(t *testing.T) {
	s := seeded(t)
	a, b := draw(1, 4000, 150), draw(2, 1500, 1200)
	s, _ = mustApply(t, s, 2, statsBatch(t, "a1", 1, a))
	s, _ = mustApply(t, s, 3, statsBatch(t, "a2", 1, b))
	r := s.Stats.Releases["support@v1"]
	want := stats.Counters{Requests: 5500, Errors: 2, ValidationFailures: 4, FeedbackUp: 6, CostUSD: 0.5, InputTokens: 200, OutputTokens: 80}
	if r.Counters != want {
		t.Fatalf("counters %+v, want %+v", r.Counters, want)
	}
	all := slices.Concat(a, b)
	slices.Sort(all)
	got := r.Latency.Quantiles(0.5, 0.95)
	for i, q := range []float64{0.5, 0.95} {
		exact := all[int(q*float64(len(all)-1))]
		if math.Abs(got[i]-exact) > sketch.RelativeAccuracy*exact {
			t.Errorf("p%.0f %.2f ms, true %.2f ms: more than %.0f%% off", q*100, got[i], exact, sketch.RelativeAccuracy*100)
		}
	}
}

func TestStatsSurviveSnapshots(t *testing.T) {
	s := seeded(t)
	s, _ = mustApply(t, s, 2, statsBatch(t, "a1", 1, draw(3, 300, 80)))
	s, _ = mustApply(t, s, 3, statsBatch(t, "a2", 5, draw(4, 300, 90)))
	got := roundTrip(t, s)
	if got.Hash() != s.Hash() {
		t.Fatal("restored state hash differs")
	}
	r := got.Stats.Releases["support@v1"]
	if r.Requests != 600 || r.Latency.Count() != 600 || got.Stats.Seqs["a2"] != 5 {
		t.Fatalf("restored stats: %d requests, %d latencies, a2 at seq %d", r.Requests, r.Latency.Count(), got.Stats.Seqs["a2"])
	}
	// The restored state still refuses a batch it has seen.
	e := statsBatch(t, "a2", 5, draw(4, 300, 90))
	e.RequestID = "other"
	again, _ := mustApply(t, got, 4, e)
	if again.Stats.Releases["support@v1"].Requests != 600 {
		t.Fatal("a batch counted again after a restore")
	}
}

func TestStatsGoWithTheirRelease(t *testing.T) {
	s := seeded(t)
	s, _ = mustApply(t, s, 2, mk(t, command.CreateRelease, command.Release{Feature: "support", Release: release("r1")}, "v2"))
	s, _ = mustApply(t, s, 3, statsBatch(t, "a1", 1, draw(5, 10, 100)))
	if len(s.Stats.Releases) != 1 {
		t.Fatalf("releases with stats: %d, want 1", len(s.Stats.Releases))
	}
	// A configuration apply that prunes the feature drops its counters.
	cfg := s.Config
	f := cfg.Features[0]
	f.Name = "renamed"
	cfg.Features = []config.Feature{f}
	s, _ = mustApply(t, s, 4, mk(t, command.ApplyConfig, command.Config{Config: cfg, Prune: true}, "drop-support"))
	if len(s.Stats.Releases) != 0 {
		t.Fatalf("stats of a removed release kept: %v", s.Stats.Releases)
	}
	// So does deleting the feature.
	s, _ = mustApply(t, s, 5, mk(t, command.PutFeature, command.Feature{Feature: config.Feature{Name: "other", Releases: []config.Release{func() config.Release {
		r := release("r1")
		r.Version = 1
		return r
	}()}, Labels: config.Labels{Production: 1}}}, "other"))
	e := statsBatch(t, "a1", 2, draw(6, 10, 100))
	var p command.Stats
	if err := e.DecodePayload(&p); err != nil {
		t.Fatal(err)
	}
	p.Batch.Items[0].Feature = "other"
	e, _ = command.New(command.CommitStats, p)
	e.RequestID, e.Time = "stats:a1:2", t0
	s, _ = mustApply(t, s, 6, e)
	if s.Stats.Releases["other@v1"].Requests != 10 {
		t.Fatal("stats of other@v1 missing")
	}
	s, _ = mustApply(t, s, 7, mk(t, command.DeleteFeature, command.Name{Name: "other"}, "del"))
	if len(s.Stats.Releases) != 0 {
		t.Fatalf("stats of a deleted feature kept: %v", s.Stats.Releases)
	}
}

func TestStatsBatchRefusedWhole(t *testing.T) {
	s := seeded(t)
	e := statsBatch(t, "a1", 1, draw(1, 5, 100))
	var p command.Stats
	if err := e.DecodePayload(&p); err != nil {
		t.Fatal(err)
	}
	p.Batch.Items[0].Requests = -5
	bad, _ := command.New(command.CommitStats, p)
	bad.RequestID, bad.Time = "bad", t0
	next, _, err := s.Apply(2, bad)
	if !errors.Is(err, ErrInvalid) || next != s {
		t.Fatalf("negative count: err %v, state changed %v", err, next != s)
	}
}
