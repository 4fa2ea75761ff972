package budget

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"gantry/config"
)

// fakeClock is a settable wall clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// TestConcurrentBudgetNeverOverspends runs 600 concurrent requests against a
// global budget and small per-user budgets that afford only a few of them,
// with cancellations, failures, retried settles and abandoned requests mixed
// in. The ledger's decisions, in the order its lock made them, are replayed
// against a sequential model: every admission must have fit every budget,
// every refusal must have not fit, and no spend or reservation may be off.
func TestConcurrentBudgetNeverOverspends(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0}
	l := NewLocal(Options{Clock: clock.Now})

	var journal []journalEntry
	l.journal = func(e journalEntry) { journal = append(journal, e) } // runs under l.mu

	global := config.Budget{Name: "global", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 1.0}
	perUser := config.Budget{Name: "per-user", Scope: config.ScopeUser, Period: config.PeriodDay, LimitUSD: 0.35}
	cfg := &config.Config{Budgets: []config.Budget{global, perUser}}
	limits := map[string]int64{}

	const requests = 600
	const maxWorst = 0.12
	type outcome struct {
		refusal   *ExceededError
		abandoned bool
	}
	results := make([]outcome, requests)

	// A reaper runs throughout; only abandoned holds have passed deadlines.
	reapCtx, stopReap := context.WithCancel(context.Background())
	var reapWG sync.WaitGroup
	reapWG.Add(1)
	go func() {
		defer reapWG.Done()
		for reapCtx.Err() == nil {
			l.Reap(t0.Add(5 * time.Minute))
			time.Sleep(50 * time.Microsecond)
		}
	}()

	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < requests; i++ {
		user := fmt.Sprintf("u%d", i%7)
		scopes := ScopesFor(cfg, Subject{User: user})
		for _, s := range scopes {
			limits[s.Key] = toNanosRound(s.Budget.LimitUSD)
		}
		wg.Add(1)
		go func(i int, scopes []Scope) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			worst := 0.01 + rng.Float64()*(maxWorst-0.01)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			kind := rng.IntN(10)
			if kind == 0 {
				cancel() // the client went away before admission
			}
			<-start
			id := fmt.Sprintf("req-%d", i)
			r := Reservation{RequestID: id, Scopes: scopes, AmountUSD: worst, Deadline: t0.Add(10 * time.Minute)}
			if kind == 9 {
				r.Deadline = t0.Add(time.Minute) // will be abandoned
			}
			_, err := l.Reserve(ctx, r)
			var ex *ExceededError
			switch {
			case errors.As(err, &ex):
				results[i].refusal = ex
				return
			case err != nil:
				if kind != 0 || !errors.Is(err, context.Canceled) {
					t.Errorf("%s: unexpected error %v", id, err)
				}
				return
			}
			switch kind {
			case 1, 2: // provider failure: nothing spent
				mustOK(t, l.Release(id))
			case 3: // cancelled stream: partial cost, then a duplicate release
				mustOK(t, l.Settle(id, worst*rng.Float64()))
				mustOK(t, l.Release(id))
			case 4: // settle retried by the caller
				actual := worst * rng.Float64()
				mustOK(t, l.Settle(id, actual))
				mustOK(t, l.Settle(id, actual))
			case 9: // request vanished without ending its hold
				results[i].abandoned = true
			default:
				mustOK(t, l.Settle(id, worst*rng.Float64()))
			}
		}(i, scopes)
	}
	close(start)
	wg.Wait()
	stopReap()
	reapWG.Wait()
	l.Reap(t0.Add(5 * time.Minute))

	// Replay the journal against the sequential model.
	type state struct{ spent, reserved int64 }
	model := map[string]*state{}
	held := map[string][]Scope{}
	amounts := map[string]int64{}
	admitted, refused, reaped := 0, 0, 0
	for _, e := range journal {
		switch e.op {
		case "reserve":
			fits := true
			for _, s := range e.scopes {
				st := model[s.Key]
				if st == nil {
					st = &state{}
					model[s.Key] = st
				}
				fits = fits && st.spent+st.reserved+e.amount <= limits[s.Key]
			}
			if fits != e.admitted {
				t.Fatalf("%s: ledger admitted=%v, model says fits=%v", e.requestID, e.admitted, fits)
			}
			if !e.admitted {
				refused++
				continue
			}
			admitted++
			held[e.requestID], amounts[e.requestID] = e.scopes, e.amount
			for _, s := range e.scopes {
				model[s.Key].reserved += e.amount
			}
		case "settle", "release", "reap":
			if e.late {
				t.Fatalf("%s: late settle; no request in this test settles after its hold ended", e.requestID)
			}
			scopes, ok := held[e.requestID]
			if !ok {
				t.Fatalf("%s: %s without an open hold", e.requestID, e.op)
			}
			delete(held, e.requestID)
			for _, s := range scopes {
				model[s.Key].reserved -= amounts[e.requestID]
				if e.op == "settle" {
					if e.amount > amounts[e.requestID] {
						t.Fatalf("%s: settled more than reserved", e.requestID)
					}
					model[s.Key].spent += e.amount
				}
			}
			if e.op == "reap" {
				reaped++
			}
		}
	}
	if len(held) != 0 {
		t.Fatalf("%d holds left open after every request ended", len(held))
	}
	for key, st := range model {
		if st.reserved != 0 {
			t.Fatalf("%s: %d nano-USD still reserved", key, st.reserved)
		}
		if st.spent > limits[key] {
			t.Fatalf("%s: spent %d > limit %d", key, st.spent, limits[key])
		}
		u := l.Usage(Scope{Key: key, Budget: config.Budget{Period: config.PeriodDay, LimitUSD: toUSD(limits[key])}})
		if toNanosRound(u.SpentUSD) != st.spent || u.ReservedUSD != 0 {
			t.Fatalf("%s: ledger spent %v reserved %v, model spent %d", key, u.SpentUSD, u.ReservedUSD, st.spent)
		}
	}
	// Every refusal the callers saw carries a state in which the request did not fit.
	abandoned := 0
	for i, r := range results {
		if r.abandoned {
			abandoned++
		}
		if ex := r.refusal; ex != nil {
			if toNanosRound(ex.SpentUSD)+toNanosRound(ex.ReservedUSD)+toNanosRound(ex.AmountUSD) <= toNanosRound(ex.LimitUSD) {
				t.Fatalf("req-%d refused although it fit: %v", i, ex)
			}
		}
	}
	st := l.Stats()
	if st.OpenHolds != 0 || int(st.Reaped) != abandoned || reaped != abandoned {
		t.Fatalf("stats %+v, journal reaped %d, abandoned %d", st, reaped, abandoned)
	}
	if refused == 0 || admitted < 10 {
		t.Fatalf("admitted %d refused %d: the budget should admit some and refuse some", admitted, refused)
	}
	t.Logf("admitted %d, refused %d, reaped %d", admitted, refused, reaped)
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}
