package trace

import (
	"cmp"
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("trace not found")
	// ErrAmbiguous: a W3C trace id that several calls share names none
	// of them; look the calls up by their own ids (Query.TraceID lists
	// them).
	ErrAmbiguous     = errors.New("several calls share this trace id")
	ErrClosed        = errors.New("trace store closed")
	ErrFeedbackLimit = errors.New("trace has all the feedback it can hold")
	// ErrNotEvaluation: evaluation results go only on evaluation traffic.
	ErrNotEvaluation = errors.New("trace is not evaluation traffic")
)

// Default and hard limits. A store is bounded even when its caller asks
// for nothing in particular.
const (
	DefaultMaxCount = 10_000
	DefaultMaxBytes = 64 << 20

	// maxFeedback bounds the feedback one trace takes, which also bounds
	// the records it keeps alive on disk.
	maxFeedback = 16
	// MaxEvaluations bounds the evaluation results one trace takes: every
	// assertion of a case, shared ones included.
	MaxEvaluations = 64
	// maxEvalText bounds an evaluation's name and explanation.
	maxEvalText = 1 << 10
	// maxFeedbackText bounds a comment or correction.
	maxFeedbackText = 4 << 10
	// maxCaptured is what an oversized trace keeps of its input and output.
	maxCaptured = 1 << 10
	// minSegment keeps tiny byte bounds from producing a file per trace.
	minSegment = 4 << 10
	// maxSegment keeps a restart from reading one huge file.
	maxSegment = 64 << 20
)

// Limits bound a Store. Zero values take the defaults.
type Limits struct {
	MaxCount int   // traces kept
	MaxBytes int64 // bytes of the traces' JSON encoding kept
	// SegmentBytes is the size at which the store starts a new segment
	// file; default MaxBytes/8 within [4 KiB, 64 MiB].
	SegmentBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxCount <= 0 {
		l.MaxCount = DefaultMaxCount
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.SegmentBytes <= 0 {
		l.SegmentBytes = min(max(l.MaxBytes/8, minSegment), maxSegment)
	}
	return l
}

// Query selects traces. Empty fields match everything. Since is inclusive,
// Until exclusive; both compare with the trace's start.
type Query struct {
	// TraceID lists the calls of one W3C trace.
	TraceID string
	Feature string
	Release string
	// Model matches the model that answered or any model the call tried.
	Model  string
	Status string
	User   string
	KeyFP  string
	// ErrorKind matches the error code the client got or the failure of
	// any attempt (http_500, timeout, circuit_open, …).
	ErrorKind string
	// Text matches, case-insensitively, a substring of any field a trace
	// shows (see haystack).
	Text  string
	Since time.Time
	Until time.Time
	// Duration and cost ranges, inclusive; zero leaves an end open.
	MinDuration, MaxDuration Millis
	MinCost, MaxCost         float64
	// Sort orders the results: "" or SortTime newest first, SortDuration
	// slowest first, SortCost dearest first; ties newest first.
	Sort string
	// Limit caps the results; 0 means DefaultSearchLimit.
	Limit int
}

// Orders of Query.Sort.
const (
	SortTime     = "time"
	SortDuration = "duration"
	SortCost     = "cost"
)

// DefaultSearchLimit is the result count of a Query without a Limit.
const DefaultSearchLimit = 100

// Stats describe a store for the console and metrics.
type Stats struct {
	Count       int    `json:"count"`
	Bytes       int64  `json:"bytes"`
	MaxCount    int    `json:"max_count"`
	MaxBytes    int64  `json:"max_bytes"`
	DiskBytes   int64  `json:"disk_bytes"`
	Segments    int    `json:"segments"`
	Added       uint64 `json:"added"`
	Evicted     uint64 `json:"evicted"`      // pushed out by the bounds
	Dropped     uint64 `json:"dropped"`      // too large to keep even trimmed
	FeedDropped uint64 `json:"feed_dropped"` // summaries a slow subscriber lost
	Subscribers int    `json:"subscribers"`
	Skipped     uint64 `json:"skipped"`      // unreadable lines skipped on open
	WriteErrors uint64 `json:"write_errors"` // failed appends; the trace stays in memory
	LastError   string `json:"last_error,omitempty"`
}

// entry is one stored trace with what Search needs precomputed.
type entry struct {
	t    *Trace
	sum  Summary
	size int64
	hay  string // lower-cased text fields for Query.Text
	// kinds are the error code and the failures of the attempts, for
	// Query.ErrorKind; models the models tried, for Query.Model.
	kinds, models []string
	segs          []uint64 // segments holding this trace's records
	// dead is set when a later record of the same call replaced this one
	// (a hand-edited file); it waits for eviction, unlisted.
	dead bool
}

// Store keeps the most recent traces in memory within its limits and, when
// it has a directory, appends them to JSONL segment files so a restart
// keeps them. It is safe for concurrent use. Writers (Add, Feedback) are
// serialised; readers (Get, Search, Stats) only wait for the brief memory
// update, never for the disk.
type Store struct {
	lim Limits
	dir string

	wmu  sync.Mutex // serialises writers and owns the disk state below
	disk *segments
	done bool

	mu      sync.RWMutex // guards the memory index
	entries []*entry     // oldest first, from head
	head    int
	byID    map[string]*entry   // by call id
	byTrace map[string][]*entry // by W3C trace id, oldest first
	bytes   int64

	submu      sync.Mutex
	subs       map[*subscriber]struct{}
	subsClosed bool

	added, evicted, dropped, feedDropped, skipped, writeErrs atomic.Uint64
	lastErr                                                  atomic.Pointer[string]
}

// Open opens a store in dir, creating it if needed, and loads the newest
// traces found there within lim. An empty dir keeps traces in memory only.
// Unreadable lines, such as a line torn by a crash, are skipped and
// counted in Stats.Skipped.
func Open(dir string, lim Limits) (*Store, error) {
	s := &Store{
		lim:     lim.withDefaults(),
		dir:     dir,
		byID:    make(map[string]*entry),
		byTrace: make(map[string][]*entry),
		subs:    make(map[*subscriber]struct{}),
	}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open trace store: %w", err)
	}
	d, err := openSegments(dir, s.lim.SegmentBytes)
	if err != nil {
		return nil, fmt.Errorf("open trace store %s: %w", dir, err)
	}
	s.disk = d
	if err := d.load(s.lim.MaxBytes, s.replay); err != nil {
		return nil, fmt.Errorf("open trace store %s: %w", dir, err)
	}
	d.removeDead()
	return s, nil
}

