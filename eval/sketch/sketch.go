// Package sketch is the latency distribution Gantry counts and compares:
// DDSketch's bins at 1 % relative accuracy, mergeable across agents (a
// percentile of percentiles is not a percentile), bounded in size and
// checked before anything reads it, since sketches arrive through the
// replicated log.
package sketch

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// RelativeAccuracy is the sketch's guarantee: a quantile it reports is
// within 1% of the true value at that rank. Bins of different accuracies
// cannot be merged, so changing it needs a new command version.
const RelativeAccuracy = 0.01

// MaxBins bounds one sketch. At 1% a bin spans 2% of its value, so 1,024
// bins cover nine orders of magnitude (a microsecond to ten minutes);
// beyond that the lowest bins are folded together, which keeps the tail
// quantiles exact to the accuracy and costs only the fastest calls theirs.
const MaxBins = 1024

// latencyMapping is DDSketch's logarithmic index mapping at
// RelativeAccuracy: value v goes to bin ceil(log_γ v), γ = 1.01/0.99.
var latencyMapping = func() *mapping.LogarithmicMapping {
	m, err := mapping.NewLogarithmicMapping(RelativeAccuracy)
	if err != nil {
		panic(err) // a constant accuracy in (0, 1) always maps
	}
	return m
}()

// Sketch is a mergeable latency distribution in milliseconds: the bins of
// a DDSketch with the logarithmic mapping, kept as a sorted list of
// (index, count) instead of DDSketch's own encodings, so it is immutable,
// encodes to the same JSON on every replica, and merges by adding counts.
// The zero value is an empty sketch.
type Sketch struct {
	// Zero counts values too small to index (0 ms).
	Zero uint64 `json:"zero,omitempty"`
	// Bins are in ascending index order, each with a count above zero.
	Bins []Bin `json:"bins,omitempty"`
}

// Bin is one bucket of a Sketch. It encodes as [index, count].
type Bin struct {
	Index int32
	Count uint64
}

// MarshalJSON writes [index, count].
func (b Bin) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "[%d,%d]", b.Index, b.Count), nil
}

// UnmarshalJSON reads [index, count].
func (b *Bin) UnmarshalJSON(data []byte) error {
	var v []json.RawMessage
	if err := json.Unmarshal(data, &v); err != nil || len(v) != 2 {
		return fmt.Errorf("sketch bin %.40s: want [index, count]", data)
	}
	if err := json.Unmarshal(v[0], &b.Index); err != nil {
		return fmt.Errorf("sketch bin index: %w", err)
	}
	if err := json.Unmarshal(v[1], &b.Count); err != nil {
		return fmt.Errorf("sketch bin count: %w", err)
	}
	return nil
}

// ErrSketch marks a sketch that is not well formed.
var ErrSketch = errors.New("malformed sketch")

// MinIndex and MaxIndex are the bin indexes the mapping gives the smallest
// and largest values it indexes (about ±35,500 at 1%). Quantiles lay the
// bins out densely from the lowest index to the highest, so one bin far
// out would cost gigabytes to read: a sketch with an index beyond these
// is malformed, whoever made it.
var (
	MinIndex = int32(latencyMapping.Index(latencyMapping.MinIndexableValue()))
	MaxIndex = int32(latencyMapping.Index(latencyMapping.MaxIndexableValue()))
)

// MaxCount bounds the values one sketch holds, so counts added up by Merge
// never wrap and stay exact in DDSketch's float64 arithmetic.
const MaxCount = 1 << 52

// Check reports whether s is well formed: bins in strictly ascending order
// within [MinIndex, MaxIndex], every count above zero, at most MaxBins
// bins and MaxCount values. Everything that reads a sketch relies on it.
func (s Sketch) Check() error {
	if len(s.Bins) > MaxBins {
		return fmt.Errorf("%w: %d bins, more than %d", ErrSketch, len(s.Bins), MaxBins)
	}
	total := s.Zero
	if total > MaxCount {
		return fmt.Errorf("%w: more than %d values", ErrSketch, uint64(MaxCount))
	}
	for i, b := range s.Bins {
		if b.Count == 0 {
			return fmt.Errorf("%w: bin %d is empty", ErrSketch, b.Index)
		}
		if b.Index < MinIndex || b.Index > MaxIndex {
			return fmt.Errorf("%w: bin index %d outside %d..%d", ErrSketch, b.Index, MinIndex, MaxIndex)
		}
		if i > 0 && s.Bins[i-1].Index >= b.Index {
			return fmt.Errorf("%w: bins out of order at %d", ErrSketch, b.Index)
		}
		if total += b.Count; b.Count > MaxCount || total > MaxCount {
			return fmt.Errorf("%w: more than %d values", ErrSketch, uint64(MaxCount))
		}
	}
	return nil
}

