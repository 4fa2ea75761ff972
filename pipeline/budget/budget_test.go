package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"gantry/config"
)

func scope(name, action string, limit float64, period string) Scope {
	b := config.Budget{Name: name, Scope: config.ScopeGlobal, Period: period, LimitUSD: limit, Action: action}
	if action == config.BudgetDowngrade {
		b.DowngradeRoute = "cheap"
	}
	return Scope{Key: name, Budget: b}
}

func reserve(t *testing.T, l *Local, id string, usd float64, scopes ...Scope) (Hold, error) {
	t.Helper()
	return l.Reserve(context.Background(), Reservation{RequestID: id, Scopes: scopes, AmountUSD: usd})
}

func TestReserveAllOrNothing(t *testing.T) {
	l := NewLocal(Options{})
	big := scope("big", config.BudgetBlock, 10, config.PeriodTotal)
	small := scope("small", config.BudgetBlock, 1, config.PeriodTotal)
	if _, err := reserve(t, l, "a", 0.8, big, small); err != nil {
		t.Fatal(err)
	}
	_, err := reserve(t, l, "b", 0.5, big, small)
	var ex *ExceededError
	if !errors.As(err, &ex) || ex.Budget != "small" || !errors.Is(err, ErrExceeded) {
		t.Fatalf("got %v, want small exceeded", err)
	}
	if ex.SpentUSD != 0 || ex.ReservedUSD != 0.8 || ex.AmountUSD != 0.5 || ex.LimitUSD != 1 {
		t.Fatalf("refusal state %+v", ex)
	}
	// The refused request left nothing on the budget that had room.
	if u := l.Usage(big); u.ReservedUSD != 0.8 {
		t.Fatalf("big reserved %v, want 0.8", u.ReservedUSD)
	}
}

