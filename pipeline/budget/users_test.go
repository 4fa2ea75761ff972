package budget

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"gantry/config"
)

// userScope is user's counter of a per-user budget of limit USD a day.
func userScope(budget string, limit float64, user string) Scope {
	b := config.Budget{Name: budget, Scope: config.ScopeUser, Period: config.PeriodDay, LimitUSD: limit}
	return ScopesFor(&config.Config{Budgets: []config.Budget{b}}, Subject{User: user})[0]
}

// spendAs reserves amount for user and settles it in full.
func spendAs(t testing.TB, l *Local, id string, amount float64, s Scope) error {
	t.Helper()
	if _, err := l.Reserve(context.Background(), Reservation{RequestID: id, Scopes: []Scope{s}, AmountUSD: amount}); err != nil {
		return err
	}
	if err := l.Settle(id, amount); err != nil {
		t.Fatalf("settle %s: %v", id, err)
	}
	return nil
}

func TestUserCountersStayWithinTheBound(t *testing.T) {
	l := NewLocal(Options{MaxUsers: 64})
	for i := range 5000 {
		if err := spendAs(t, l, fmt.Sprint("r", i), 0.01, userScope("per-user", 1, fmt.Sprint("user-", i))); err != nil {
			t.Fatalf("user %d: %v", i, err)
		}
		if st := l.Stats(); st.Users > 64 {
			t.Fatalf("after %d users the ledger holds %d counters, more than the bound of 64", i+1, st.Users)
		}
	}
	st := l.Stats()
	if st.Forgotten < 5000-64 {
		t.Fatalf("forgot %d users of 5000 with room for 64", st.Forgotten)
	}
	if n := len(l.counters); n > 64 {
		t.Fatalf("%d counters in the map", n)
	}
}

// TestForgottenUserCannotEscapeTheBudget has a user spend most of a per-user
// budget, floods the ledger with other users until that user's counter is
// let go, and checks the user still cannot spend past the limit.
func TestForgottenUserCannotEscapeTheBudget(t *testing.T) {
	l := NewLocal(Options{MaxUsers: 32})
	heavy := userScope("per-user", 1, "heavy")
	if err := spendAs(t, l, "h1", 0.9, heavy); err != nil {
		t.Fatal(err)
	}
	for i := 0; l.counters[heavy.Key] != nil; i++ {
		if i > 10000 {
			t.Fatal("the heavy user's counter was never let go")
		}
		if err := spendAs(t, l, fmt.Sprint("f", i), 0.001, userScope("per-user", 1, fmt.Sprint("flood-", i))); err != nil {
			t.Fatalf("flood user %d: %v", i, err)
		}
	}
	err := spendAs(t, l, "h2", 0.2, heavy)
	var ex *ExceededError
	if !errors.As(err, &ex) {
		t.Fatalf("a forgotten user spending 0.9 + 0.2 of 1 USD got %v, want the budget exceeded", err)
	}
	if ex.SpentUSD < 0.9 {
		t.Fatalf("the returning user's counter starts at %v, below the 0.9 it spent", ex.SpentUSD)
	}
	// What is left still serves: 0.9 + 0.05 fits.
	if err := spendAs(t, l, "h3", 0.05, heavy); err != nil {
		t.Fatalf("the returning user's remaining budget refused: %v", err)
	}
	// A user forgotten twice is not charged twice for the same spend.
	for i := 0; l.counters[heavy.Key] != nil; i++ {
		if err := spendAs(t, l, fmt.Sprint("g", i), 0.001, userScope("per-user", 1, fmt.Sprint("again-", i))); err != nil {
			t.Fatal(err)
		}
	}
	if u := l.Usage(heavy); u.SpentUSD < 0.95-1e-9 || u.SpentUSD > 0.96 {
		t.Fatalf("after a second return the user's spend is %v, want about 0.95", u.SpentUSD)
	}
}

func TestUsersFullWhenEveryUserHoldsAReservation(t *testing.T) {
	l := NewLocal(Options{MaxUsers: 2})
	ctx := context.Background()
	for i, u := range []string{"a", "b"} {
		if _, err := l.Reserve(ctx, Reservation{RequestID: fmt.Sprint("r", i), Scopes: []Scope{userScope("pu", 1, u)}, AmountUSD: 0.1}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := l.Reserve(ctx, Reservation{RequestID: "r3", Scopes: []Scope{userScope("pu", 1, "c")}, AmountUSD: 0.1})
	if !errors.Is(err, ErrUsersFull) {
		t.Fatalf("a third user with both counters in flight got %v, want ErrUsersFull", err)
	}
	if err := l.Settle("r0", 0.1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, Reservation{RequestID: "r4", Scopes: []Scope{userScope("pu", 1, "c")}, AmountUSD: 0.1}); err != nil {
		t.Fatalf("after a settle made room: %v", err)
	}
}

func TestForgottenSpendEndsWithThePeriod(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := NewLocal(Options{MaxUsers: 4, Clock: func() time.Time { return now }})
	heavy := userScope("pu", 1, "heavy")
	if err := spendAs(t, l, "h1", 0.9, heavy); err != nil {
		t.Fatal(err)
	}
	for i := 0; l.counters[heavy.Key] != nil; i++ {
		if err := spendAs(t, l, fmt.Sprint("f", i), 0.001, userScope("pu", 1, fmt.Sprint("flood-", i))); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(24 * time.Hour)
	l.Reap(now)
	if len(l.forgotten) != 0 {
		t.Fatalf("the aggregate of a past day outlived it")
	}
	if err := spendAs(t, l, "h2", 0.9, heavy); err != nil {
		t.Fatalf("a new day refused the user: %v", err)
	}
}

func TestTopListsTheHeaviestUsers(t *testing.T) {
	l := NewLocal(Options{})
	g := scope("g", config.BudgetBlock, 100, config.PeriodTotal)
	if err := spendAs(t, l, "g1", 1, g); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := spendAs(t, l, fmt.Sprint("u", i), float64(i+1)/100, userScope("pu", 1, fmt.Sprint("user-", i))); err != nil {
			t.Fatal(err)
		}
	}
	top, users := l.Top(3)
	if users != 10 || len(top) != 4 {
		t.Fatalf("top lists %d counters of %d users, want 4 (the global budget and 3 users) of 10", len(top), users)
	}
	want := map[string]bool{"g": true, "pu/user:user-9": true, "pu/user:user-8": true, "pu/user:user-7": true}
	for _, u := range top {
		if !want[u.Scope] {
			t.Fatalf("top lists %s; want the global budget and the three heaviest users", u.Scope)
		}
	}
}

// BenchmarkMillionUsers spends as one million distinct end users against a
// per-user budget and reports the live heap after the run, so the bound on
// memory is measured, not assumed. The one-user run is the baseline: what
// a million calls cost whoever makes them (the ended request ids kept for
// idempotence); the difference is what the users cost.
func BenchmarkMillionUsers(b *testing.B) {
	for _, bc := range []struct {
		name     string
		distinct bool
	}{{"distinct", true}, {"one-user", false}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				l := NewLocal(Options{})
				name := make([]byte, 0, 64)
				for i := range 1_000_000 {
					name = fmt.Appendf(name[:0], "user-%09d-with-a-longer-name-as-callers-send", i)
					if !bc.distinct {
						name = append(name[:0], "the-only-user"...)
					}
					if err := spendAs(b, l, "r"+strconv.Itoa(i), 1e-7, userScope("per-user", 1, string(name))); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-heap")
				b.ReportMetric(float64(l.Stats().Users), "counters")
				runtime.KeepAlive(l)
			}
		})
	}
}
