package limit

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/config"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newLimiter() (*Limiter, *fakeClock) {
	c := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(Options{Clock: c.Now}), c
}

func acquire(t *testing.T, l *Limiter, est int, scopes ...Scope) (*Permit, Status, *LimitError) {
	t.Helper()
	p, st, err := l.Acquire(context.Background(), scopes, est)
	if err == nil {
		return p, st, nil
	}
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrLimited) {
		t.Fatalf("unexpected error %v", err)
	}
	return nil, st, le
}

func TestRequestsPerMinute(t *testing.T) {
	l, clock := newLimiter()
	s := Scope{Name: "key:a", Limit: config.RateLimit{RPM: 3}}
	for i := 0; i < 3; i++ {
		p, st, le := acquire(t, l, 0, s)
		if le != nil {
			t.Fatalf("request %d refused: %v", i, le)
		}
		if st.LimitRequests != 3 || st.RemainingRequests != 2-i {
			t.Fatalf("request %d: status %+v", i, st)
		}
		p.Done(0)
	}
	_, st, le := acquire(t, l, 0, s)
	if le == nil || le.Dimension != Requests || le.RetryAfter != 20*time.Second || st.RetryAfter != 20*time.Second {
		t.Fatalf("4th request: %v status %+v, want refusal with retry after 20s", le, st)
	}
	clock.Add(20 * time.Second)
	if _, _, le := acquire(t, l, 0, s); le != nil {
		t.Fatalf("after refill: %v", le)
	}
}

func TestTokensEstimateAndCorrection(t *testing.T) {
	l, _ := newLimiter()
	s := Scope{Name: "team:core", Limit: config.RateLimit{TPM: 1000}}
	p, _, le := acquire(t, l, 600, s)
	if le != nil {
		t.Fatal(le)
	}
	if _, _, le := acquire(t, l, 600, s); le == nil || le.Dimension != Tokens || le.RetryAfter <= 0 {
		t.Fatalf("second estimate should wait for tokens: %v", le)
	}
	p.Done(100) // the call used far fewer tokens than estimated
	p.Done(0)   // a second Done changes nothing
	p2, st, le := acquire(t, l, 600, s)
	if le != nil {
		t.Fatalf("after correction: %v", le)
	}
	if st.RemainingTokens != 300 {
		t.Fatalf("remaining tokens %d, want 300", st.RemainingTokens)
	}
	p2.Done(1600) // more than estimated: the bucket goes into debt
	if _, st, le := acquire(t, l, 1, s); le == nil || st.RemainingTokens != 0 {
		t.Fatalf("debt not enforced: %v %+v", le, st)
	}
}

func TestNeverFits(t *testing.T) {
	l, _ := newLimiter()
	s := Scope{Name: "feature:f", Limit: config.RateLimit{TPM: 1000, RPM: 1}}
	other := Scope{Name: "key:k", Limit: config.RateLimit{RPM: 1}}
	if _, _, le := acquire(t, l, 0, other); le != nil {
		t.Fatal(le)
	}
	_, st, le := acquire(t, l, 5000, other, s)
	if le == nil || le.Scope != "feature:f" || le.RetryAfter != 0 || st.RetryAfter != 0 {
		t.Fatalf("got %v, want a never-fits refusal of feature:f", le)
	}
}

func TestConcurrencyReleasedOnce(t *testing.T) {
	l, _ := newLimiter()
	s := Scope{Name: "key:a", Limit: config.RateLimit{MaxConcurrent: 2}}
	p1, _, _ := acquire(t, l, 0, s)
	p2, _, _ := acquire(t, l, 0, s)
	if p1 == nil || p2 == nil {
		t.Fatal("first two refused")
	}
	if _, _, le := acquire(t, l, 0, s); le == nil || le.Dimension != Concurrent || le.RetryAfter != time.Second {
		t.Fatalf("third: %v", le)
	}
	p1.Done(0)
	p1.Done(0)
	p1.Done(-1)
	if got := l.InFlight("key:a"); got != 1 {
		t.Fatalf("in flight %d after triple Done, want 1", got)
	}
	var nilPermit *Permit
	nilPermit.Done(0)
	p2.Done(0)
	if got := l.InFlight("key:a"); got != 0 {
		t.Fatalf("in flight %d, want 0", got)
	}
}

func TestAllOrNothing(t *testing.T) {
	l, _ := newLimiter()
	roomy := Scope{Name: "key:a", Limit: config.RateLimit{RPM: 100, TPM: 10000, MaxConcurrent: 10}}
	tight := Scope{Name: "team:t", Limit: config.RateLimit{RPM: 1}}
	if _, _, le := acquire(t, l, 10, tight); le != nil {
		t.Fatal(le)
	}
	if _, _, le := acquire(t, l, 500, roomy, tight); le == nil {
		t.Fatal("tight scope did not refuse")
	}
	_, st, le := acquire(t, l, 0, roomy)
	if le != nil || st.RemainingRequests != 99 || st.RemainingTokens != 10000 || l.InFlight("key:a") != 1 {
		t.Fatalf("refused request took from the roomy scope: %+v inflight %d", st, l.InFlight("key:a"))
	}
}

