// Package stats keeps per-release traffic counters for the whole cluster,
// so any agent can answer how a release is doing everywhere, not only on
// itself.
//
// Each agent counts its own calls and feedback per release (Accumulator,
// off the request path) and commits the deltas as one batch every few
// seconds. Batches are idempotent by (agent, sequence), as spend batches
// are: an agent resends a batch with the same sequence until it is
// acknowledged and the Table ignores sequences it has seen, so every call
// is counted once whatever the network does.
//
// The Table is part of the replicated state and immutable like the rest of
// it: Commit and Prune return a new Table. Latency is a Sketch (DDSketch's
// bins), because percentiles of several agents cannot be merged but
// sketches can.
package stats

import (
	"gantry/eval/sketch"

	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"gantry/config"
)

// Bounds of the table.
const (
	// MaxAgents bounds the agents the table tracks batch sequences for.
	MaxAgents = 1024
	// MaxReleases bounds the releases with counters; past it the release
	// updated longest ago gives way.
	MaxReleases = 1024
	// MaxItems bounds one batch.
	MaxItems = 1000
	// WindowMinutes is how many one-minute buckets each release keeps for
	// windowed views such as a canary's last minutes.
	WindowMinutes = 15
	// maxDelta bounds any count of one batch item: far more than an agent
	// serves in a few seconds, far from overflowing a total.
	maxDelta = 1 << 40
	// maxTotal is where a total stops growing, far from overflowing.
	maxTotal = 1 << 62
)

// ErrInvalid marks a batch that cannot be applied.
var ErrInvalid = errors.New("invalid stats batch")

// Counters are a release's traffic. In a batch they are deltas: feedback
// deltas may be negative when a user changes their mind (a trace counts
// once, by its latest signal); every other count only grows.
type Counters struct {
	Requests           int64   `json:"requests"`
	Errors             int64   `json:"errors,omitempty"`
	ValidationFailures int64   `json:"validation_failures,omitempty"`
	FeedbackUp         int64   `json:"feedback_up,omitempty"`
	FeedbackDown       int64   `json:"feedback_down,omitempty"`
	CostUSD            float64 `json:"cost_usd,omitempty"`
	InputTokens        int64   `json:"input_tokens,omitempty"`
	OutputTokens       int64   `json:"output_tokens,omitempty"`
}

// Add returns c plus d. Totals never go below zero: a change of mind whose
// first signal was never committed must not leave a negative count.
// Totals stop at maxTotal rather than wrap.
func (c Counters) Add(d Counters) Counters {
	c.Requests = addTotal(c.Requests, d.Requests)
	c.Errors = addTotal(c.Errors, d.Errors)
	c.ValidationFailures = addTotal(c.ValidationFailures, d.ValidationFailures)
	c.FeedbackUp = max(0, addTotal(c.FeedbackUp, d.FeedbackUp))
	c.FeedbackDown = max(0, addTotal(c.FeedbackDown, d.FeedbackDown))
	c.CostUSD += d.CostUSD
	c.InputTokens = addTotal(c.InputTokens, d.InputTokens)
	c.OutputTokens = addTotal(c.OutputTokens, d.OutputTokens)
	return c
}

// addTotal adds a delta of at most ±maxDelta to a total within ±maxTotal.
func addTotal(a, d int64) int64 { return min(max(a+d, -maxTotal), maxTotal) }

func (c Counters) zero() bool { return c == Counters{} }

func (c Counters) check() error {
	for _, v := range []int64{c.Requests, c.Errors, c.ValidationFailures, c.InputTokens, c.OutputTokens} {
		if v < 0 || v > maxDelta {
			return fmt.Errorf("count %d outside 0..%d", v, int64(maxDelta))
		}
	}
	for _, v := range []int64{c.FeedbackUp, c.FeedbackDown} {
		if v < -maxDelta || v > maxDelta {
			return fmt.Errorf("feedback %d outside ±%d", v, int64(maxDelta))
		}
	}
	if math.IsNaN(c.CostUSD) || c.CostUSD < 0 || c.CostUSD > config.MaxBudgetUSD {
		return fmt.Errorf("cost %v outside 0..%v", c.CostUSD, config.MaxBudgetUSD)
	}
	return nil
}