// replay applies one record read back from disk.
func (s *Store) replay(rec *record, seg uint64) {
	switch {
	case rec.Trace != nil:
		t := rec.Trace
		upgrade(t)
		size, err := encodedSize(t)
		if err != nil || size > s.lim.MaxBytes || t.ID == "" {
			s.skipped.Add(1)
			return
		}
		s.disk.ref(seg)
		s.insert(t, size, seg)
	case rec.Feedback != nil:
		// Older records name the call by request id beside the W3C id.
		e := s.byID[rec.Feedback.RequestID]
		if e == nil {
			e = s.byID[rec.Feedback.ID]
		}
		if e == nil {
			return // its trace was evicted already
		}
		s.disk.ref(seg)
		s.attach(e, rec.Feedback.Feedback, seg)
	case rec.Evaluations != nil:
		e := s.byID[rec.Evaluations.ID]
		if e == nil {
			return
		}
		s.disk.ref(seg)
		s.attachEvaluations(e, rec.Evaluations.Evaluations, seg)
	default:
		s.skipped.Add(1)
	}
}

// Flush writes traces added so far to disk. The recorder calls it after
// each batch, so a crash loses at most the batch being written.
func (s *Store) Flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.disk == nil || s.done {
		return nil
	}
	if err := s.disk.flush(); err != nil {
		s.fail(err)
		return err
	}
	return nil
}

