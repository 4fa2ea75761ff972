package budget

import (
	"hash/maphash"
	"time"
)

// seenSet remembers the request ids whose reservation was settled as
// 64-bit fingerprints in an open-addressed table kept between 3/8 and 3/4
// full: 11 to 22 bytes an id, where a map of ids and times took about 190.
// Most calls end settled, and an agent at a few hundred calls a second must
// not spend hundreds of megabytes remembering them.
//
// The false-positive rule: two ids may share a fingerprint (about one
// chance in 2^64/n for n remembered ids), so has may say an id was settled
// when it never was. A hit never charges or releases anything: Settle and
// Release of an id with no open hold that has is answered as a retry
// (nothing done), and Reserve refuses it as a duplicate. So a false
// positive can only refuse a call or skip an unknown id's no-op; it can
// never double-charge or double-release. Only an open hold, kept exactly,
// is ever charged or freed.
//
// Ids are kept in two generations of one retention window each: an id is
// remembered for at least the window (bounded by max) and at most two.
// Callers hold the ledger's lock.
type seenSet struct {
	seed      maphash.Seed
	cur, prev fingerprints
	started   time.Time // when cur began
}

type fingerprints struct {
	slots []uint64 // 0 is empty
	n     int
}

func (s *seenSet) fingerprint(id string) uint64 {
	if s.cur.slots == nil && s.prev.slots == nil && s.seed == (maphash.Seed{}) {
		s.seed = maphash.MakeSeed()
	}
	h := maphash.String(s.seed, id)
	if h == 0 {
		h = 1
	}
	return h
}

// add remembers id, rotating the generations when the current one is a
// window old or holds max/2 ids.
func (s *seenSet) add(id string, now time.Time, window time.Duration, max int) {
	h := s.fingerprint(id)
	if s.started.IsZero() {
		s.started = now
	}
	if now.Sub(s.started) >= window || s.cur.n >= max/2 {
		s.rotate(now)
	}
	s.cur.insert(h)
}

// has reports whether id was added and is still remembered, or shares a
// fingerprint with one that was (see the false-positive rule).
func (s *seenSet) has(id string) bool {
	if s.cur.n == 0 && s.prev.n == 0 {
		return false
	}
	h := s.fingerprint(id)
	return s.cur.has(h) || s.prev.has(h)
}

// forget drops the older generation once it is more than a window old.
func (s *seenSet) forget(now time.Time, window time.Duration) {
	if !s.started.IsZero() && now.Sub(s.started) >= window {
		s.rotate(now)
	}
}

func (s *seenSet) rotate(now time.Time) {
	s.prev, s.cur, s.started = s.cur, fingerprints{}, now
}

// size is how many ids are remembered and the bytes their tables hold.
func (s *seenSet) size() (ids, bytes int) {
	return s.cur.n + s.prev.n, 8 * (len(s.cur.slots) + len(s.prev.slots))
}

func (f *fingerprints) insert(h uint64) {
	if 4*(f.n+1) > 3*len(f.slots) {
		f.grow()
	}
	mask := uint64(len(f.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch f.slots[i] {
		case h:
			return
		case 0:
			f.slots[i] = h
			f.n++
			return
		}
	}
}

func (f *fingerprints) has(h uint64) bool {
	if f.n == 0 {
		return false
	}
	mask := uint64(len(f.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch f.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (f *fingerprints) grow() {
	old := f.slots
	f.slots, f.n = make([]uint64, max(64, 2*len(old))), 0
	for _, h := range old {
		if h != 0 {
			f.insert(h)
		}
	}
}
