package budget

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gantry/config"
)

// TestSettledIDsAreRememberedCompactly: a settled id is recognised on a
// retried Settle or Release and refused by Reserve for at least the
// retention, in a few bytes an id, and forgotten within two retentions.
func TestSettledIDsAreRememberedCompactly(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLocal(Options{Clock: func() time.Time { return now }, DoneRetention: time.Hour})
	s := scope("b", config.BudgetBlock, 1e6, config.PeriodTotal)
	const n = 100_000
	for i := range n {
		id := fmt.Sprint("req-", i)
		if _, err := reserve(t, l, id, 0.01, s); err != nil {
			t.Fatal(err)
		}
		if err := l.Settle(id, 0.01); err != nil {
			t.Fatal(err)
		}
	}
	spent := l.Usage(s).SpentUSD
	for _, id := range []string{"req-0", "req-99999"} {
		if err := l.Settle(id, 0.01); err != nil {
			t.Fatalf("retried settle of %s: %v", id, err)
		}
		if err := l.Release(id); err != nil {
			t.Fatalf("release after settle of %s: %v", id, err)
		}
		if _, err := reserve(t, l, id, 0.01, s); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("reserve of settled %s: got %v, want a duplicate", id, err)
		}
	}
	if got := l.Usage(s).SpentUSD; got != spent {
		t.Fatalf("retries changed the spend from %v to %v", spent, got)
	}
	if err := l.Settle("never-reserved", 1); !errors.Is(err, ErrUnknown) {
		t.Fatalf("settle of an unknown id: got %v, want ErrUnknown", err)
	}
	ids, bytes := l.seen.size()
	if ids != n || bytes/ids > 24 {
		t.Fatalf("%d ids in %d bytes (%d an id), want %d ids in at most 24 bytes each", ids, bytes, bytes/ids, n)
	}
	now = now.Add(59 * time.Minute)
	l.Reap(now)
	if err := l.Release("req-1"); err != nil {
		t.Fatalf("within the retention: %v", err)
	}
	now = now.Add(2 * time.Hour)
	l.Reap(now)
	l.Reap(now.Add(time.Hour))
	if ids, _ := l.seen.size(); ids != 0 {
		t.Fatalf("%d ids still remembered two retentions later", ids)
	}
}

// TestGrantedRefusesASettledID: in front of the local ledger, the grant
// side keeps no settled ids of its own, yet a settled request id is still
// refused as a duplicate, the grant untouched, and a retried settle is a
// retry.
func TestGrantedRefusesASettledID(t *testing.T) {
	g, w := newGranted(t, map[string]float64{"g": 1})
	s := scope("g", config.BudgetBlock, 100, config.PeriodTotal)
	r := Reservation{RequestID: "r1", Scopes: []Scope{s}, AmountUSD: 0.1}
	if _, err := g.Reserve(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if err := g.Settle("r1", 0.05); err != nil {
		t.Fatal(err)
	}
	before := w.Balance("g")
	if _, err := g.Reserve(context.Background(), r); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("reserve of a settled id: got %v, want a duplicate", err)
	}
	if err := g.Settle("r1", 0.05); err != nil {
		t.Fatalf("retried settle: %v", err)
	}
	if after := w.Balance("g"); after != before {
		t.Fatalf("grant balance moved from %v to %v", before, after)
	}
	if ids, _ := g.Ended(); ids != 0 {
		t.Fatalf("the grant side keeps %d settled ids", ids)
	}
}