// Add stores a finished trace, evicting the oldest ones to stay within the
// limits, and publishes its summary to subscribers. The store takes
// ownership: the caller must not modify t afterwards. A trace without an
// id gets a new one. A trace too large for the byte bound keeps only the
// start of its input and output and loses its retrieval sources; if it is
// still too large, or cannot be encoded, it is dropped and counted. On disk it is buffered until Flush or Close.
func (s *Store) Add(t *Trace) {
	if t == nil {
		return
	}
	upgrade(t)
	if t.ID == "" {
		t.ID = NewTraceID().String()
	}
	le := getLineEncoder()
	defer le.release()
	line, size, err := le.traceLine(t)
	if err != nil { // a NaN or infinite number: nothing to keep
		s.note(fmt.Errorf("encode trace %s: %w", t.ID, err))
		s.dropped.Add(1)
		return
	}
	if size > s.lim.MaxBytes {
		t = trimmed(t)
		if line, size, err = le.traceLine(t); err != nil || size > s.lim.MaxBytes {
			s.dropped.Add(1)
			return
		}
	}

	s.wmu.Lock()
	if s.done {
		s.wmu.Unlock()
		s.dropped.Add(1)
		return
	}
	var seg uint64
	if s.disk != nil {
		var err error
		if seg, err = s.disk.append(line); err != nil {
			s.fail(fmt.Errorf("append trace %s: %w", t.ID, err))
		} else {
			s.disk.ref(seg)
		}
	}
	s.mu.Lock()
	e := s.insert(t, size, seg)
	sum := e.sum
	s.mu.Unlock()
	if s.disk != nil {
		s.disk.removeDead()
	}
	s.wmu.Unlock()

	s.added.Add(1)
	s.publish(sum)
}

// insert adds t to memory and evicts to the limits. Callers hold mu when
// readers may run.
func (s *Store) insert(t *Trace, size int64, seg uint64) *entry {
	e := &entry{t: t, sum: t.Summary(), size: size, hay: haystack(t), kinds: errorKinds(t), models: triedModels(t)}
	if seg != 0 {
		e.segs = []uint64{seg}
	}
	s.entries = append(s.entries, e)
	s.bytes += size
	if old := s.byID[t.ID]; old != nil {
		// A call id seen again (a hand-written file): the newer counts.
		s.unindexTrace(old)
		old.dead = true
	}
	s.byID[t.ID] = e
	if t.TraceID != "" {
		s.byTrace[t.TraceID] = append(s.byTrace[t.TraceID], e)
	}
	for len(s.entries)-s.head > s.lim.MaxCount || s.bytes > s.lim.MaxBytes {
		s.evictOldest()
	}
	return e
}

func (s *Store) evictOldest() {
	old := s.entries[s.head]
	s.entries[s.head] = nil
	s.head++
	s.bytes -= old.size
	if s.byID[old.t.ID] == old {
		delete(s.byID, old.t.ID)
	}
	if !old.dead {
		s.unindexTrace(old)
	}
	if s.disk != nil {
		for _, seg := range old.segs {
			s.disk.unref(seg)
		}
	}
	s.evicted.Add(1)
	// Compact once the dead prefix dominates, so memory stays bounded.
	if s.head > 1024 && s.head*2 > len(s.entries) {
		n := copy(s.entries, s.entries[s.head:])
		clear(s.entries[n:])
		s.entries = s.entries[:n]
		s.head = 0
	}
}

// unindexTrace drops e from its W3C trace's list. Evicted entries are the
// oldest, so they are almost always first.
func (s *Store) unindexTrace(e *entry) {
	id := e.t.TraceID
	list := s.byTrace[id]
	for i, x := range list {
		if x == e {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.byTrace, id)
	} else {
		s.byTrace[id] = list
	}
}

// lookup finds a call by its own id or, when id is a W3C trace id, the one
// call of that trace visible accepts (nil: every call). Callers hold mu.
func (s *Store) lookup(id string, visible func(*Trace) bool) (*entry, error) {
	if e, ok := s.byID[id]; ok && (visible == nil || visible(e.t)) {
		return e, nil
	}
	var found *entry
	for _, e := range s.byTrace[id] {
		if visible != nil && !visible(e.t) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%q: %w", id, ErrAmbiguous)
		}
		found = e
	}
	if found == nil {
		return nil, fmt.Errorf("%q: %w", id, ErrNotFound)
	}
	return found, nil
}