// Item is one release's delta in a batch.
type Item struct {
	Feature string `json:"feature"`
	Version int    `json:"version"`
	Counters
	Latency sketch.Sketch `json:"latency"`
}

// Batch is the deltas an agent commits as one command.
type Batch struct {
	Agent string `json:"agent"`
	Seq   uint64 `json:"seq"`
	Items []Item `json:"items"`
}

// Table is the replicated record of per-release traffic.
type Table struct {
	// Releases by release id (feature@vN).
	Releases map[string]Release `json:"releases,omitempty"`
	// Seqs holds each agent's last committed batch sequence.
	Seqs map[string]uint64 `json:"seqs,omitempty"`
}

// Release is one release's traffic since it first served.
type Release struct {
	Feature string `json:"feature"`
	Version int    `json:"version"`
	Counters
	Latency sketch.Sketch `json:"latency"`
	// Minutes are one-minute buckets of the last WindowMinutes minutes
	// that had traffic, oldest first, keyed by the batches' command time.
	Minutes []Minute `json:"minutes,omitempty"`
	// Updated is the command time of the last batch that counted here.
	Updated time.Time `json:"updated"`
}

// Minute is one minute of a release's traffic.
type Minute struct {
	Start time.Time `json:"start"`
	Counters
	Latency sketch.Sketch `json:"latency"`
}

// Window is the release's traffic in the minutes that overlap [from, to]:
// whole minutes, so up to a minute more than asked.
func (r Release) Window(from, to time.Time) (Counters, sketch.Sketch) {
	var c Counters
	var s sketch.Sketch
	for _, m := range r.Minutes {
		if m.Start.Add(time.Minute).After(from) && !m.Start.After(to) {
			c = c.Add(m.Counters)
			s = s.Merge(m.Latency)
		}
	}
	return c, s
}

// Commit records agent's batch seq at command time now. A seq at or below
// the agent's last one was committed before: the table is returned
// unchanged with dup set. Items of releases that exists does not know are
// dropped: the release is gone, or never was.
func (t Table) Commit(agent string, seq uint64, items []Item, exists func(feature string, version int) bool, now time.Time) (next Table, dup bool, err error) {
	if agent == "" || seq == 0 {
		return t, false, fmt.Errorf("%w: batch needs an agent and a sequence from 1", ErrInvalid)
	}
	if len(items) > MaxItems {
		return t, false, fmt.Errorf("%w: %d items, more than %d", ErrInvalid, len(items), MaxItems)
	}
	last, known := t.Seqs[agent]
	if seq <= last {
		return t, true, nil
	}
	if !known && len(t.Seqs) >= MaxAgents {
		return t, false, fmt.Errorf("%w: more than %d agents report stats", ErrInvalid, MaxAgents)
	}
	for _, it := range items {
		if err := it.Counters.check(); err != nil {
			return t, false, fmt.Errorf("%w: %s: %w", ErrInvalid, config.ReleaseID(it.Feature, it.Version), err)
		}
		if err := it.Latency.Check(); err != nil {
			return t, false, fmt.Errorf("%w: %s: %w", ErrInvalid, config.ReleaseID(it.Feature, it.Version), err)
		}
		if slices.ContainsFunc(it.Latency.Bins, func(b sketch.Bin) bool { return b.Count > maxDelta }) || it.Latency.Zero > maxDelta {
			return t, false, fmt.Errorf("%w: %s: a latency count above %d", ErrInvalid, config.ReleaseID(it.Feature, it.Version), int64(maxDelta))
		}
	}
	rels := maps.Clone(t.Releases)
	if rels == nil {
		rels = map[string]Release{}
	}
	minute := now.UTC().Truncate(time.Minute)
	for _, it := range items {
		if (it.Counters.zero() && it.Latency.Count() == 0) || !exists(it.Feature, it.Version) {
			continue
		}
		id := config.ReleaseID(it.Feature, it.Version)
		r, ok := rels[id]
		if !ok {
			r = Release{Feature: it.Feature, Version: it.Version}
		}
		r.Counters = r.Counters.Add(it.Counters)
		r.Latency = r.Latency.Merge(it.Latency)
		r.Minutes = addMinute(r.Minutes, Minute{Start: minute, Counters: it.Counters, Latency: it.Latency})
		r.Updated = now
		rels[id] = r
	}
	// Buckets of releases idle for the whole window count in no window.
	for id, r := range rels {
		if n := len(r.Minutes); n > 0 && !r.Minutes[n-1].Start.After(minute.Add(-WindowMinutes*time.Minute)) {
			r.Minutes = nil
			rels[id] = r
		}
	}
	evict(rels)
	seqs := maps.Clone(t.Seqs)
	if seqs == nil {
		seqs = map[string]uint64{}
	}
	seqs[agent] = seq
	return Table{Releases: rels, Seqs: seqs}, false, nil
}

