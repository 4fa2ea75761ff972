package state

import (
	"encoding/binary"

	iradix "github.com/hashicorp/go-immutable-radix"
)

// requests remembers the newest MaxRequests request ids and their results.
// It is persistent (immutable radix trees), so recording one id shares almost
// everything with the previous state instead of copying thousands of entries
// on every command.
type requests struct {
	byID  *iradix.Tree // request id -> appliedRequest
	bySeq *iradix.Tree // big-endian seq -> request id
	next  uint64       // seq of the next request
}

type appliedRequest struct {
	ID     string `json:"id"`
	Seq    uint64 `json:"seq"`
	Result Result `json:"result"`
}

func newRequests() requests {
	return requests{byID: iradix.New(), bySeq: iradix.New()}
}

func seqKey(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

func (r requests) get(id string) (Result, bool) {
	if r.byID == nil {
		return Result{}, false
	}
	v, ok := r.byID.Get([]byte(id))
	if !ok {
		return Result{}, false
	}
	return v.(appliedRequest).Result, true
}

// add returns r with id recorded, dropping the oldest id beyond the bound.
func (r requests) add(id string, res Result) requests {
	if r.byID == nil {
		r = newRequests()
	}
	a := appliedRequest{ID: id, Seq: r.next, Result: res}
	r.byID, _, _ = r.byID.Insert([]byte(id), a)
	r.bySeq, _, _ = r.bySeq.Insert(seqKey(a.Seq), id)
	r.next++
	if r.next > MaxRequests {
		old := r.next - MaxRequests - 1
		if v, ok := r.bySeq.Get(seqKey(old)); ok {
			r.bySeq, _, _ = r.bySeq.Delete(seqKey(old))
			oldID := v.(string)
			if cur, ok := r.byID.Get([]byte(oldID)); ok && cur.(appliedRequest).Seq == old {
				r.byID, _, _ = r.byID.Delete([]byte(oldID))
			}
		}
	}
	return r
}

// list returns the remembered requests, oldest first.
func (r requests) list() []appliedRequest {
	if r.bySeq == nil {
		return nil
	}
	out := make([]appliedRequest, 0, r.bySeq.Len())
	r.bySeq.Root().Walk(func(_ []byte, v interface{}) bool {
		if a, ok := r.byID.Get([]byte(v.(string))); ok {
			out = append(out, a.(appliedRequest))
		}
		return false
	})
	return out
}

func requestsFrom(list []appliedRequest, next uint64) requests {
	r := newRequests()
	txID, txSeq := r.byID.Txn(), r.bySeq.Txn()
	for _, a := range list {
		txID.Insert([]byte(a.ID), a)
		txSeq.Insert(seqKey(a.Seq), a.ID)
	}
	r.byID, r.bySeq = txID.Commit(), txSeq.Commit()
	r.next = next
	return r
}

func (r requests) len() int {
	if r.byID == nil {
		return 0
	}
	return r.byID.Len()
}