func TestConfigChangeKeepsCounters(t *testing.T) {
	l, _ := newLimiter()
	s := Scope{Name: "key:a", Limit: config.RateLimit{RPM: 10}}
	for i := 0; i < 5; i++ {
		if _, _, le := acquire(t, l, 0, s); le != nil {
			t.Fatal(le)
		}
	}
	// The limit drops to 4: the 5 already used exhaust it.
	s.Limit.RPM = 4
	if _, _, le := acquire(t, l, 0, s); le == nil {
		t.Fatal("lowered limit not applied")
	}
	// Raised to 100: the 5 used still count; a fresh counter would leave 99.
	s.Limit.RPM = 100
	if _, st, le := acquire(t, l, 0, s); le != nil || st.RemainingRequests != 94 {
		t.Fatalf("raised limit: %v %+v, want admitted with 94 left", le, st)
	}
}

func TestShare(t *testing.T) {
	c := &fakeClock{now: time.Unix(0, 0)}
	l := New(Options{Clock: c.Now, Share: func() float64 { return 1.0 / 3 }})
	s := Scope{Name: "key:a", Limit: config.RateLimit{RPM: 9, MaxConcurrent: 3}}
	admitted := 0
	for i := 0; i < 9; i++ {
		if p, _, le := acquire(t, l, 0, s); le == nil {
			admitted++
			p.Done(0)
		}
	}
	if admitted != 3 {
		t.Fatalf("admitted %d of a 9 RPM limit shared by 3 agents, want 3", admitted)
	}
}

func TestHeader(t *testing.T) {
	st := Status{LimitRequests: 60, RemainingRequests: 59, ResetRequests: 1500 * time.Microsecond,
		LimitTokens: 1000, RemainingTokens: 0, ResetTokens: time.Minute, RetryAfter: 1200 * time.Millisecond}
	h := http.Header{}
	st.Header(h)
	want := map[string]string{
		"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "2ms",
		"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m0s",
		"Retry-After": "2",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Fatalf("%s = %q, want %q", k, got, v)
		}
	}
	h = http.Header{}
	Status{}.Header(h)
	if len(h) != 0 {
		t.Fatalf("unlimited status wrote headers %v", h)
	}
}

func TestScopesFor(t *testing.T) {
	cfg := &config.Config{
		Keys:     []config.Key{{Name: "app", RateLimit: &config.RateLimit{RPM: 5}}, {Name: "free"}},
		Teams:    []config.Team{{Name: "core", RateLimit: &config.RateLimit{TPM: 100}}},
		Features: []config.Feature{{Name: "chat", RateLimit: &config.RateLimit{MaxConcurrent: 2}}},
	}
	got := ScopesFor(cfg, "app", "core", "chat")
	if len(got) != 3 || got[0].Name != "key:app" || got[1].Name != "team:core" || got[2].Name != "feature:chat" {
		t.Fatalf("got %+v", got)
	}
	if got := ScopesFor(cfg, "free", "", "none"); len(got) != 0 {
		t.Fatalf("unlimited key got scopes %+v", got)
	}
}

// TestContention hammers shared scopes from many goroutines with a frozen
// clock: the RPM limit admits exactly its capacity, and the concurrency
// limit is never exceeded and ends at zero.
func TestContention(t *testing.T) {
	l, _ := newLimiter()
	scopes := []Scope{
		{Name: "key:a", Limit: config.RateLimit{RPM: 500, MaxConcurrent: 4}},
		{Name: "team:t", Limit: config.RateLimit{TPM: 1 << 30}},
	}
	var running, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				p, _, err := l.Acquire(context.Background(), scopes, 10)
				if err != nil {
					if !errors.Is(err, ErrLimited) {
						t.Error(err)
					}
					continue
				}
				admitted.Add(1)
				n := running.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				running.Add(-1)
				p.Done(i % 20)
				p.Done(0)
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 500 {
		t.Fatalf("admitted %d, want exactly the RPM capacity of 500", admitted.Load())
	}
	if peak.Load() > 4 {
		t.Fatalf("peak concurrency %d > 4", peak.Load())
	}
	if l.InFlight("key:a") != 0 || l.InFlight("team:t") != 0 {
		t.Fatalf("slots left in flight: %d %d", l.InFlight("key:a"), l.InFlight("team:t"))
	}
}

func BenchmarkAcquire(b *testing.B) {
	l := New(Options{})
	scopes := []Scope{
		{Name: "key:a", Limit: config.RateLimit{RPM: 1e7, TPM: 1e9, MaxConcurrent: 1e5}},
		{Name: "team:t", Limit: config.RateLimit{RPM: 1e7, TPM: 1e9}},
		{Name: "feature:f", Limit: config.RateLimit{MaxConcurrent: 1e5}},
	}
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, _, err := l.Acquire(ctx, scopes, 100)
			if err != nil {
				continue
			}
			p.Done(80)
		}
	})
}