// addMinute adds m to the buckets, merging it into the one of the same
// minute, and drops buckets that fell out of the window; list is not
// changed.
func addMinute(list []Minute, m Minute) []Minute {
	i, found := slices.BinarySearchFunc(list, m.Start, func(x Minute, t time.Time) int { return x.Start.Compare(t) })
	out := slices.Clone(list)
	if found {
		out[i].Counters = out[i].Counters.Add(m.Counters)
		out[i].Latency = out[i].Latency.Merge(m.Latency)
	} else {
		out = slices.Insert(out, i, m)
	}
	cut := out[len(out)-1].Start.Add(-WindowMinutes * time.Minute)
	k := 0
	for k < len(out) && !out[k].Start.After(cut) {
		k++
	}
	if k == len(out) {
		return nil
	}
	return out[k:]
}

// evict drops the releases updated longest ago until at most MaxReleases
// remain; ties go by id, so every replica drops the same ones.
func evict(rels map[string]Release) {
	over := len(rels) - MaxReleases
	if over <= 0 {
		return
	}
	ids := slices.Collect(maps.Keys(rels))
	slices.SortFunc(ids, func(a, b string) int {
		if c := rels[a].Updated.Compare(rels[b].Updated); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, id := range ids[:over] {
		delete(rels, id)
	}
}

// Prune drops the counters of releases the configuration no longer has.
func (t Table) Prune(exists func(feature string, version int) bool) Table {
	var gone []string
	for id, r := range t.Releases {
		if !exists(r.Feature, r.Version) {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return t
	}
	rels := maps.Clone(t.Releases)
	for _, id := range gone {
		delete(rels, id)
	}
	t.Releases = rels
	return t
}

// checkTotal reports whether totals are what Add can make: counts within
// 0..maxTotal, a finite cost.
func (c Counters) checkTotal() error {
	for _, v := range []int64{c.Requests, c.Errors, c.ValidationFailures, c.FeedbackUp, c.FeedbackDown, c.InputTokens, c.OutputTokens} {
		if v < 0 || v > maxTotal {
			return fmt.Errorf("count %d outside 0..%d", v, int64(maxTotal))
		}
	}
	if math.IsNaN(c.CostUSD) || math.IsInf(c.CostUSD, 0) || c.CostUSD < 0 {
		return fmt.Errorf("cost %v is not a finite amount", c.CostUSD)
	}
	return nil
}

// Check reports whether a decoded table keeps the bounds every reader of
// it relies on: counts, sketches, minute buckets in order within the
// window, each release filed under its own id.
func (t Table) Check() error {
	if len(t.Releases) > MaxReleases || len(t.Seqs) > MaxAgents {
		return fmt.Errorf("%w: %d releases and %d agents, bounds %d and %d", ErrInvalid, len(t.Releases), len(t.Seqs), MaxReleases, MaxAgents)
	}
	for id, r := range t.Releases {
		if id != config.ReleaseID(r.Feature, r.Version) {
			return fmt.Errorf("%w: %s holds the counters of %s", ErrInvalid, id, config.ReleaseID(r.Feature, r.Version))
		}
		if len(r.Minutes) > WindowMinutes {
			return fmt.Errorf("%w: %s has %d minutes, more than %d", ErrInvalid, id, len(r.Minutes), WindowMinutes)
		}
		if err := r.Counters.checkTotal(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, id, err)
		}
		if err := r.Latency.Check(); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		for i, m := range r.Minutes {
			if i > 0 && !r.Minutes[i-1].Start.Before(m.Start) {
				return fmt.Errorf("%w: %s: minute buckets out of order", ErrInvalid, id)
			}
			if err := m.Counters.checkTotal(); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrInvalid, id, err)
			}
			if err := m.Latency.Check(); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
		}
	}
	return nil
}
