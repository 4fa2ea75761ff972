package trace

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRecorderWritesAndDrainsOnClose(t *testing.T) {
	s := open(t, t.TempDir(), Limits{})
	r := NewRecorder(s, 1000, nil)
	for i := range 500 {
		r.Record(mk(i))
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := s.Stats(); st.Count != 500 {
		t.Fatalf("store after Close: got %d traces, want 500", st.Count)
	}
	if st := r.Stats(); st.Recorded != 500 || st.Dropped != 0 || st.Queued != 0 {
		t.Fatalf("recorder stats: %+v", st)
	}
	r.Record(mk(600))
	if st := r.Stats(); st.Dropped != 1 {
		t.Fatalf("Record after Close: dropped %d, want 1", st.Dropped)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// blockingStore holds the recorder's goroutine inside the store's Add by
// holding the store's writer lock.
func blockStore(s *Store) (release func()) {
	s.wmu.Lock()
	var once sync.Once
	return func() { once.Do(s.wmu.Unlock) }
}

func TestRecorderDropsOldest(t *testing.T) {
	s := open(t, "", Limits{})
	var drops atomic.Int64
	r := NewRecorder(s, 4, func() { drops.Add(1) })
	release := blockStore(s)
	defer release()

	// The first trace is taken by the goroutine, which then waits on the
	// store; wait until it has left the queue.
	r.Record(mk(0))
	waitFor(t, func() bool { return r.Stats().Queued == 0 })
	for i := 1; i <= 10; i++ {
		r.Record(mk(i)) // never blocks although the store does
	}
	if got := drops.Load(); got != 6 {
		t.Fatalf("onDrop calls: got %d, want 6", got)
	}
	release()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.Search(Query{})); got != "10,9,8,7,0" {
		t.Fatalf("stored: got %s, want the first and the newest four: 10,9,8,7,0", got)
	}
	if st := r.Stats(); st.Dropped != 6 || st.Recorded != 5 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestRecorderCloseTimesOut(t *testing.T) {
	s := open(t, "", Limits{})
	r := NewRecorder(s, 8, nil)
	release := blockStore(s)
	r.Record(mk(0))
	waitFor(t, func() bool { return r.Stats().Queued == 0 })
	for i := 1; i <= 3; i++ {
		r.Record(mk(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.Close(ctx) }()
	// Close gives up waiting while its goroutine is inside Add; it returns
	// once that Add ends, with what is left counted as dropped.
	waitFor(t, func() bool {
		select {
		case <-r.abandon:
			return true
		default:
			return false
		}
	})
	release()
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: got %v, want DeadlineExceeded", err)
	}
	if st := r.Stats(); st.Recorded+st.Dropped != 4 || st.Queued != 0 {
		t.Fatalf("stats after abandoned Close: %+v, want recorded+dropped = 4", st)
	}
}

func TestRecorderConcurrentProducers(t *testing.T) {
	s := open(t, "", Limits{MaxCount: 100_000, MaxBytes: 256 << 20})
	var drops atomic.Int64
	r := NewRecorder(s, 64, func() { drops.Add(1) })
	const producers, each = 8, 300
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Record(mk(p*each + i))
			}
		}()
	}
	wg.Wait()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.Recorded+st.Dropped != producers*each {
		t.Fatalf("recorded %d + dropped %d != %d", st.Recorded, st.Dropped, producers*each)
	}
	if int64(st.Dropped) != drops.Load() {
		t.Fatalf("onDrop calls %d, stats dropped %d", drops.Load(), st.Dropped)
	}
	if got := s.Stats().Count; uint64(got) != st.Recorded {
		t.Fatalf("store holds %d, recorder wrote %d", got, st.Recorded)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkRecorderRecordParallel measures Record from parallel
// producers. "queue-only" holds the writer inside the store so the figure
// is the enqueue and drop-oldest cost a request pays; "with-writer" lets
// the writer run, so on a small machine it also pays for the CPU the
// writer takes.
func BenchmarkRecorderRecordParallel(b *testing.B) {
	for _, blocked := range []bool{true, false} {
		name := "with-writer"
		if blocked {
			name = "queue-only"
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open("", Limits{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r := NewRecorder(s, DefaultQueue, nil)
			defer r.Close(context.Background())
			if blocked {
				release := blockStore(s)
				defer release()
				r.Record(mk(0))
			}
			traces := make([]*Trace, 4096)
			for i := range traces {
				traces[i] = mk(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					r.Record(traces[i%len(traces)])
					i++
				}
			})
		})
	}
}
