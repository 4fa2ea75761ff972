package spend

import (
	"fmt"
	"math"
	"testing"
	"time"

	"gantry/config"
)

var (
	day    = config.Budget{Name: "daily", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 10}
	noon   = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	lookup = func(name string) (config.Budget, bool) { return day, name == day.Name }
)

func TestGrantsNeverExceedTheLimit(t *testing.T) {
	tests := []struct {
		name  string
		wants []float64 // one request per agent, in turn
		want  []float64 // granted
	}{
		{"fits", []float64{2, 3, 4}, []float64{2, 3, 4}},
		{"last one is cut", []float64{4, 4, 4}, []float64{4, 4, 2}},
		{"nothing left", []float64{10, 1}, []float64{10, 0}},
		{"zero asked", []float64{0}, []float64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Ledger
			for i, w := range tt.wants {
				var got float64
				var err error
				l, got, err = l.Grant(day, fmt.Sprintf("a%d", i), w, noon)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want[i] {
					t.Fatalf("grant %d = %v, want %v", i, got, tt.want[i])
				}
			}
			if avail := l.Available(day, noon); avail < 0 {
				t.Fatalf("available %v < 0", avail)
			}
		})
	}
}

func TestCommitIsIdempotentBySequence(t *testing.T) {
	var l Ledger
	l, _, _ = l.Grant(day, "a", 5, noon)
	l1, dup, err := l.Commit("a", 1, []Item{{Budget: "daily", Amount: 2}}, lookup, noon)
	if err != nil || dup {
		t.Fatalf("first commit: dup %v, err %v", dup, err)
	}
	l2, dup, err := l1.Commit("a", 1, []Item{{Budget: "daily", Amount: 2}}, lookup, noon)
	if err != nil || !dup {
		t.Fatalf("repeat commit: dup %v, err %v", dup, err)
	}
	a := l2.Accounts["daily"]
	if a.Spent != 2 || a.Grants["a"].Used != 2 {
		t.Fatalf("account %+v", a)
	}
	// Spent counts against what can be granted; the unused grant too.
	if got := l2.Available(day, noon); got != 5 {
		t.Fatalf("available %v, want 5", got)
	}
}

