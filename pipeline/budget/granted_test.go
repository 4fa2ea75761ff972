package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/cluster/spend"
	"gantry/config"
)

// trackedForTest mirrors the agent's rule: every budget by its own name
// except per-user ones.
func trackedForTest(s Scope) bool { return spend.Tracked(s.Budget) && s.Key == s.Budget.Name }

func newGranted(t *testing.T, grants map[string]float64) (*Granted, *spend.Wallet) {
	t.Helper()
	w := spend.NewWallet("a1", 0)
	for b, amount := range grants {
		w.Credit(b, "total", amount)
	}
	return NewGranted(NewLocal(Options{}), w, trackedForTest), w
}

// batchTotals drains the wallet's batches into totals per budget.
func batchTotals(w *spend.Wallet, into map[string]float64) {
	for {
		b, ok := w.NextBatch()
		if !ok {
			return
		}
		for _, it := range b.Items {
			into[it.Budget] += it.Amount
		}
		w.Acked(b.Seq)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestGrantedAdmission(t *testing.T) {
	user := scope("per-user", config.BudgetBlock, 100, config.PeriodTotal)
	user.Key = "per-user/user:ann"
	user.Budget.Scope = config.ScopeUser
	tests := []struct {
		name        string
		grants      map[string]float64
		scopes      []Scope
		amount      float64
		downgraded  bool
		wantErr     func(error) bool
		wantAlerts  []string
		wantBalance map[string]float64 // after the reservation
	}{
		{"covered by the grant", map[string]float64{"g": 1}, []Scope{scope("g", config.BudgetBlock, 100, config.PeriodTotal)}, 0.6,
			false, nil, nil, map[string]float64{"g": 0.4}},
		{"grant short though the local limit allows", map[string]float64{"g": 0.5}, []Scope{scope("g", config.BudgetBlock, 100, config.PeriodTotal)}, 0.6,
			false, func(err error) bool {
				var ex *ExceededError
				var gs *GrantShortError
				return errors.As(err, &ex) && ex.Budget == "g" && errors.As(err, &gs) && errors.Is(err, ErrExceeded)
			}, nil, map[string]float64{"g": 0.5}},
		{"no grant at all", nil, []Scope{scope("g", config.BudgetBlock, 100, config.PeriodTotal)}, 0.01,
			false, func(err error) bool { return errors.Is(err, ErrExceeded) }, nil, map[string]float64{"g": 0}},
		{"second scope short rolls back the first", map[string]float64{"a": 1, "b": 0.1},
			[]Scope{scope("a", config.BudgetBlock, 100, config.PeriodTotal), scope("b", config.BudgetBlock, 100, config.PeriodTotal)}, 0.5,
			false, func(err error) bool { return errors.Is(err, ErrExceeded) }, nil, map[string]float64{"a": 1, "b": 0.1}},
		{"local limit refuses and the grant is given back", map[string]float64{"g": 10}, []Scope{scope("g", config.BudgetBlock, 0.5, config.PeriodTotal)}, 0.6,
			false, func(err error) bool {
				var ex *ExceededError
				var gs *GrantShortError
				return errors.As(err, &ex) && !errors.As(err, &gs)
			}, nil, map[string]float64{"g": 10}},
		{"per-user budgets need no grant", nil, []Scope{user}, 0.6, false, nil, nil, map[string]float64{"per-user": 0}},
		{"alert budget beyond its grant admits and alerts", map[string]float64{"al": 0.1}, []Scope{scope("al", config.BudgetAlert, 100, config.PeriodTotal)}, 0.6,
			false, nil, []string{"al"}, map[string]float64{"al": 0.1}},
		{"downgrade budget beyond its grant asks for the cheaper route", nil, []Scope{scope("dg", config.BudgetDowngrade, 100, config.PeriodTotal)}, 0.6,
			false, func(err error) bool { return errors.Is(err, ErrDowngrade) }, nil, map[string]float64{"dg": 0}},
		{"downgraded call is admitted", nil, []Scope{scope("dg", config.BudgetDowngrade, 100, config.PeriodTotal)}, 0.6,
			true, nil, nil, map[string]float64{"dg": 0}},
		{"block refusal wins over downgrade", map[string]float64{"dg": 0}, []Scope{scope("dg", config.BudgetDowngrade, 100, config.PeriodTotal), scope("g", config.BudgetBlock, 100, config.PeriodTotal)}, 0.6,
			false, func(err error) bool { return errors.Is(err, ErrExceeded) }, nil, map[string]float64{"dg": 0, "g": 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, w := newGranted(t, tc.grants)
			hold, err := g.Reserve(context.Background(), Reservation{RequestID: "r1", Scopes: tc.scopes, AmountUSD: tc.amount, Downgraded: tc.downgraded})
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Reserve: %v, want admitted", err)
			case tc.wantErr != nil && (err == nil || !tc.wantErr(err)):
				t.Fatalf("Reserve: %v, want a different refusal", err)
			}
			if fmt.Sprint(hold.Alerts) != fmt.Sprint(tc.wantAlerts) {
				t.Fatalf("alerts %v, want %v", hold.Alerts, tc.wantAlerts)
			}
			for b, want := range tc.wantBalance {
				if got := w.Balance(b); !near(got, want) {
					t.Fatalf("balance of %s %v, want %v", b, got, want)
				}
			}
			if err != nil && (g.OpenHolds() != 0 || g.local.Stats().OpenHolds != 0) {
				t.Fatalf("a refusal left holds: %d granted, %d local", g.OpenHolds(), g.local.Stats().OpenHolds)
			}
		})
	}
}

func TestGrantedEndsEveryReservation(t *testing.T) {
	g1 := scope("g", config.BudgetBlock, 100, config.PeriodTotal)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		run         func(g *Granted)
		wantBalance float64 // of a grant of 1
		wantSpent   float64 // in the batches
		wantErr     error
	}{
		{"settle returns the unused part", func(g *Granted) { g.Settle("r", 0.2) }, 0.8, 0.2, nil},
		{"settle twice counts once", func(g *Granted) { g.Settle("r", 0.2); g.Settle("r", 0.2) }, 0.8, 0.2, nil},
		{"release returns everything", func(g *Granted) { g.Release("r") }, 1, 0, nil},
		{"release then settle charges the spend", func(g *Granted) { g.Release("r"); g.Settle("r", 0.3) }, 0.7, 0.3, nil},
		{"reaped hold is given back", func(g *Granted) { g.Reap(now.Add(time.Hour)) }, 1, 0, nil},
		{"reaped then settled late charges once", func(g *Granted) {
			g.Reap(now.Add(time.Hour))
			g.Settle("r", 0.4)
			g.Settle("r", 0.4)
		}, 0.6, 0.4, nil},
		{"settle of an unknown id", func(g *Granted) { g.Settle("r", 0.2); g.Release("r"); g.Settle("other", 1) }, 0.8, 0.2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := spend.NewWallet("a1", 0)
			w.Credit("g", "total", 1)
			g := NewGranted(NewLocal(Options{Clock: func() time.Time { return now }}), w, trackedForTest)
			if _, err := g.Reserve(context.Background(), Reservation{RequestID: "r", Scopes: []Scope{g1}, AmountUSD: 0.5, Deadline: now.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			tc.run(g)
			if err := g.Settle("never", 1); !errors.Is(err, ErrUnknown) {
				t.Fatalf("settle of an unknown id: %v, want ErrUnknown", err)
			}
			spent := map[string]float64{}
			batchTotals(w, spent)
			if !near(w.Balance("g"), tc.wantBalance) || !near(spent["g"], tc.wantSpent) {
				t.Fatalf("balance %v spent %v, want %v and %v", w.Balance("g"), spent["g"], tc.wantBalance, tc.wantSpent)
			}
			if g.OpenHolds() != 0 || g.local.Stats().OpenHolds != 0 {
				t.Fatalf("holds left: %d granted, %d local", g.OpenHolds(), g.local.Stats().OpenHolds)
			}
			if _, err := g.Reserve(context.Background(), Reservation{RequestID: "r", Scopes: []Scope{g1}, AmountUSD: 0.1}); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("reusing an ended id: %v, want ErrDuplicate", err)
			}
		})
	}
}