func TestSettleReleaseIdempotent(t *testing.T) {
	tests := []struct {
		name      string
		steps     func(l *Local) error
		wantSpent float64
	}{
		{"settle twice counts once", func(l *Local) error {
			if err := l.Settle("r", 0.3); err != nil {
				return err
			}
			return l.Settle("r", 0.3)
		}, 0.3},
		{"release then release", func(l *Local) error {
			if err := l.Release("r"); err != nil {
				return err
			}
			return l.Release("r")
		}, 0},
		{"settle then release keeps the spend", func(l *Local) error {
			if err := l.Settle("r", 0.2); err != nil {
				return err
			}
			return l.Release("r")
		}, 0.2},
		{"release then late settle records the spend once", func(l *Local) error {
			if err := l.Release("r"); err != nil {
				return err
			}
			if err := l.Settle("r", 0.4); err != nil {
				return err
			}
			return l.Settle("r", 0.4)
		}, 0.4},
		{"reaped then late settle", func(l *Local) error {
			if n := l.Reap(time.Now().Add(time.Hour)); n != 1 {
				return fmt.Errorf("reaped %d, want 1", n)
			}
			return l.Settle("r", 0.1)
		}, 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLocal(Options{})
			s := scope("g", config.BudgetBlock, 1, config.PeriodTotal)
			if _, err := reserve(t, l, "r", 0.5, s); err != nil {
				t.Fatal(err)
			}
			if err := tt.steps(l); err != nil {
				t.Fatal(err)
			}
			u := l.Usage(s)
			if math.Abs(u.SpentUSD-tt.wantSpent) > 1e-9 || u.ReservedUSD != 0 {
				t.Fatalf("spent %v reserved %v, want spent %v reserved 0", u.SpentUSD, u.ReservedUSD, tt.wantSpent)
			}
			if st := l.Stats(); st.OpenHolds != 0 {
				t.Fatalf("open holds %d", st.OpenHolds)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	l := NewLocal(Options{MaxHolds: 2})
	s := scope("g", config.BudgetBlock, 100, config.PeriodTotal)
	if _, err := reserve(t, l, "", 1, s); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := reserve(t, l, "x", math.NaN(), s); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NaN amount: %v", err)
	}
	if _, err := reserve(t, l, "x", -1, s); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative amount: %v", err)
	}
	if _, err := reserve(t, l, "a", 1, s); err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(t, l, "a", 1, s); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := reserve(t, l, "b", 1, s); err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(t, l, "c", 1, s); !errors.Is(err, ErrFull) {
		t.Fatalf("full: %v", err)
	}
	if err := l.Settle("nope", 1); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown settle: %v", err)
	}
	if err := l.Release("nope"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown release: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Reserve(ctx, Reservation{RequestID: "d", AmountUSD: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestDowngradeAndAlert(t *testing.T) {
	var mu sync.Mutex
	var alerts []Alert
	l := NewLocal(Options{OnAlert: func(a Alert) { mu.Lock(); alerts = append(alerts, a); mu.Unlock() }})
	down := scope("down", config.BudgetDowngrade, 1, config.PeriodTotal)
	alert := scope("watch", config.BudgetAlert, 1, config.PeriodTotal)

	if _, err := reserve(t, l, "a", 0.9, down, alert); err != nil {
		t.Fatal(err)
	}
	_, err := reserve(t, l, "b", 0.5, down, alert)
	var dg *DowngradeError
	if !errors.As(err, &dg) || dg.Route != "cheap" || dg.Budget != "down" {
		t.Fatalf("got %v, want a downgrade to cheap", err)
	}
	if u := l.Usage(down); u.ReservedUSD != 0.9 {
		t.Fatalf("downgrade reserved something: %v", u.ReservedUSD)
	}
	h, err := l.Reserve(context.Background(), Reservation{RequestID: "b", Scopes: []Scope{down, alert}, AmountUSD: 0.2, Downgraded: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Alerts) != 1 || h.Alerts[0] != "watch" {
		t.Fatalf("hold alerts %v, want [watch]", h.Alerts)
	}
	if _, err := l.Reserve(context.Background(), Reservation{RequestID: "c", Scopes: []Scope{down, alert}, AmountUSD: 0.2, Downgraded: true}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(alerts) != 1 || alerts[0].Kind != AlertExceeded || alerts[0].Budget != "watch" {
		t.Fatalf("alerts %+v, want one exceeded alert for watch", alerts)
	}
}

func TestSoftThresholdOncePerPeriod(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)}
	var alerts []Alert
	l := NewLocal(Options{Clock: clock.Now, OnAlert: func(a Alert) { alerts = append(alerts, a) }})
	s := scope("daily", config.BudgetBlock, 1, config.PeriodDay)
	s.Budget.SoftThreshold = 0.5
	spend := func(id string, usd float64) {
		t.Helper()
		if _, err := reserve(t, l, id, usd, s); err != nil {
			t.Fatal(err)
		}
		if err := l.Settle(id, usd); err != nil {
			t.Fatal(err)
		}
	}
	spend("a", 0.4)
	if len(alerts) != 0 {
		t.Fatalf("alert below threshold: %+v", alerts)
	}
	spend("b", 0.2)
	spend("c", 0.1)
	if len(alerts) != 1 || alerts[0].Kind != AlertSoft {
		t.Fatalf("alerts %+v, want one soft alert", alerts)
	}
	// Day over: spend resets, and the alert may fire again.
	clock.Set(time.Date(2026, 2, 1, 0, 0, 1, 0, time.UTC))
	if u := l.Usage(s); u.SpentUSD != 0 || !u.PeriodStart.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after rollover: %+v", u)
	}
	spend("d", 0.6)
	if len(alerts) != 2 {
		t.Fatalf("alerts %+v, want a second soft alert in the new period", alerts)
	}
}

func TestPeriodRollover(t *testing.T) {
	tests := []struct {
		period      string
		from, to    time.Time
		wantSpentTo float64
	}{
		{config.PeriodDay, time.Date(2026, 5, 1, 23, 59, 0, 0, time.UTC), time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), 0},
		{config.PeriodDay, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 23, 59, 59, 0, time.UTC), 0.7},
		{config.PeriodMonth, time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 0},
		{config.PeriodMonth, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC), 0.7},
		{config.PeriodTotal, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC), 0.7},
	}
	for _, tt := range tests {
		t.Run(tt.period+"/"+tt.to.Format(time.DateTime), func(t *testing.T) {
			clock := &fakeClock{now: tt.from}
			l := NewLocal(Options{Clock: clock.Now})
			s := scope("b", config.BudgetBlock, 1, tt.period)
			if _, err := reserve(t, l, "a", 0.7, s); err != nil {
				t.Fatal(err)
			}
			if err := l.Settle("a", 0.7); err != nil {
				t.Fatal(err)
			}
			clock.Set(tt.to)
			if u := l.Usage(s); math.Abs(u.SpentUSD-tt.wantSpentTo) > 1e-9 {
				t.Fatalf("spent %v, want %v", u.SpentUSD, tt.wantSpentTo)
			}
			_, err := reserve(t, l, "b", 0.5, s)
			if wantOK := tt.wantSpentTo == 0; (err == nil) != wantOK {
				t.Fatalf("reserve after move: err %v, want ok=%v", err, wantOK)
			}
		})
	}
}