// Count is how many values s holds.
func (s Sketch) Count() uint64 {
	n := s.Zero
	for _, b := range s.Bins {
		n += b.Count
	}
	return n
}

// Merge returns the sketch of the values of s and o together; neither is
// changed. Both must be well formed. When the result has more than MaxBins
// bins, the lowest are folded into the lowest kept one.
func (s Sketch) Merge(o Sketch) Sketch {
	if len(o.Bins) == 0 && o.Zero == 0 {
		return s
	}
	if len(s.Bins) == 0 && s.Zero == 0 {
		return o
	}
	out := Sketch{Zero: addCount(s.Zero, o.Zero), Bins: make([]Bin, 0, len(s.Bins)+len(o.Bins))}
	i, j := 0, 0
	for i < len(s.Bins) || j < len(o.Bins) {
		switch {
		case j == len(o.Bins) || (i < len(s.Bins) && s.Bins[i].Index < o.Bins[j].Index):
			out.Bins = append(out.Bins, s.Bins[i])
			i++
		case i == len(s.Bins) || o.Bins[j].Index < s.Bins[i].Index:
			out.Bins = append(out.Bins, o.Bins[j])
			j++
		default:
			out.Bins = append(out.Bins, Bin{Index: s.Bins[i].Index, Count: addCount(s.Bins[i].Count, o.Bins[j].Count)})
			i++
			j++
		}
	}
	return out.collapse()
}

// addCount adds counts, stopping at MaxCount: a release's totals merge
// batch after batch for as long as it serves.
func addCount(a, b uint64) uint64 { return min(a+b, MaxCount) }

// collapse folds the lowest bins into one so at most MaxBins remain.
func (s Sketch) collapse() Sketch {
	over := len(s.Bins) - MaxBins
	if over <= 0 {
		return s
	}
	var folded uint64
	for _, b := range s.Bins[:over+1] {
		folded = addCount(folded, b.Count)
	}
	bins := slices.Clone(s.Bins[over:])
	bins[0].Count = folded
	s.Bins = bins
	return s
}

// dd is s as a DDSketch, for its quantile arithmetic.
func (s Sketch) dd() *ddsketch.DDSketch {
	d := ddsketch.NewDDSketch(latencyMapping, store.NewDenseStore(), store.NewDenseStore())
	pos := d.GetPositiveValueStore()
	for _, b := range s.Bins {
		pos.AddWithCount(int(b.Index), float64(b.Count))
	}
	if s.Zero > 0 {
		d.AddWithCount(0, float64(s.Zero))
	}
	return d
}

// Quantiles returns the values at quantiles qs (each in [0, 1]), each
// within RelativeAccuracy of the value of rank ⌊q·(n−1)⌋ among the n values
// added. An empty sketch gives zeros.
func (s Sketch) Quantiles(qs ...float64) []float64 {
	out := make([]float64, len(qs))
	if s.Count() == 0 {
		return out
	}
	d := s.dd()
	for i, q := range qs {
		if v, err := d.GetValueAtQuantile(q); err == nil {
			out[i] = v
		}
	}
	return out
}

// Builder collects values into a sketch. It is mutable and not safe for
// concurrent use; the agent holds one per release under its own lock.
type Builder struct {
	d *ddsketch.DDSketch
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder {
	return &Builder{d: ddsketch.NewDDSketch(latencyMapping, store.NewDenseStore(), store.NewDenseStore())}
}

// Add records one value in milliseconds; negative and NaN values count as 0.
func (b *Builder) Add(ms float64) {
	if !(ms > 0) {
		ms = 0
	}
	if ms > latencyMapping.MaxIndexableValue() {
		ms = latencyMapping.MaxIndexableValue()
	}
	b.d.Add(ms) // in range by now: it cannot fail
}

// Sketch returns what b holds as a Sketch.
func (b *Builder) Sketch() Sketch {
	s := Sketch{Zero: uint64(b.d.GetZeroCount())}
	b.d.GetPositiveValueStore().ForEach(func(index int, count float64) bool {
		s.Bins = append(s.Bins, Bin{Index: int32(index), Count: uint64(count)})
		return false
	})
	return s.collapse()
}
