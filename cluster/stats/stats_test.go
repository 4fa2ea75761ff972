package stats

import (
	"gantry/eval/sketch"

	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC)

func sketchOf(vals []float64) sketch.Sketch {
	b := sketch.NewBuilder()
	for _, v := range vals {
		b.Add(v)
	}
	return b.Sketch()
}

func withinAccuracy(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > sketch.RelativeAccuracy*want {
		t.Errorf("%s = %.3f ms, want %.3f ms ± %.0f%%", what, got, want, sketch.RelativeAccuracy*100)
	}
}

func all(string, int) bool { return true }

func item(feature string, version int, requests int64, lat ...float64) Item {
	return Item{Feature: feature, Version: version, Counters: Counters{Requests: requests, CostUSD: 0.01 * float64(requests), InputTokens: 10 * requests}, Latency: sketchOf(lat)}
}

func TestCommitIsIdempotentBySequence(t *testing.T) {
	var tb Table
	batch := []Item{item("support", 1, 3, 100, 200, 300)}
	tb, dup, err := tb.Commit("a1", 1, batch, all, t0)
	if err != nil || dup {
		t.Fatalf("first commit: dup %v, %v", dup, err)
	}
	again, dup, err := tb.Commit("a1", 1, batch, all, t0.Add(time.Second))
	if err != nil || !dup || !reflect.DeepEqual(again, tb) {
		t.Fatalf("resent batch: dup %v, %v, changed %v", dup, err, !reflect.DeepEqual(again, tb))
	}
	if _, dup, _ := tb.Commit("a1", 0, batch, all, t0); dup {
		t.Fatal("sequence 0 taken for a duplicate instead of refused")
	}
	// Another agent's batch 1 is its own.
	tb, dup, err = tb.Commit("a2", 1, batch, all, t0)
	if err != nil || dup {
		t.Fatalf("a2's first batch: dup %v, %v", dup, err)
	}
	if got := tb.Releases["support@v1"].Requests; got != 6 {
		t.Fatalf("requests %d, want 6", got)
	}
}

