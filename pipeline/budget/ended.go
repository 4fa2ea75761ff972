package budget

import "time"

// endedSet remembers the request ids whose reservation ended, so a retried
// Settle or Release is recognised and never counted twice. It is bounded by
// count and by age; the oldest ids are forgotten first. Callers hold the
// ledger's lock.
type endedSet[T any] struct {
	m    map[string]endedEntry[T]
	q    []doneRef // arrival order; q[head:] are live
	head int
}

type endedEntry[T any] struct {
	v  T
	at time.Time
}

type doneRef struct {
	id string
	at time.Time
}

// get returns what was kept for id, or T's zero value.
func (s *endedSet[T]) get(id string) T { return s.m[id].v }

// has reports whether id ended and is still remembered.
func (s *endedSet[T]) has(id string) bool {
	_, ok := s.m[id]
	return ok
}

// add remembers id, forgetting the oldest ids beyond max.
func (s *endedSet[T]) add(id string, v T, now time.Time, max int) {
	if s.m == nil {
		s.m = map[string]endedEntry[T]{}
	}
	s.m[id] = endedEntry[T]{v: v, at: now}
	s.q = append(s.q, doneRef{id: id, at: now})
	for len(s.m) > max {
		s.pop()
	}
}

// forget drops the ids that ended before cutoff.
func (s *endedSet[T]) forget(cutoff time.Time) {
	for s.head < len(s.q) && s.q[s.head].at.Before(cutoff) {
		s.pop()
	}
}

// size is how many ids are remembered and queued.
func (s *endedSet[T]) size() (ids, queued int) { return len(s.m), len(s.q) - s.head }

func (s *endedSet[T]) pop() {
	ref := s.q[s.head]
	s.q[s.head] = doneRef{}
	s.head++
	// The id may have ended again later; only its newest entry counts.
	if e, ok := s.m[ref.id]; ok && e.at.Equal(ref.at) {
		delete(s.m, ref.id)
	}
	// Compact once the consumed head dominates the slice.
	if s.head > 1024 && s.head*2 > len(s.q) {
		s.q = append([]doneRef(nil), s.q[s.head:]...)
		s.head = 0
	}
}