// TestGrantedConcurrentNeverExceedsGrant runs many calls at once against a
// grant far below the local limit, with cancellations, failures, retried
// settles and abandoned holds, while a committer drains batches. The
// committed spend never exceeds the grant, the wallet's balance is the grant
// minus the spend, and no hold is left.
func TestGrantedConcurrentNeverExceedsGrant(t *testing.T) {
	const grant = 3.0
	g1 := scope("global", config.BudgetBlock, 1000, config.PeriodTotal)
	team := scope("team", config.BudgetBlock, 1000, config.PeriodTotal)
	user := scope("per-user", config.BudgetBlock, 1000, config.PeriodTotal)
	user.Key, user.Budget.Scope = "per-user/user:bo", config.ScopeUser
	w := spend.NewWallet("a1", 0)
	w.Credit("global", "total", grant)
	w.Credit("team", "total", grant*10)
	g := NewGranted(NewLocal(Options{}), w, trackedForTest)

	var committed sync.Map // budget -> float64, written by the committer only
	var mu sync.Mutex
	totals := map[string]float64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			mu.Lock()
			batchTotals(w, totals)
			over := totals["global"] > grant+1e-9
			mu.Unlock()
			if over {
				committed.Store("over", true)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})

	var admitted, refused, abandoned atomic.Int64
	var settledNanos atomic.Int64 // actual spend of calls that settled
	var workers sync.WaitGroup
	for i := range 48 {
		workers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for j := range 150 {
				id := fmt.Sprintf("w%d-%d", i, j)
				amount := float64(rng.IntN(40_000_000)) / 1e9 // up to $0.04
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(20) == 0 {
					cancel()
				}
				scopes := []Scope{g1, team}
				if rng.IntN(2) == 0 {
					scopes = append(scopes, user)
				}
				_, err := g.Reserve(ctx, Reservation{RequestID: id, Scopes: scopes, AmountUSD: amount})
				cancel()
				if err != nil {
					if !errors.Is(err, ErrExceeded) && !errors.Is(err, context.Canceled) {
						t.Errorf("reserve %s: %v", id, err)
					}
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				switch rng.IntN(6) {
				case 0: // the provider failed
					g.Release(id)
				case 1: // the request vanished; the reaper frees it
					abandoned.Add(1)
				case 2: // a retried settle
					actual := amount * rng.Float64()
					g.Settle(id, actual)
					g.Settle(id, actual)
					settledNanos.Add(int64(math.Round(actual * 1e9)))
				default:
					actual := amount * rng.Float64()
					g.Settle(id, actual)
					settledNanos.Add(int64(math.Round(actual * 1e9)))
				}
			}
		})
	}
	workers.Wait()
	if n := g.OpenHolds(); n != int(abandoned.Load()) {
		t.Fatalf("%d holds open, want the %d abandoned", n, abandoned.Load())
	}
	g.Reap(time.Now().Add(24 * time.Hour))
	close(stop)
	wg.Wait()
	batchTotals(w, totals)

	if _, over := committed.Load("over"); over {
		t.Fatal("committed spend went beyond the grant while calls ran")
	}
	spent := float64(settledNanos.Load()) / 1e9
	if totals["global"] > grant+1e-9 || math.Abs(totals["global"]-spent) > 1e-6 || math.Abs(totals["team"]-spent) > 1e-6 {
		t.Fatalf("committed global %v team %v, settled %v, grant %v", totals["global"], totals["team"], spent, grant)
	}
	if _, ok := totals["per-user"]; ok {
		t.Fatalf("per-user spend reached the cluster batches: %v", totals)
	}
	if b := w.Balance("global"); math.Abs(b-(grant-spent)) > 1e-6 {
		t.Fatalf("balance %v, want grant - spent = %v", b, grant-spent)
	}
	if g.OpenHolds() != 0 || g.local.Stats().OpenHolds != 0 {
		t.Fatalf("holds left: %d granted, %d local", g.OpenHolds(), g.local.Stats().OpenHolds)
	}
	if refused.Load() == 0 || admitted.Load() == 0 {
		t.Fatalf("admitted %d refused %d: the grant should run out part way", admitted.Load(), refused.Load())
	}
	t.Logf("admitted %d, refused %d, abandoned %d, spent %.6f of a %.2f grant", admitted.Load(), refused.Load(), abandoned.Load(), spent, grant)
}
