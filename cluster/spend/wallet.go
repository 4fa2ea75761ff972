package spend

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
)

// Wallet is an agent's local view of its grants. The request path reserves
// the worst-case cost of a call before it is made and settles the actual
// cost afterwards; neither waits on the network. A loop owned by the agent
// commits the settled spend as batches and asks for more grant when a
// budget's local balance runs low.
//
// Without a grant a budget's balance is 0 and Reserve refuses: an agent
// that cannot reach the leader spends what it holds and then blocks, which
// is the bound on overspend while quorum is lost.
type Wallet struct {
	mu      sync.Mutex
	agent   string
	balance map[string]float64 // granted, not yet reserved or spent
	pending map[string]float64 // settled, not yet in a batch
	batch   *Batch             // the batch being committed, resent until acknowledged
	queue   []Batch            // batches kept from before a restart, sent before new ones
	seq     uint64             // last batch sequence used
	grants  map[string]uint64  // per budget, grant requests acknowledged
	period  map[string]string  // per budget, the period the balance was granted in
	// closed is set when the agent leaves: reservations are refused and
	// the next new batch is the final one, which gives the grants back.
	closed    bool
	finalSent bool
	// nonce tells this wallet's grant requests from those of an earlier
	// wallet of the same agent (a restart): the cluster remembers recent
	// request ids, and a reused id would answer with the old grant's
	// amount without granting anything.
	nonce string
}

// maxRequestID is the longest request id a command may carry.
const maxRequestID = 128

// Batch is spend committed as one command.
type Batch struct {
	Agent string `json:"agent"`
	Seq   uint64 `json:"seq"`
	Items []Item `json:"items"`
	// Final is the agent's last batch before it leaves: once committed,
	// the grants it still holds go back to the budgets.
	Final bool `json:"final,omitempty"`
}

// NewWallet returns an empty wallet for agent. seq is the agent's last
// committed batch sequence from the ledger, so a restarted agent continues
// after it.
func NewWallet(agent string, seq uint64) *Wallet {
	var n [6]byte
	rand.Read(n[:])
	return &Wallet{agent: agent, seq: seq, balance: map[string]float64{}, pending: map[string]float64{}, grants: map[string]uint64{}, period: map[string]string{},
		nonce: hex.EncodeToString(n[:])}
}

// Resume moves the batch sequence up to seq, the agent's last batch the
// ledger committed, read after the wallet was made: a batch numbered at or
// below it would be taken for a duplicate and its spend dropped.
func (w *Wallet) Resume(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq > w.seq && w.batch == nil {
		w.seq = seq
	}
	kept := w.queue[:0]
	for _, b := range w.queue {
		if b.Seq > seq {
			kept = append(kept, b)
		}
	}
	w.queue = kept
}

// Unsent is the spend not yet committed, as batches: the one being
// committed and one more of what settled since. An agent that stops
// without reaching a leader keeps them on disk and gives them to Requeue
// when it starts again; they keep their sequence numbers, so each is
// committed once however often it is sent.
func (w *Wallet) Unsent() []Batch {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]Batch(nil), w.queue...)
	if w.batch != nil {
		out = append(out, *w.batch)
	}
	if len(w.pending) > 0 {
		w.seq++
		nb := Batch{Agent: w.agent, Seq: w.seq}
		for budget, amount := range w.pending {
			nb.Items = append(nb.Items, Item{Budget: budget, Amount: amount})
		}
		out = append(out, nb)
	}
	return out
}

// Kept is how many batches from before a restart wait to be sent.
func (w *Wallet) Kept() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// Requeue takes batches an earlier run of this agent could not commit;
// they are sent, in order, before anything new. Call it before Resume,
// which drops those the ledger already holds.
func (w *Wallet) Requeue(batches []Batch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range batches {
		if b.Agent != w.agent || b.Seq <= w.seq {
			continue
		}
		w.queue = append(w.queue, b)
		w.seq = b.Seq
	}
}

// Reserve takes amount from budget's balance, or reports false when the
// balance is short and the call must not proceed.
func (w *Wallet) Reserve(budget string, amount float64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || amount < 0 || w.balance[budget] < amount {
		return false
	}
	w.balance[budget] -= amount
	return true
}

// Settle returns the unused part of a reservation and records the actual
// spend for the next batch. An actual cost above the reservation is still
// recorded; the reservation is the worst case, so that is a pricing error.
func (w *Wallet) Settle(budget string, reserved, actual float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.balance[budget] += reserved - actual
	if actual != 0 {
		w.pending[budget] += actual
	}
}

// Return gives back a reservation whose call cost nothing (it failed, or
// its hold was freed), without recording spend.
func (w *Wallet) Return(budget string, amount float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.balance[budget] += amount
}

// Balance is what can still be reserved of budget.
func (w *Wallet) Balance(budget string) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.balance[budget]
}

// NextBatch returns the batch to commit: the unacknowledged one again, or a
// new one of everything settled since. ok is false when there is nothing.
func (w *Wallet) NextBatch() (b Batch, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batch != nil {
		return *w.batch, true
	}
	if len(w.queue) > 0 {
		b := w.queue[0]
		w.queue = w.queue[1:]
		w.batch = &b
		return b, true
	}
	if len(w.pending) == 0 && (!w.closed || w.finalSent) {
		return Batch{}, false
	}
	w.seq++
	nb := Batch{Agent: w.agent, Seq: w.seq}
	for budget, amount := range w.pending {
		nb.Items = append(nb.Items, Item{Budget: budget, Amount: amount})
		if len(nb.Items) == MaxItems {
			break
		}
	}
	for _, it := range nb.Items {
		delete(w.pending, it.Budget)
	}
	if w.closed && len(w.pending) == 0 {
		nb.Final, w.finalSent = true, true
	}
	w.batch = &nb
	return nb, true
}

// Closed reports whether Close was called.
func (w *Wallet) Closed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// Close ends the wallet when the agent leaves: every reservation is
// refused from now on, and the batches NextBatch returns end with a final
// one that gives the agent's grants back. Call it once no call is in
// flight, or their spend arrives after the grants are gone (it is still
// counted).
func (w *Wallet) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	clear(w.balance)
}

// Acked marks batch seq committed.
func (w *Wallet) Acked(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batch != nil && w.batch.Seq == seq {
		w.batch = nil
	}
}

// GrantRequestID names the next grant request for budget. It stays the same
// until Credit, so a retried request is applied once.
func (w *Wallet) GrantRequestID(budget string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := fmt.Sprintf("grant:%s:%s:%s:%d", w.agent, w.nonce, budget, w.grants[budget]+1)
	if len(id) > maxRequestID {
		sum := sha256.Sum256([]byte(id))
		id = "grant:" + hex.EncodeToString(sum[:])
	}
	return id
}

// Credit adds an amount granted in period to budget's balance. A grant of a
// new period replaces what was left of the old one, which lapsed.
func (w *Wallet) Credit(budget, period string, amount float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.grants[budget]++
	if w.period[budget] != period {
		w.balance[budget] = 0
		w.period[budget] = period
	}
	w.balance[budget] += amount
}

// Expire drops budget's balance unless it was granted in period: grants
// lapse when a budget's period turns.
func (w *Wallet) Expire(budget, period string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.period[budget]; ok && p != period {
		w.balance[budget] = 0
		w.period[budget] = period
	}
}