// Get returns a call by its id, or by a W3C trace id that exactly one
// stored call has. The trace must not be modified.
func (s *Store) Get(id string) (*Trace, bool) {
	t, err := s.Lookup(id, nil)
	return t, err == nil
}

// Lookup returns the call id names: by the call's own id, or by a W3C
// trace id that exactly one of the calls visible accepts belongs to (nil
// accepts every call). Feedback passes a filter of the caller's own calls,
// so another team's call in the same trace neither hides nor replaces
// them. It returns ErrNotFound or ErrAmbiguous. The trace must not be
// modified.
func (s *Store) Lookup(id string, visible func(*Trace) bool) (*Trace, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.lookup(id, visible)
	if err != nil {
		return nil, err
	}
	return e.t, nil
}

// Search returns the summaries of matching traces, newest first unless
// q.Sort asks for another order.
func (s *Store) Search(q Query) []Summary {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	text := strings.ToLower(q.Text)
	if strings.IndexByte(text, 0) >= 0 {
		return nil // the field separator: no field contains it
	}
	if q.Sort != "" && q.Sort != SortTime {
		return s.searchSorted(q, text, limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if q.TraceID != "" {
		list := s.byTrace[q.TraceID]
		out := make([]Summary, 0, min(limit, len(list)))
		for i := len(list) - 1; i >= 0 && len(out) < limit; i-- {
			if q.match(list[i], text) {
				out = append(out, list[i].sum)
			}
		}
		return out
	}
	limit = min(limit, len(s.entries)-s.head)
	out := make([]Summary, 0, limit)
	for i := len(s.entries) - 1; i >= s.head && len(out) < limit; i-- {
		if e := s.entries[i]; q.match(e, text) {
			out = append(out, e.sum)
		}
	}
	return out
}

// searchSorted answers a query in another order than time: every match
// competes for the page, so it keeps the best limit of them in a heap as
// it scans (the store's bound keeps the scan bounded) and copies only
// those.
func (s *Store) searchSorted(q Query, text string, limit int) []Summary {
	top := &pageHeap{by: q.Sort}
	offer := func(e *entry) {
		switch {
		case len(top.es) < limit:
			heap.Push(top, e)
		case compareSummaries(&e.sum, &top.es[0].sum, q.Sort) < 0:
			top.es[0] = e
			heap.Fix(top, 0)
		}
	}
	// Newest first, as ties are ordered: a tie then never displaces what
	// the heap holds.
	s.mu.RLock()
	list := s.entries[s.head:]
	if q.TraceID != "" {
		list = s.byTrace[q.TraceID]
	}
	for i := len(list) - 1; i >= 0; i-- {
		if e := list[i]; q.match(e, text) {
			offer(e)
		}
	}
	out := make([]Summary, len(top.es))
	for i, e := range top.es {
		out[i] = e.sum
	}
	s.mu.RUnlock()
	SortSummaries(out, q.Sort)
	return out
}

// pageHeap holds the best entries found so far with the one that would
// leave first (the last in the page's order) on top.
type pageHeap struct {
	es []*entry
	by string
}

func (h *pageHeap) Len() int           { return len(h.es) }
func (h *pageHeap) Less(i, j int) bool { return compareSummaries(&h.es[i].sum, &h.es[j].sum, h.by) > 0 }
func (h *pageHeap) Swap(i, j int)      { h.es[i], h.es[j] = h.es[j], h.es[i] }
func (h *pageHeap) Push(x any)         { h.es = append(h.es, x.(*entry)) }
func (h *pageHeap) Pop() any {
	e := h.es[len(h.es)-1]
	h.es = h.es[:len(h.es)-1]
	return e
}

// SortSummaries orders summaries by SortTime (newest first), SortDuration
// (slowest first) or SortCost (dearest first), ties newest first.
func SortSummaries(sums []Summary, by string) {
	slices.SortStableFunc(sums, func(a, b Summary) int { return compareSummaries(&a, &b, by) })
}

func compareSummaries(a, b *Summary, by string) int {
	switch by {
	case SortDuration:
		if c := cmp.Compare(b.Duration, a.Duration); c != 0 {
			return c
		}
	case SortCost:
		if c := cmp.Compare(b.CostUSD, a.CostUSD); c != 0 {
			return c
		}
	}
	if c := b.Start.Compare(a.Start); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID) // one order for calls of one instant
}

// Recent returns up to limit of the newest traces that started at or after
// since, newest first, for views that need more than summaries (attempts,
// time to first token). Traces are never changed in place, so the caller
// may read them without a lock; it must not change them.
func (s *Store) Recent(since time.Time, limit int) []*Trace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Trace, 0, min(limit, len(s.entries)-s.head))
	for i := len(s.entries) - 1; i >= s.head && len(out) < limit; i-- {
		e := s.entries[i]
		// Entries are in the order calls ended, so an older start may
		// follow: look at every one.
		if !e.dead && !e.t.Start.Before(since) {
			out = append(out, e.t)
		}
	}
	return out
}