func TestCommitRejects(t *testing.T) {
	tests := []struct {
		name  string
		agent string
		seq   uint64
		items []Item
	}{
		{"no agent", "", 1, nil},
		{"seq 0", "a", 0, nil},
		{"negative", "a", 1, []Item{{Budget: "daily", Amount: -1}}},
		{"nan", "a", 1, []Item{{Budget: "daily", Amount: math.NaN()}}},
		{"too many items", "a", 1, make([]Item, MaxItems+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := (Ledger{}).Commit(tt.agent, tt.seq, tt.items, lookup, noon); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestPeriodTurnResetsTheAccount(t *testing.T) {
	var l Ledger
	l, _, _ = l.Grant(day, "a", 10, noon)
	l, _, _ = l.Commit("a", 1, []Item{{Budget: "daily", Amount: 10}}, lookup, noon)
	if got := l.Available(day, noon); got != 0 {
		t.Fatalf("available today %v, want 0", got)
	}
	tomorrow := noon.Add(24 * time.Hour)
	if got := l.Available(day, tomorrow); got != 10 {
		t.Fatalf("available tomorrow %v, want 10", got)
	}
	l, got, _ := l.Grant(day, "a", 3, tomorrow)
	if got != 3 || l.Accounts["daily"].Period != "2026-11-28" {
		t.Fatalf("granted %v in %+v", got, l.Accounts["daily"])
	}
}

func TestUserBudgetsAreNotGranted(t *testing.T) {
	user := config.Budget{Name: "per-user", Scope: config.ScopeUser, Period: config.PeriodDay, LimitUSD: 1}
	if _, _, err := (Ledger{}).Grant(user, "a", 1, noon); err == nil {
		t.Fatal("granted a per-user budget")
	}
}

func TestWalletSpendsOnlyWhatItHolds(t *testing.T) {
	w := NewWallet("a", 0)
	if w.Reserve("daily", 0.01) {
		t.Fatal("reserved without a grant")
	}
	w.Credit("daily", "2026-11-27", 1)
	spent := 0.0
	for w.Reserve("daily", 0.3) {
		w.Settle("daily", 0.3, 0.2)
		spent += 0.2
	}
	if spent > 1 || w.Balance("daily") >= 0.3 {
		t.Fatalf("spent %v with balance %v from a grant of 1", spent, w.Balance("daily"))
	}
	b, ok := w.NextBatch()
	if !ok || b.Seq != 1 || len(b.Items) != 1 || math.Abs(b.Items[0].Amount-spent) > 1e-9 {
		t.Fatalf("batch %+v", b)
	}
	// Unacknowledged, the same batch is sent again; new spend waits.
	w.Credit("daily", "2026-11-27", 1)
	if !w.Reserve("daily", 0.5) {
		t.Fatal("reserve after credit refused")
	}
	w.Settle("daily", 0.5, 0.5)
	again, _ := w.NextBatch()
	if again.Seq != 1 || again.Items[0].Amount != b.Items[0].Amount {
		t.Fatalf("resent batch %+v, want %+v", again, b)
	}
	w.Acked(1)
	next, ok := w.NextBatch()
	if !ok || next.Seq != 2 || next.Items[0].Amount != 0.5 {
		t.Fatalf("next batch %+v", next)
	}
	// A new period lapses the old balance.
	w.Expire("daily", "2026-11-28")
	if got := w.Balance("daily"); got != 0 {
		t.Fatalf("balance after the period turned = %v", got)
	}
}

func TestReturnGrantsFreesWhatWasNotSpent(t *testing.T) {
	var l Ledger
	l, _, _ = l.Grant(day, "a", 4, noon)
	l, _, _ = l.Grant(day, "b", 4, noon)
	l, _, _ = l.Commit("a", 1, []Item{{Budget: "daily", Amount: 1}}, lookup, noon)
	before := l
	l = l.ReturnGrants("a")
	if got := l.Available(day, noon); got != 5 {
		t.Fatalf("available after a returned its grant: %v, want 10 - 1 spent - 4 held by b = 5", got)
	}
	if got := l.Accounts["daily"].Spent; got != 1 {
		t.Fatalf("spent %v after the return, want 1: what was spent stays spent", got)
	}
	if got := before.Available(day, noon); got != 2 {
		t.Fatalf("the ledger before the return changed: available %v, want 2", got)
	}
	if l2 := l.ReturnGrants("nobody"); fmt.Sprint(l2) != fmt.Sprint(l) {
		t.Fatal("returning the grants of an agent holding none changed the ledger")
	}
}

func TestClosedWalletSendsAFinalBatchAndRefuses(t *testing.T) {
	w := NewWallet("a", 0)
	w.Credit("daily", "2026-11-27", 3)
	if !w.Reserve("daily", 1) {
		t.Fatal("reserve within the grant refused")
	}
	w.Settle("daily", 1, 0.5)
	b, ok := w.NextBatch() // in flight when the agent leaves
	if !ok || b.Final {
		t.Fatalf("batch %+v before close, want an ordinary one", b)
	}
	w.Close()
	if w.Reserve("daily", 0.1) {
		t.Fatal("a closed wallet reserved")
	}
	if again, _ := w.NextBatch(); again.Seq != b.Seq || again.Final {
		t.Fatalf("the unacknowledged batch must be resent first, got %+v", again)
	}
	w.Acked(b.Seq)
	final, ok := w.NextBatch()
	if !ok || !final.Final || final.Seq != b.Seq+1 || len(final.Items) != 0 {
		t.Fatalf("final batch %+v, want an empty final batch numbered %d", final, b.Seq+1)
	}
	w.Acked(final.Seq)
	if b, ok := w.NextBatch(); ok {
		t.Fatalf("batch %+v after the final one was acknowledged", b)
	}
}

// TestAvailableIsTheSameOnEveryReplica: what is left to grant is computed
// to the last bit the same way however the grants are held, since every
// replica must record exactly the same grant. Amounts like these (costs of
// single calls) round differently when subtracted in another order.
func TestAvailableIsTheSameOnEveryReplica(t *testing.T) {
	small := config.Budget{Name: "cap", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 0.0001}
	var l Ledger
	for i, w := range []float64{0.0000267, 0.0000194, 0.00001525, 0.0000031, 0.0000089} {
		var err error
		if l, _, err = l.Grant(small, fmt.Sprintf("agent-%d", i), w, noon); err != nil {
			t.Fatal(err)
		}
	}
	first := l.Available(small, noon)
	for range 200 {
		if got := l.Available(small, noon); math.Float64bits(got) != math.Float64bits(first) {
			t.Fatalf("available %v, then %v: the result depends on the order grants are visited", first, got)
		}
	}
}