func TestCommitRejects(t *testing.T) {
	var tb Table
	tests := []struct {
		name  string
		agent string
		seq   uint64
		items []Item
	}{
		{"no agent", "", 1, nil},
		{"no sequence", "a1", 0, nil},
		{"negative requests", "a1", 1, []Item{{Feature: "f", Version: 1, Counters: Counters{Requests: -1}}}},
		{"NaN cost", "a1", 1, []Item{{Feature: "f", Version: 1, Counters: Counters{CostUSD: math.NaN()}}}},
		{"bins out of order", "a1", 1, []Item{{Feature: "f", Version: 1, Latency: sketch.Sketch{Bins: []sketch.Bin{{Index: 5, Count: 1}, {Index: 4, Count: 1}}}}}},
		{"too many items", "a1", 1, make([]Item, MaxItems+1)},
		{"huge latency count", "a1", 1, []Item{{Feature: "f", Version: 1, Latency: sketch.Sketch{Bins: []sketch.Bin{{Index: 5, Count: math.MaxUint64}}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next, _, err := tb.Commit(tc.agent, tc.seq, tc.items, all, t0)
			if !errors.Is(err, ErrInvalid) || !reflect.DeepEqual(next, tb) {
				t.Fatalf("err %v, table changed %v; want ErrInvalid and no change", err, !reflect.DeepEqual(next, tb))
			}
		})
	}
}

func TestCommitDropsReleasesThatDoNotExist(t *testing.T) {
	exists := func(f string, v int) bool { return f == "support" && v == 1 }
	tb, _, err := Table{}.Commit("a1", 1, []Item{item("support", 1, 1, 50), item("support", 9, 1, 50), item("gone", 1, 1, 50)}, exists, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Releases) != 1 || tb.Releases["support@v1"].Requests != 1 {
		t.Fatalf("releases %v, want support@v1 only", tb.Releases)
	}
	if tb.Seqs["a1"] != 1 {
		t.Fatal("the batch's sequence was not recorded")
	}
}

func TestFeedbackChangesOfMindNeverGoNegative(t *testing.T) {
	tb, _, _ := Table{}.Commit("a1", 1, []Item{{Feature: "f", Version: 1, Counters: Counters{Requests: 1, FeedbackUp: 1}}}, all, t0)
	tb, _, _ = tb.Commit("a1", 2, []Item{{Feature: "f", Version: 1, Counters: Counters{FeedbackUp: -1, FeedbackDown: 1}}}, all, t0)
	r := tb.Releases["f@v1"]
	if r.FeedbackUp != 0 || r.FeedbackDown != 1 {
		t.Fatalf("feedback +%d/-%d, want +0/-1", r.FeedbackUp, r.FeedbackDown)
	}
	// A retraction whose signal was never counted stays at zero.
	tb, _, _ = tb.Commit("a1", 3, []Item{{Feature: "f", Version: 1, Counters: Counters{FeedbackUp: -1}}}, all, t0)
	if got := tb.Releases["f@v1"].FeedbackUp; got != 0 {
		t.Fatalf("feedback up %d, want 0", got)
	}
}

func TestMinuteBucketsFollowTheWindow(t *testing.T) {
	var tb Table
	commit := func(seq uint64, at time.Time, it Item) {
		t.Helper()
		var err error
		if tb, _, err = tb.Commit("a1", seq, []Item{it}, all, at); err != nil {
			t.Fatal(err)
		}
	}
	commit(1, t0, item("f", 1, 2, 100, 100))
	commit(2, t0.Add(10*time.Second), item("f", 1, 1, 100)) // same minute
	commit(3, t0.Add(2*time.Minute), item("f", 1, 4, 500, 500, 500, 500))
	r := tb.Releases["f@v1"]
	if len(r.Minutes) != 2 || r.Minutes[0].Requests != 3 || r.Minutes[1].Requests != 4 {
		t.Fatalf("minutes %+v, want 3 then 4 requests", r.Minutes)
	}
	// The last minute only.
	c, s := r.Window(t0.Add(2*time.Minute), t0.Add(2*time.Minute+10*time.Second))
	if c.Requests != 4 || s.Count() != 4 {
		t.Fatalf("last minute: %d requests, %d latencies; want 4", c.Requests, s.Count())
	}
	withinAccuracy(t, "last minute p50", s.Quantiles(0.5)[0], 500)
	// Both.
	if c, _ := r.Window(t0.Add(-time.Minute), t0.Add(3*time.Minute)); c.Requests != 7 {
		t.Fatalf("both minutes: %d requests, want 7", c.Requests)
	}
	// A batch cut long after: older buckets fall out, totals stay.
	commit(4, t0.Add((WindowMinutes+2)*time.Minute), item("f", 1, 1, 100))
	r = tb.Releases["f@v1"]
	if len(r.Minutes) != 1 || r.Requests != 8 {
		t.Fatalf("after the window moved: %d minutes, %d requests; want 1 and 8", len(r.Minutes), r.Requests)
	}
	// Another release's traffic much later clears this one's buckets.
	commit(5, t0.Add(3*WindowMinutes*time.Minute), item("g", 1, 1, 100))
	if r := tb.Releases["f@v1"]; len(r.Minutes) != 0 || r.Requests != 8 {
		t.Fatalf("idle release: %d minutes, %d requests; want 0 and 8", len(r.Minutes), r.Requests)
	}
}

func TestTableStaysBounded(t *testing.T) {
	var tb Table
	var err error
	for seq := range uint64(2) {
		var items []Item
		for i := range MaxItems {
			items = append(items, item("f", int(seq)*MaxItems+i+1, 1, 10))
		}
		if tb, _, err = tb.Commit("a1", seq+1, items, all, t0.Add(time.Duration(seq)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if len(tb.Releases) != MaxReleases {
		t.Fatalf("%d releases, bound %d", len(tb.Releases), MaxReleases)
	}
	// The older batch's releases gave way, lowest ids first.
	if _, ok := tb.Releases["f@v1"]; ok {
		t.Fatal("the release updated longest ago was kept")
	}
	if _, ok := tb.Releases[fmt.Sprintf("f@v%d", 2*MaxItems)]; !ok {
		t.Fatal("the newest release was evicted")
	}
	if err := tb.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestPrune(t *testing.T) {
	tb, _, _ := Table{}.Commit("a1", 1, []Item{item("f", 1, 1, 10), item("f", 2, 1, 10)}, all, t0)
	pruned := tb.Prune(func(f string, v int) bool { return v == 2 })
	if len(pruned.Releases) != 1 || pruned.Releases["f@v2"].Requests != 1 {
		t.Fatalf("after prune: %v", pruned.Releases)
	}
	if len(tb.Releases) != 2 {
		t.Fatal("Prune changed the table it was called on")
	}
}

func TestAccumulatorResendsUntilAcked(t *testing.T) {
	a := NewAccumulator("a1")
	if _, _, ok := a.NextBatch(t0); ok {
		t.Fatal("an empty accumulator cut a batch")
	}
	a.Resume(41)
	a.Record("f", 1, Call{LatencyMs: 100, CostUSD: 0.5, InputTokens: 7, OutputTokens: 3})
	a.Record("f", 1, Call{LatencyMs: 300, Error: true, ValidationFailed: true})
	a.Feedback("f", 1, 1, 0)
	b1, at1, ok := a.NextBatch(t0)
	if !ok || b1.Seq != 42 || at1 != t0 {
		t.Fatalf("first batch seq %d at %v, want 42 at %v", b1.Seq, at1, t0)
	}
	want := Counters{Requests: 2, Errors: 1, ValidationFailures: 1, FeedbackUp: 1, CostUSD: 0.5, InputTokens: 7, OutputTokens: 3}
	if len(b1.Items) != 1 || b1.Items[0].Counters != want || b1.Items[0].Latency.Count() != 2 {
		t.Fatalf("first batch %+v, want %+v with 2 latencies", b1.Items, want)
	}
	// Not acknowledged: new counts wait; the same batch goes again, at the
	// same time.
	a.Record("g", 2, Call{LatencyMs: 50})
	a.Resume(99) // a late resume must not renumber a batch in flight
	b2, at2, _ := a.NextBatch(t0.Add(5 * time.Second))
	if !reflect.DeepEqual(b1, b2) || at2 != t0 {
		t.Fatalf("resent batch %+v at %v, want the first one again at %v", b2, at2, t0)
	}
	a.Acked(41) // an old ack changes nothing
	if b, _, _ := a.NextBatch(t0); b.Seq != 42 {
		t.Fatal("an ack of another sequence released the batch")
	}
	a.Acked(42)
	b3, _, ok := a.NextBatch(t0.Add(10 * time.Second))
	if !ok || b3.Seq != 43 || len(b3.Items) != 1 || b3.Items[0].Feature != "g" || b3.Items[0].Requests != 1 {
		t.Fatalf("next batch %+v, want seq 43 with g's one call", b3)
	}
}

func BenchmarkRecord(b *testing.B) {
	a := NewAccumulator("a1")
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			a.Record("support", 1+i%2, Call{LatencyMs: float64(50 + i%900), CostUSD: 0.001, InputTokens: 100, OutputTokens: 20})
		}
	})
}
