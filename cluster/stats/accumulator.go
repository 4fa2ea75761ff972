package stats

import (
	"gantry/eval/sketch"

	"cmp"
	"slices"
	"sync"
	"time"
)

// maxPending bounds the releases an accumulator holds deltas for; calls of
// further releases are not counted until a batch makes room. Releases come
// from the configuration, so this is far above what it holds.
const maxPending = 10 * MaxItems

// Call is what one finished call adds to its release.
type Call struct {
	Error            bool
	ValidationFailed bool
	LatencyMs        float64
	CostUSD          float64
	InputTokens      int64
	OutputTokens     int64
}

// Accumulator is an agent's counts not yet committed. Record and Feedback
// are cheap and never wait on the network; a loop owned by the agent takes
// NextBatch every few seconds, commits it, and calls Acked. A batch not
// acknowledged is handed out again unchanged, with the same sequence, while
// new counts gather for the next one: each count is committed exactly once.
type Accumulator struct {
	mu      sync.Mutex
	agent   string
	pending map[releaseKey]*delta
	batch   *Batch    // the batch being committed, resent until acknowledged
	at      time.Time // when batch was cut, sent as its command time
	seq     uint64    // last batch sequence used
}

type releaseKey struct {
	feature string
	version int
}

type delta struct {
	Counters
	latency *sketch.Builder
}

// NewAccumulator returns an empty accumulator for agent. Before its first
// batch the agent must Resume from the sequence the cluster holds for it.
func NewAccumulator(agent string) *Accumulator {
	return &Accumulator{agent: agent, pending: map[releaseKey]*delta{}}
}

func (a *Accumulator) delta(feature string, version int) *delta {
	k := releaseKey{feature, version}
	d := a.pending[k]
	if d == nil {
		if len(a.pending) >= maxPending {
			return nil
		}
		d = &delta{latency: sketch.NewBuilder()}
		a.pending[k] = d
	}
	return d
}

// Record counts one finished call of a release.
func (a *Accumulator) Record(feature string, version int, c Call) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.delta(feature, version)
	if d == nil {
		return
	}
	d.Requests++
	if c.Error {
		d.Errors++
	}
	if c.ValidationFailed {
		d.ValidationFailures++
	}
	d.CostUSD += c.CostUSD
	d.InputTokens += c.InputTokens
	d.OutputTokens += c.OutputTokens
	d.latency.Add(c.LatencyMs)
}

// Feedback moves a trace of a release between feedback classes: up and
// down are each -1, 0 or +1.
func (a *Accumulator) Feedback(feature string, version int, up, down int64) {
	if up == 0 && down == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := a.delta(feature, version); d != nil {
		d.FeedbackUp += up
		d.FeedbackDown += down
	}
}

// Resume moves the batch sequence up to seq, the agent's last batch the
// cluster committed: a batch numbered at or below it would be taken for a
// duplicate and its counts dropped.
func (a *Accumulator) Resume(seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq > a.seq && a.batch == nil {
		a.seq = seq
	}
}

// NextBatch returns the batch to commit and the time to commit it at: the
// unacknowledged one again, or a new one, cut at now, of everything counted
// since. ok is false when there is nothing to commit.
func (a *Accumulator) NextBatch(now time.Time) (b Batch, at time.Time, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.batch != nil {
		return *a.batch, a.at, true
	}
	if len(a.pending) == 0 {
		return Batch{}, time.Time{}, false
	}
	keys := make([]releaseKey, 0, len(a.pending))
	for k := range a.pending {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y releaseKey) int {
		return cmp.Or(cmp.Compare(x.feature, y.feature), cmp.Compare(x.version, y.version))
	})
	keys = keys[:min(len(keys), MaxItems)]
	a.seq++
	nb := Batch{Agent: a.agent, Seq: a.seq, Items: make([]Item, 0, len(keys))}
	for _, k := range keys {
		d := a.pending[k]
		nb.Items = append(nb.Items, Item{Feature: k.feature, Version: k.version, Counters: d.Counters, Latency: d.latency.Sketch()})
		delete(a.pending, k)
	}
	a.batch, a.at = &nb, now
	return nb, now, true
}

// Acked marks batch seq committed, so the next batch is a new one.
func (a *Accumulator) Acked(seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.batch != nil && a.batch.Seq == seq {
		a.batch = nil
	}
}