func (q *Query) match(e *entry, text string) bool {
	t := &e.sum // inline in the entry: one pointer less per trace scanned
	switch {
	case e.dead:
		return false
	case q.TraceID != "" && q.TraceID != t.TraceID,
		q.Feature != "" && q.Feature != t.Feature,
		q.Release != "" && q.Release != t.Release,
		q.Model != "" && q.Model != t.Model && !slices.Contains(e.models, q.Model),
		q.Status != "" && q.Status != t.Status,
		q.User != "" && q.User != t.User,
		q.KeyFP != "" && q.KeyFP != t.KeyFP,
		q.ErrorKind != "" && !slices.Contains(e.kinds, q.ErrorKind),
		!q.Since.IsZero() && t.Start.Before(q.Since),
		!q.Until.IsZero() && !t.Start.Before(q.Until),
		q.MinDuration > 0 && t.Duration < q.MinDuration,
		q.MaxDuration > 0 && t.Duration > q.MaxDuration,
		q.MinCost > 0 && t.CostUSD < q.MinCost,
		q.MaxCost > 0 && t.CostUSD > q.MaxCost,
		text != "" && !strings.Contains(e.hay, text):
		return false
	}
	return true
}

// haystack joins the fields Query.Text looks in: every field the trace
// list and a trace's header show. The separator keeps a match from
// spanning two fields.
func haystack(t *Trace) string {
	f := []string{t.ID, t.TraceID, t.Feature, t.Release, t.Label, t.Requested, t.Route, t.Model, t.Provider,
		t.User, t.Key, t.Team, t.KeyFP, t.ClientAddr, t.UserAgent, t.Node, t.Journey, t.ErrorCode, t.Error}
	for _, a := range t.Attempts {
		if a.Error != "" {
			f = append(f, a.Error)
		}
	}
	return strings.ToLower(strings.Join(f, "\x00"))
}

// triedModels are the models the call's attempts went to, besides the one
// that answered, so a failing model's calls are found by its name even
// when none of them was answered by it.
func triedModels(t *Trace) []string {
	var out []string
	for _, a := range t.Attempts {
		if a.Model != t.Model && !slices.Contains(out, a.Model) {
			out = append(out, a.Model)
		}
	}
	return out
}

// errorKinds are the error code the client got and the failures of the
// call's attempts, without repeats.
func errorKinds(t *Trace) []string {
	var out []string
	if k := t.ErrorKind(); k != "" {
		out = append(out, k)
	}
	for _, a := range t.Attempts {
		if a.Status != "ok" && a.Status != "" && !slices.Contains(out, a.Status) {
			out = append(out, a.Status)
		}
	}
	return out
}

