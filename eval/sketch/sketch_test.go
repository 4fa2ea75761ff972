package sketch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC)

// latencies draws n log-normal latencies around median ms, as model calls
// spread: most near the median, a long slow tail.
func latencies(seed uint64, n int, median float64) []float64 {
	r := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]float64, n)
	for i := range out {
		out[i] = median * math.Exp(0.6*r.NormFloat64())
	}
	return out
}

func sketchOf(vals []float64) Sketch {
	b := NewBuilder()
	for _, v := range vals {
		b.Add(v)
	}
	return b.Sketch()
}

// trueQuantile is the value of rank ⌊q·(n−1)⌋, the one a DDSketch answers
// for.
func trueQuantile(sorted []float64, q float64) float64 {
	return sorted[int(q*float64(len(sorted)-1))]
}

func withinAccuracy(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > RelativeAccuracy*want {
		t.Errorf("%s = %.3f ms, want %.3f ms ± %.0f%%", what, got, want, RelativeAccuracy*100)
	}
}

func TestMergedSketchQuantilesAreWithinAccuracy(t *testing.T) {
	// Two agents with different latency: a fast one and a slow one.
	a, b := latencies(1, 5000, 120), latencies(2, 2000, 900)
	merged := sketchOf(a).Merge(sketchOf(b))
	all := slices.Concat(a, b)
	slices.Sort(all)
	if got := merged.Count(); got != uint64(len(all)) {
		t.Fatalf("merged count %d, want %d", got, len(all))
	}
	qs := []float64{0.5, 0.95, 0.99}
	got := merged.Quantiles(qs...)
	for i, q := range qs {
		withinAccuracy(t, fmt.Sprintf("p%.0f", q*100), got[i], trueQuantile(all, q))
	}
	// Merging in the other order gives the same sketch.
	if !reflect.DeepEqual(merged, sketchOf(b).Merge(sketchOf(a))) {
		t.Fatal("merge depends on order")
	}
}

func TestSketchEdges(t *testing.T) {
	if got := (Sketch{}).Quantiles(0.5, 0.95); got[0] != 0 || got[1] != 0 {
		t.Fatalf("empty sketch quantiles %v, want zeros", got)
	}
	s := sketchOf([]float64{0, 0, 0, -5, math.NaN(), 10})
	if s.Zero != 5 || s.Count() != 6 {
		t.Fatalf("zero, negative and NaN latencies: zero %d count %d, want 5 and 6", s.Zero, s.Count())
	}
	if got := s.Quantiles(0.5, 1); got[0] != 0 || math.Abs(got[1]-10) > 0.1 {
		t.Fatalf("quantiles %v, want 0 and 10", got)
	}
}

func TestSketchStaysBoundedAndKeepsTheTail(t *testing.T) {
	// Values spread over far more bins than MaxBins: each value 3% above
	// the last, from a nanosecond up.
	var vals []float64
	for v := 1e-6; len(vals) < 3*MaxBins; v *= 1.03 {
		vals = append(vals, v)
	}
	s := sketchOf(vals[:MaxBins]).Merge(sketchOf(vals[MaxBins:]))
	if len(s.Bins) > MaxBins {
		t.Fatalf("%d bins, bound %d", len(s.Bins), MaxBins)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.Count() != uint64(len(vals)) {
		t.Fatalf("count %d, want %d: folding lost values", s.Count(), len(vals))
	}
	withinAccuracy(t, "p99 after folding", s.Quantiles(0.99)[0], trueQuantile(vals, 0.99))
}

func TestSketchJSON(t *testing.T) {
	s := Sketch{Zero: 2, Bins: []Bin{{Index: -3, Count: 1}, {Index: 40, Count: 7}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"zero":2,"bins":[[-3,1],[40,7]]}`; string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	var back Sketch
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{
		`{"bins":[[1]]}`, `{"bins":[[1,2,3]]}`, `{"bins":[[1,-2]]}`, `{"bins":[[4294967296,1]]}`, `{"bins":[{"i":1}]}`, `{"bins":[[1.5,1]]}`,
	} {
		var x Sketch
		if err := json.Unmarshal([]byte(bad), &x); err == nil {
			t.Errorf("%s decoded as %+v", bad, x)
		}
	}
	for _, bad := range []Sketch{
		{Bins: []Bin{{Index: 2, Count: 1}, {Index: 1, Count: 1}}},
		{Bins: []Bin{{Index: 1, Count: 1}, {Index: 1, Count: 1}}},
		{Bins: []Bin{{Index: 1, Count: 0}}},
		{Bins: make([]Bin, MaxBins+1)},
	} {
		if err := bad.Check(); !errors.Is(err, ErrSketch) {
			t.Errorf("Check(%v) = %v, want ErrSketch", bad.Bins[:min(2, len(bad.Bins))], err)
		}
	}
}

// FuzzSketchJSON feeds arbitrary JSON to the sketch decoder: whatever
// decodes and checks must keep its indexes within the mapping, merge,
// answer quantiles in order and within its bins, and encode back to the
// same sketch. The seeds spread bins as far as a command could.
func FuzzSketchJSON(f *testing.F) {
	f.Add([]byte(`{"zero":2,"bins":[[-3,1],[40,7]]}`))
	f.Add([]byte(`{"bins":[[2147483647,18446744073709551615]]}`))
	f.Add([]byte(`{"bins":[[1,1],[1,1]]}`))
	f.Add([]byte(`{"bins":[[-2000000000,1],[2000000000,1]]}`))
	f.Add([]byte(`{"bins":[[-35418,1],[0,5],[35470,1]]}`))
	f.Add([]byte(`{"zero":4503599627370496,"bins":[[10,1]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Sketch
		if json.Unmarshal(data, &s) != nil || s.Check() != nil {
			return
		}
		for _, b := range s.Bins {
			if b.Index < MinIndex || b.Index > MaxIndex {
				t.Fatalf("a checked sketch has bin %d outside %d..%d", b.Index, MinIndex, MaxIndex)
			}
		}
		m := s.Merge(s)
		if err := m.Check(); err != nil {
			t.Fatalf("merge of a valid sketch is invalid: %v", err)
		}
		q := s.Quantiles(0, 0.5, 0.95, 1)
		for i := range q {
			if math.IsNaN(q[i]) || q[i] < 0 || (i > 0 && q[i] < q[i-1]) {
				t.Fatalf("quantiles %v of %s are not in order", q, data)
			}
		}
		if n := len(s.Bins); n > 0 && q[3] > latencyMapping.Value(int(s.Bins[n-1].Index))*(1+RelativeAccuracy) {
			t.Fatalf("the maximum %v is above the top bin %d", q[3], s.Bins[n-1].Index)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Sketch
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) && !(len(back.Bins) == 0 && len(s.Bins) == 0) {
			t.Fatalf("round trip of %s: %+v, %v", b, back, err)
		}
	})
}
