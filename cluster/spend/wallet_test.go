package spend

import (
	"strings"
	"testing"
)

func TestWalletGrantIDsDifferAcrossRestarts(t *testing.T) {
	before, after := NewWallet("a1", 0), NewWallet("a1", 0)
	if before.GrantRequestID("b") == after.GrantRequestID("b") {
		t.Fatalf("a restarted wallet reuses grant request id %s: the cluster would answer with the old grant", before.GrantRequestID("b"))
	}
	if id := before.GrantRequestID("b"); id != before.GrantRequestID("b") {
		t.Fatalf("grant request id changed before a credit: %s", id)
	}
	long := NewWallet(strings.Repeat("n", 64), 0).GrantRequestID(strings.Repeat("b", 64))
	if len(long) > maxRequestID || !strings.HasPrefix(long, "grant:") {
		t.Fatalf("request id %q (%d bytes) does not fit a command", long, len(long))
	}
}

func TestWalletReturnAndResume(t *testing.T) {
	w := NewWallet("a1", 0)
	w.Credit("b", "total", 1)
	if !w.Reserve("b", 0.75) || w.Reserve("b", 0.5) {
		t.Fatal("reserve beyond the balance")
	}
	w.Return("b", 0.75)
	if w.Balance("b") != 1 {
		t.Fatalf("balance %v after return, want 1", w.Balance("b"))
	}
	w.Settle("b", 0, 0)
	if _, ok := w.NextBatch(); ok {
		t.Fatal("a return or a zero settle made a batch")
	}
	w.Resume(41)
	w.Settle("b", 0, 0.25)
	b, ok := w.NextBatch()
	if !ok || b.Seq != 42 {
		t.Fatalf("batch %+v after resuming at 41, want seq 42", b)
	}
	w.Resume(7)
	w.Acked(42)
	w.Settle("b", 0, 0.25)
	if b, _ := w.NextBatch(); b.Seq != 43 {
		t.Fatalf("resume moved the sequence back: seq %d", b.Seq)
	}
}