// Feedback attaches a user signal to a call, by the call's id or by a W3C
// trace id only that call has, and persists it. A zero Time means now. It
// returns ErrNotFound when the call is unknown or already evicted,
// ErrAmbiguous for a trace id of several calls, and ErrFeedbackLimit once
// the call holds 16 signals.
func (s *Store) Feedback(id string, fb Feedback) error {
	if err := fb.Validate(); err != nil {
		return err
	}
	if fb.Time.IsZero() {
		fb.Time = time.Now().UTC()
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.done {
		return ErrClosed
	}
	s.mu.RLock()
	e, err := s.lookup(id, nil)
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("feedback for %w", err)
	}
	if len(e.t.Feedback) >= maxFeedback {
		return fmt.Errorf("feedback for %q: %w (%d)", id, ErrFeedbackLimit, maxFeedback)
	}
	var seg uint64
	if s.disk != nil {
		line, err := feedbackLine(&feedbackRecord{ID: e.t.ID, Feedback: fb})
		if err != nil {
			return fmt.Errorf("feedback for %q: %w", id, err)
		}
		if seg, err = s.disk.append(line); err == nil {
			err = s.disk.flush() // feedback is rare and a user waits on it
		}
		if err != nil {
			s.fail(err)
			return fmt.Errorf("feedback for %q: %w", id, err)
		}
		s.disk.ref(seg)
	}
	s.mu.Lock()
	s.attach(e, fb, seg)
	s.mu.Unlock()
	if s.disk != nil {
		s.disk.removeDead()
	}
	return nil
}

// attach replaces e's trace by a copy carrying fb, so a trace handed out
// by Get never changes under its reader. Replay may meet more feedback
// than Feedback allows (a file written by hand); the oldest goes first.
func (s *Store) attach(e *entry, fb Feedback, seg uint64) {
	t := *e.t
	fbs := make([]Feedback, 0, min(len(t.Feedback)+1, maxFeedback))
	if n := len(t.Feedback); n >= maxFeedback {
		fbs = append(fbs, t.Feedback[n-maxFeedback+1:]...)
	} else {
		fbs = append(fbs, t.Feedback...)
	}
	t.Feedback = append(fbs, fb)
	e.t = &t
	e.sum.Feedback = t.Summary().Feedback
	if seg != 0 {
		e.segs = append(e.segs, seg)
	}
	// Keep the byte bound honest: feedback grows the encoding.
	if size, err := encodedSize(&t); err == nil {
		s.bytes += size - e.size
		e.size = size
	}
	for s.bytes > s.lim.MaxBytes && len(s.entries)-s.head > 1 {
		s.evictOldest()
	}
}

