// Package costs counts what calls cost against what they were worth: calls,
// validated answers, answers without negative feedback, escalations of
// cascades and the cost without them, tokens saved by compression and
// semantic cache hits, per feature, release, model and team, in five-minute
// buckets over the last day. It answers "what does a good answer cost?"
// for a window, grouped by any one of those dimensions.
package costs

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"gantry/pipeline/trace"
)

// Dimensions a table may be grouped by.
const (
	ByFeature = "feature"
	ByRelease = "release"
	ByModel   = "model"
	ByTeam    = "team"
)

// Dimensions lists them, for error messages.
var Dimensions = []string{ByFeature, ByRelease, ByModel, ByTeam}

// Bounds of the accumulator.
const (
	Bucket    = 5 * time.Minute
	Retention = 24 * time.Hour
	buckets   = int(Retention/Bucket) + 1
	// MaxKeys bounds the distinct feature, release, model and team
	// combinations one bucket keeps; more are counted under "(other)".
	MaxKeys = 4096
	Other   = "(other)"
)

// Key is what one call is counted under.
type Key struct {
	Feature, Release, Model, Team string
}

// Call is one finished call, as the trace records it.
type Call struct {
	Key
	Time    time.Time
	CostUSD float64
	// BaseCostUSD is what the call would have cost had its cascade served
	// the first tier's answer; CostUSD for a call without escalation.
	BaseCostUSD float64
	Answered    bool // the client got an answer
	Validated   bool // answered, and the answer passed the release's validation
	Cascade     bool // the route was a cascade
	Escalated   bool // the cascade went past its first tier
	TokensSaved int
	SemanticHit bool
}

// Counters are the sums of one group.
type Counters struct {
	Calls            int64   `json:"calls"`
	Answered         int64   `json:"answered"`
	Validated        int64   `json:"validated"`
	NegativeFeedback int64   `json:"negative_feedback"`
	CascadeCalls     int64   `json:"cascade_calls"`
	Escalated        int64   `json:"escalated"`
	SemanticHits     int64   `json:"semantic_hits"`
	TokensSaved      int64   `json:"tokens_saved"`
	CostUSD          float64 `json:"cost_usd"`
	BaseCostUSD      float64 `json:"cost_without_escalation_usd"`
}

func (c *Counters) add(d Counters) {
	c.Calls += d.Calls
	c.Answered += d.Answered
	c.Validated += d.Validated
	c.NegativeFeedback = max(0, c.NegativeFeedback+d.NegativeFeedback)
	c.CascadeCalls += d.CascadeCalls
	c.Escalated += d.Escalated
	c.SemanticHits += d.SemanticHits
	c.TokensSaved += d.TokensSaved
	c.CostUSD += d.CostUSD
	c.BaseCostUSD += d.BaseCostUSD
}

// Table accumulates calls. Safe for concurrent use.
type Table struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets [buckets]bucket
}

type bucket struct {
	start  int64 // unix seconds of the bucket's start; 0 when unused
	groups map[Key]*Counters
}

// New returns an empty table.
func New(now func() time.Time) *Table {
	if now == nil {
		now = time.Now
	}
	return &Table{now: now}
}

// Add counts a finished call.
func (t *Table) Add(c Call) {
	d := Counters{Calls: 1, CostUSD: c.CostUSD, BaseCostUSD: c.BaseCostUSD, TokensSaved: int64(c.TokensSaved)}
	if c.Answered {
		d.Answered = 1
	}
	if c.Validated {
		d.Validated = 1
	}
	if c.Cascade {
		d.CascadeCalls = 1
	}
	if c.Escalated {
		d.Escalated = 1
	}
	if c.SemanticHit {
		d.SemanticHits = 1
	}
	t.count(c.Time, c.Key, d)
}

// NegativeFeedback counts delta signals against the answer of a call that
// was counted at the given time, while its bucket is kept: -1 when a user
// changed their mind.
func (t *Table) NegativeFeedback(at time.Time, k Key, delta int64) {
	t.count(at, k, Counters{NegativeFeedback: delta})
}

func (t *Table) count(at time.Time, k Key, d Counters) {
	start := at.Truncate(Bucket).Unix()
	t.mu.Lock()
	defer t.mu.Unlock()
	if at.Before(t.now().Add(-Retention)) {
		return
	}
	b := &t.buckets[int(start/int64(Bucket.Seconds()))%buckets]
	if b.start != start {
		if b.start > start {
			return // a bucket newer than this one took its place
		}
		*b = bucket{start: start, groups: map[Key]*Counters{}}
	}
	g := b.groups[k]
	if g == nil {
		if len(b.groups) >= MaxKeys {
			k = Key{Other, Other, Other, Other}
			g = b.groups[k]
		}
		if g == nil {
			g = &Counters{}
			b.groups[k] = g
		}
	}
	g.add(d)
}

// Group is one row of a table: a value of the dimension and its sums.
type Group struct {
	Name string
	Counters
}

// Sum groups the calls of the last window by dimension, largest cost
// first. A window covers whole buckets, so up to one bucket more.
func (t *Table) Sum(by string, window time.Duration) ([]Group, error) {
	pick, err := picker(by)
	if err != nil {
		return nil, err
	}
	if window <= 0 || window > Retention {
		return nil, fmt.Errorf("window %s is outside 0..%s", window, Retention)
	}
	since := t.now().Add(-window).Truncate(Bucket).Unix()
	sums := map[string]*Counters{}
	t.mu.Lock()
	for i := range t.buckets {
		b := &t.buckets[i]
		if b.start == 0 || b.start < since {
			continue
		}
		for k, c := range b.groups {
			name := pick(k)
			s := sums[name]
			if s == nil {
				s = &Counters{}
				sums[name] = s
			}
			s.add(*c)
		}
	}
	t.mu.Unlock()
	out := make([]Group, 0, len(sums))
	for name, c := range sums {
		out = append(out, Group{Name: name, Counters: *c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CostUSD != out[j].CostUSD {
			return out[i].CostUSD > out[j].CostUSD
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func picker(by string) (func(Key) string, error) {
	switch by {
	case ByFeature:
		return func(k Key) string { return k.Feature }, nil
	case ByRelease:
		return func(k Key) string { return k.Release }, nil
	case ByModel:
		return func(k Key) string { return k.Model }, nil
	case ByTeam:
		return func(k Key) string { return k.Team }, nil
	}
	return nil, fmt.Errorf("unknown dimension %q (want one of %v)", by, Dimensions)
}

// Per divides a cost among n things, nil when there are none: a cost per
// validated answer of a group without one is unknown, not zero.
func Per(cost float64, n int64) *float64 {
	if n <= 0 {
		return nil
	}
	v := cost / float64(n)
	return &v
}

// FromTrace is the call a trace records.
func FromTrace(t *trace.Trace) Call {
	saved := 0
	if t.Compression != nil {
		saved = t.Compression.TokensSaved
	}
	return Call{
		Key:  KeyOf(t),
		Time: t.Start, CostUSD: t.CostUSD, BaseCostUSD: t.BaseCostUSD(),
		Answered: t.Status == "ok", Validated: t.Validated(),
		Cascade: len(t.Tiers) > 0, Escalated: len(t.Tiers) > 1,
		TokensSaved: saved, SemanticHit: t.SemanticHit != nil,
	}
}

// KeyOf is what a trace is counted under.
func KeyOf(t *trace.Trace) Key {
	return Key{Feature: t.Feature, Release: t.Release, Model: t.Model, Team: t.Team}
}