func TestReservedSurvivesRollover(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 5, 1, 23, 59, 0, 0, time.UTC)}
	l := NewLocal(Options{Clock: clock.Now})
	s := scope("b", config.BudgetBlock, 1, config.PeriodDay)
	if _, err := reserve(t, l, "a", 0.8, s); err != nil {
		t.Fatal(err)
	}
	clock.Set(clock.Now().Add(2 * time.Minute))
	if _, err := reserve(t, l, "b", 0.5, s); !errors.Is(err, ErrExceeded) {
		t.Fatalf("in-flight hold ignored after rollover: %v", err)
	}
	if err := l.Settle("a", 0.8); err != nil {
		t.Fatal(err)
	}
	if u := l.Usage(s); math.Abs(u.SpentUSD-0.8) > 1e-9 || u.ReservedUSD != 0 {
		t.Fatalf("settled into the new day: %+v", u)
	}
}

func TestRunReapsAndStops(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLocal(Options{Clock: clock.Now, ReapInterval: time.Millisecond, HoldTTL: time.Minute})
	s := scope("b", config.BudgetBlock, 1, config.PeriodTotal)
	if _, err := reserve(t, l, "a", 0.8, s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	clock.Set(clock.Now().Add(2 * time.Minute))
	for l.Stats().Reaped == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if u := l.Usage(s); u.ReservedUSD != 0 {
		t.Fatalf("reserved %v after reaping", u.ReservedUSD)
	}
	if _, err := reserve(t, l, "b", 0.9, s); err != nil {
		t.Fatalf("reaped capacity not reusable: %v", err)
	}
}

func TestDoneRetentionBounded(t *testing.T) {
	l := NewLocal(Options{MaxDone: 100})
	s := scope("b", config.BudgetBlock, 1e6, config.PeriodTotal)
	for i := 0; i < 5000; i++ {
		id := fmt.Sprint(i)
		if _, err := reserve(t, l, id, 0.01, s); err != nil {
			t.Fatal(err)
		}
		if err := l.Settle(id, 0.01); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Lock()
	n, _ := l.seen.size()
	l.mu.Unlock()
	if n > 100 {
		t.Fatalf("%d settled ids remembered, want at most 100", n)
	}
}

func TestScopesFor(t *testing.T) {
	cfg := &config.Config{
		Keys: []config.Key{{Name: "app", MaxBudgetUSD: 50}},
		Budgets: []config.Budget{
			{Name: "all", Scope: config.ScopeGlobal},
			{Name: "core", Scope: config.ScopeTeam, Match: "core"},
			{Name: "ops", Scope: config.ScopeTeam, Match: "ops"},
			{Name: "app", Scope: config.ScopeKey, Match: "app"},
			{Name: "chat", Scope: config.ScopeFeature, Match: "chat"},
			{Name: "each", Scope: config.ScopeUser},
		},
	}
	got := ScopesFor(cfg, Subject{Team: "core", Key: "app", Feature: "chat", User: "u1"})
	want := []string{"all", "core", "app", "chat", "each/user:u1", "key-cap:app"}
	if len(got) != len(want) {
		t.Fatalf("got %d scopes %+v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i].Key != want[i] {
			t.Fatalf("scope %d = %q, want %q", i, got[i].Key, want[i])
		}
	}
	if n := len(ScopesFor(cfg, Subject{})); n != 1 {
		t.Fatalf("anonymous subject: %d scopes, want the global one", n)
	}
}

func TestWorstCase(t *testing.T) {
	p := config.Price{Input: 2.5, Output: 10}
	if got, want := WorstCase(p, 1000, 500), (1000*2.5+500*10)/1e6; math.Abs(got-want) > 1e-12 {
		t.Fatalf("got %v want %v", got, want)
	}
}

func BenchmarkReserveSettle(b *testing.B) {
	l := NewLocal(Options{})
	scopes := []Scope{
		scope("global", config.BudgetBlock, 1e8, config.PeriodMonth),
		scope("team", config.BudgetBlock, 1e8, config.PeriodDay),
	}
	var seq sync.Mutex
	n := 0
	b.RunParallel(func(pb *testing.PB) {
		seq.Lock()
		base := n
		n++
		seq.Unlock()
		i := 0
		for pb.Next() {
			id := fmt.Sprintf("%d-%d", base, i)
			i++
			if _, err := l.Reserve(context.Background(), Reservation{RequestID: id, Scopes: scopes, AmountUSD: 0.01}); err != nil {
				b.Fatal(err)
			}
			if err := l.Settle(id, 0.005); err != nil {
				b.Fatal(err)
			}
		}
	})
}