// Evaluate attaches evaluation results (gen_ai.evaluation.result events)
// to an evaluation trace, by trace id, and persists them. Results beyond
// MaxEvaluations are refused; a trace that is not evaluation traffic
// takes none (ErrNotEvaluation), so results cannot be pinned on
// production calls.
func (s *Store) Evaluate(id string, evs []Evaluation) error {
	if len(evs) == 0 {
		return errors.New("no evaluation results")
	}
	for i := range evs {
		if err := evs[i].Validate(); err != nil {
			return fmt.Errorf("evaluation %d: %w", i, err)
		}
		if evs[i].Time.IsZero() {
			evs[i].Time = time.Now().UTC()
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.done {
		return ErrClosed
	}
	s.mu.RLock()
	e := s.byID[id]
	s.mu.RUnlock()
	switch {
	case e == nil:
		return fmt.Errorf("evaluations for %q: %w", id, ErrNotFound)
	case e.t.EvalRun == "":
		return fmt.Errorf("evaluations for %q: %w", id, ErrNotEvaluation)
	case len(e.t.Evaluations)+len(evs) > MaxEvaluations:
		return fmt.Errorf("evaluations for %q: %d results with the %d it holds, more than %d", id, len(evs), len(e.t.Evaluations), MaxEvaluations)
	}
	var seg uint64
	if s.disk != nil {
		b, err := json.Marshal(record{Evaluations: &evaluationRecord{ID: e.t.ID, Evaluations: evs}})
		if err != nil {
			return fmt.Errorf("evaluations for %q: %w", id, err)
		}
		if seg, err = s.disk.append(append(b, '\n')); err == nil {
			err = s.disk.flush()
		}
		if err != nil {
			s.fail(err)
			return fmt.Errorf("evaluations for %q: %w", id, err)
		}
		s.disk.ref(seg)
	}
	s.mu.Lock()
	s.attachEvaluations(e, evs, seg)
	s.mu.Unlock()
	if s.disk != nil {
		s.disk.removeDead()
	}
	return nil
}

// attachEvaluations replaces e's trace by a copy carrying evs, as attach
// does for feedback.
func (s *Store) attachEvaluations(e *entry, evs []Evaluation, seg uint64) {
	t := *e.t
	all := append(append(make([]Evaluation, 0, len(t.Evaluations)+len(evs)), t.Evaluations...), evs...)
	if len(all) > MaxEvaluations {
		all = all[len(all)-MaxEvaluations:]
	}
	t.Evaluations = all
	e.t = &t
	if seg != 0 {
		e.segs = append(e.segs, seg)
	}
	if size, err := encodedSize(&t); err == nil {
		s.bytes += size - e.size
		e.size = size
	}
	for s.bytes > s.lim.MaxBytes && len(s.entries)-s.head > 1 {
		s.evictOldest()
	}
}

// Validate checks an evaluation result's values and sizes.
func (ev *Evaluation) Validate() error {
	switch {
	case ev.Name == "" || len(ev.Name) > 64:
		return errors.New("an evaluation needs a name (the assertion type) of at most 64 bytes")
	case ev.ScoreLabel != EvalPass && ev.ScoreLabel != EvalFail && ev.ScoreLabel != EvalError:
		return fmt.Errorf("score label %q: want %s, %s or %s", ev.ScoreLabel, EvalPass, EvalFail, EvalError)
	case ev.ScoreValue != nil && !(*ev.ScoreValue >= 0 && *ev.ScoreValue <= 1):
		return fmt.Errorf("score %v: want a number from 0 to 1", *ev.ScoreValue)
	case len(ev.Explanation) > maxEvalText || len(ev.ErrorType) > maxEvalText:
		return fmt.Errorf("explanation or error type longer than %d bytes", maxEvalText)
	}
	return nil
}

// Validate checks a feedback signal's values and sizes.
func (fb *Feedback) Validate() error {
	switch fb.Thumbs {
	case "", "up", "down":
	default:
		return fmt.Errorf("feedback thumbs %q: want up or down", fb.Thumbs)
	}
	if fb.Score != nil && !(*fb.Score >= 0 && *fb.Score <= 1) {
		return fmt.Errorf("feedback score %v: want a number from 0 to 1", *fb.Score)
	}
	if len(fb.Correction) > maxFeedbackText {
		return fmt.Errorf("feedback correction is %d bytes, limit %d", len(fb.Correction), maxFeedbackText)
	}
	if len(fb.Comment) > maxFeedbackText {
		return fmt.Errorf("feedback comment is %d bytes, limit %d", len(fb.Comment), maxFeedbackText)
	}
	if fb.Thumbs == "" && fb.Score == nil && fb.Correction == "" && fb.Comment == "" {
		return errors.New("feedback is empty: give thumbs, score, correction or comment")
	}
	return nil
}

// Summary is the short form of t. Its feedback column is the most recent
// thumbs or score.
func (t *Trace) Summary() Summary {
	s := Summary{
		ID:           t.ID,
		TraceID:      t.TraceID,
		Start:        t.Start,
		Duration:     t.Duration,
		Node:         t.Node,
		Feature:      t.Feature,
		Release:      t.Release,
		Model:        t.Model,
		Team:         t.Team,
		Key:          t.Key,
		User:         t.User,
		KeyFP:        t.KeyFP,
		Client:       t.ClientAddr,
		Provider:     t.Provider,
		Status:       t.Status,
		HTTPStatus:   t.HTTPStatus,
		ErrorCode:    t.ErrorCode,
		InputTokens:  t.InputTokens,
		OutputTokens: t.OutputTokens,
		CostUSD:      t.CostUSD,
		Validation:   len(t.Validation),
		Cached:       t.Cached,
		PriceUnknown: t.PriceUnknown,
		EvalRun:      t.EvalRun,
	}
	var failed []string
	for _, at := range t.Attempts {
		if at.Status != "" && at.Status != "ok" {
			failed = append(failed, at.Model+":"+at.Status)
		}
	}
	s.Failed = strings.Join(failed, " ")
	// A call no model answered shows the model it tried last, so its row
	// says which model failed and a model filter finds it.
	if s.Model == "" && len(t.Attempts) > 0 {
		last := t.Attempts[len(t.Attempts)-1]
		s.Model = last.Model
		if s.Provider == "" {
			s.Provider = last.Provider
		}
	}
	for i := len(t.Feedback) - 1; i >= 0; i-- {
		fb := &t.Feedback[i]
		if fb.Thumbs != "" {
			s.Feedback = fb.Thumbs
			break
		}
		if fb.Score != nil {
			s.Feedback = strconv.FormatFloat(*fb.Score, 'f', -1, 64)
			break
		}
	}
	return s
}

// trimmed returns a copy of t with its captured bodies cut short, for a
// trace too large to keep whole.
func trimmed(t *Trace) *Trace {
	c := *t
	c.Input = cut(c.Input, maxCaptured)
	c.Output = cut(c.Output, maxCaptured)
	c.Sources = nil
	if c.Attrs == nil {
		c.Attrs = map[string]string{}
	} else {
		c.Attrs = make(map[string]string, len(t.Attrs)+1)
		for k, v := range t.Attrs {
			c.Attrs[k] = v
		}
	}
	c.Attrs["gantry.trimmed"] = "true"
	return &c
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func encodedSize(t *Trace) (int64, error) {
	b, err := json.Marshal(t)
	return int64(len(b)), err
}

// fail records a failed write.
func (s *Store) fail(err error) {
	s.writeErrs.Add(1)
	s.note(err)
}

func (s *Store) note(err error) {
	msg := err.Error()
	s.lastErr.Store(&msg)
}

// Stats returns the store's current figures.
func (s *Store) Stats() Stats {
	st := Stats{
		MaxCount:    s.lim.MaxCount,
		MaxBytes:    s.lim.MaxBytes,
		Added:       s.added.Load(),
		Evicted:     s.evicted.Load(),
		Dropped:     s.dropped.Load(),
		FeedDropped: s.feedDropped.Load(),
		Skipped:     s.skipped.Load(),
		WriteErrors: s.writeErrs.Load(),
	}
	if p := s.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	s.mu.RLock()
	st.Count = len(s.entries) - s.head
	st.Bytes = s.bytes
	if s.disk != nil {
		st.DiskBytes, st.Segments = s.disk.total()
	}
	s.mu.RUnlock()
	s.submu.Lock()
	st.Subscribers = len(s.subs)
	s.submu.Unlock()
	return st
}

// Close flushes and closes the segment file and ends every subscription.
// Traces added after Close are dropped. Close is safe to call twice.
func (s *Store) Close() error {
	s.wmu.Lock()
	if s.done {
		s.wmu.Unlock()
		return nil
	}
	s.done = true
	var err error
	if s.disk != nil {
		s.mu.Lock()
		err = s.disk.close()
		s.mu.Unlock()
	}
	s.wmu.Unlock()

	s.submu.Lock()
	s.subsClosed = true
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.ch)
	}
	s.submu.Unlock()
	if err != nil {
		return fmt.Errorf("close trace store %s: %w", s.dir, err)
	}
	return nil
}

// upgrade brings a trace of the older shape, whose ID was the W3C trace id
// and RequestID the call's own, to the current one: ID the call, TraceID
// the W3C trace. A current trace (TraceID set, or ID and RequestID equal)
// is left alone.
func upgrade(t *Trace) {
	if t.TraceID == "" && t.RequestID != "" && t.ID != t.RequestID {
		t.TraceID, t.ID = t.ID, t.RequestID
	}
	if t.RequestID == "" {
		t.RequestID = t.ID
	}
}
