package trace

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultQueue is the Recorder queue length when none is given.
const DefaultQueue = 4096

// Recorder hands finished traces from the request path to a Store without
// ever making the request wait. Traces wait in a bounded queue that one
// goroutine, owned by the Recorder, drains into the store. When the queue
// is full the oldest queued trace is dropped: under overload the newest
// traces are the ones operators look at.
type Recorder struct {
	store  *Store
	onDrop func()

	mu     sync.Mutex
	buf    []*Trace // ring of len cap
	head   int
	n      int
	closed bool

	wake    chan struct{} // cap 1: work is queued
	stop    chan struct{} // closed by Close: drain and exit
	abandon chan struct{} // closed when Close's context ends: exit now
	done    chan struct{} // closed when the goroutine has exited
	once    sync.Once

	recorded, dropped atomic.Uint64
}

// RecorderStats describe a Recorder.
type RecorderStats struct {
	Queued   int    `json:"queued"`
	Capacity int    `json:"capacity"`
	Recorded uint64 `json:"recorded"`
	Dropped  uint64 `json:"dropped"`
}

// NewRecorder starts a recorder writing into store with room for queue
// traces (DefaultQueue when queue <= 0). onDrop, if not nil, is called
// once for every trace dropped, on whichever goroutine dropped it (often
// the request's), so it must be cheap and must not block; a metrics
// counter's Inc is the intended use. Close stops the recorder.
func NewRecorder(store *Store, queue int, onDrop func()) *Recorder {
	if queue <= 0 {
		queue = DefaultQueue
	}
	r := &Recorder{
		store:   store,
		onDrop:  onDrop,
		buf:     make([]*Trace, queue),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		abandon: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go r.run()
	return r
}

// Record queues t for the store and returns at once. The recorder takes
// ownership of t. After Close, t is dropped and counted.
func (r *Recorder) Record(t *Trace) {
	if t == nil {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.drop()
		return
	}
	full := r.n == len(r.buf)
	// Only the first trace into an empty queue wakes the goroutine: it
	// drains until empty before it sleeps, so a wake per trace would only
	// cost producers a scheduler call each.
	wake := r.n == 0
	if full {
		// Overwrite the oldest slot and advance past it.
		r.buf[r.head] = t
		r.head = (r.head + 1) % len(r.buf)
	} else {
		r.buf[(r.head+r.n)%len(r.buf)] = t
		r.n++
	}
	r.mu.Unlock()
	if full {
		r.drop()
	}
	if wake {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (r *Recorder) drop() {
	r.dropped.Add(1)
	if r.onDrop != nil {
		r.onDrop()
	}
}

// take moves up to len(batch) queued traces into batch.
func (r *Recorder) take(batch []*Trace) []*Trace {
	batch = batch[:0]
	r.mu.Lock()
	for r.n > 0 && len(batch) < cap(batch) {
		batch = append(batch, r.buf[r.head])
		r.buf[r.head] = nil
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	r.mu.Unlock()
	return batch
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]*Trace, 0, 256)
	for {
		select {
		case <-r.wake:
		case <-r.stop:
			for {
				if batch = r.take(batch); len(batch) == 0 {
					return
				}
				if !r.write(batch) {
					return
				}
			}
		}
		// Drain fully before sleeping so a burst is written in batches.
		for {
			if batch = r.take(batch); len(batch) == 0 {
				break
			}
			if !r.write(batch) {
				return
			}
		}
		r.store.Flush()
	}
}

// write stores batch; it reports false when Close gave up waiting.
func (r *Recorder) write(batch []*Trace) bool {
	for i, t := range batch {
		select {
		case <-r.abandon:
			for range batch[i:] {
				r.drop()
			}
			r.dropRest()
			return false
		default:
		}
		t.Complete()
		r.store.Add(t)
		r.recorded.Add(1)
		batch[i] = nil
	}
	return true
}

// dropRest counts what is still queued as dropped.
func (r *Recorder) dropRest() {
	r.mu.Lock()
	n := r.n
	clear(r.buf)
	r.n = 0
	r.mu.Unlock()
	for range n {
		r.drop()
	}
}

// Close stops accepting traces, writes those queued into the store, and
// stops the goroutine. If ctx ends first, the rest are dropped and counted,
// and Close returns ctx's error once the goroutine has stopped. Close does
// not close the store. It is safe to call more than once.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.stop)
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.giveUp()
		<-r.done
		return ctx.Err()
	}
}

func (r *Recorder) giveUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.abandon:
	default:
		close(r.abandon)
	}
}

// Stats returns the recorder's current figures.
func (r *Recorder) Stats() RecorderStats {
	r.mu.Lock()
	q := r.n
	r.mu.Unlock()
	return RecorderStats{Queued: q, Capacity: len(r.buf), Recorded: r.recorded.Load(), Dropped: r.dropped.Load()}
}
