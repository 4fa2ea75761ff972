// Package semcache is Gantry's semantic response cache: an answer is reused
// for a later request whose embedding is close enough to the one that paid
// for it. Entries live in partitions (a feature's release, and optionally
// one team or one user of it), so an answer never crosses a partition.
//
// The index is exact: a lookup compares the query with every live entry of
// its partition's index by dot product over unit vectors. That keeps a hit
// explainable (the similarity on the trace is the true one); its cost grows
// with the entries of the index (BenchmarkLookup: 10k and 100k entries), so
// a release's max_entries is its latency bound too.
package semcache

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// Hit is a cached answer and how close its request was.
type Hit struct {
	Value      []byte
	Similarity float64
	// Trace is the id of the trace that paid for the answer.
	Trace string
}

// Cache holds one index per release; each index is bounded by the entries
// its release's policy allows. Safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	indexes map[string]*Index
	now     func() time.Time
	// maxIndexes bounds how many releases keep an index; the least
	// recently used one goes first.
	maxIndexes int
}

// New returns an empty cache that keeps indexes for up to maxIndexes
// releases.
func New(maxIndexes int, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{indexes: map[string]*Index{}, now: now, maxIndexes: maxIndexes}
}

// Index returns the index named name (a release hash and embedding model),
// made with room for capacity entries of dims dimensions. An index whose
// shape changed is replaced: vectors of two models do not compare.
func (c *Cache) Index(name string, capacity, dims int) *Index {
	c.mu.Lock()
	defer c.mu.Unlock()
	ix := c.indexes[name]
	if ix != nil && ix.capacity == capacity && ix.dims == dims {
		ix.used.Store(c.now().UnixNano())
		return ix
	}
	if ix == nil && len(c.indexes) >= c.maxIndexes {
		c.evictIndex()
	}
	ix = newIndex(capacity, dims, c.now)
	ix.used.Store(c.now().UnixNano())
	c.indexes[name] = ix
	return ix
}

func (c *Cache) evictIndex() {
	oldest, at := "", int64(math.MaxInt64)
	for name, ix := range c.indexes {
		if u := ix.used.Load(); u < at {
			oldest, at = name, u
		}
	}
	delete(c.indexes, oldest)
}

// Entries counts the live entries of every index, for metrics.
func (c *Cache) Entries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ix := range c.indexes {
		n += ix.Len()
	}
	return n
}

// Index is a bounded set of vectors with their answers. Entries are kept in
// a ring: when it is full the oldest entry makes room, and an entry past its
// TTL is never returned.
type Index struct {
	mu       sync.RWMutex
	capacity int
	dims     int
	vecs     []float32 // capacity*dims, unit vectors
	slots    []slot
	next     int // slot the next entry goes to
	n        int // slots filled
	now      func() time.Time
	used     atomic.Int64
}

type slot struct {
	partition string
	expires   int64 // unix nanoseconds
	value     []byte
	trace     string
}

func newIndex(capacity, dims int, now func() time.Time) *Index {
	return &Index{capacity: capacity, dims: dims, vecs: make([]float32, 0, min(capacity, 1024)*dims), slots: make([]slot, 0, min(capacity, 1024)), now: now}
}

// Len counts live entries.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	now := ix.now().UnixNano()
	n := 0
	for i := range ix.slots {
		if ix.slots[i].expires > now {
			n++
		}
	}
	return n
}

// Lookup returns the live entry of partition closest to vec, when its
// similarity reaches threshold. vec must have the index's dimensions.
func (ix *Index) Lookup(partition string, vec []float32, threshold float64) (Hit, bool) {
	if len(vec) != ix.dims {
		return Hit{}, false
	}
	q := unit(vec)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	now := ix.now().UnixNano()
	best, bestSim := -1, float32(threshold)
	for i := range ix.slots {
		s := &ix.slots[i]
		if s.expires <= now || s.partition != partition {
			continue
		}
		if sim := dot(q, ix.vecs[i*ix.dims:(i+1)*ix.dims]); sim >= bestSim {
			best, bestSim = i, sim
		}
	}
	if best < 0 {
		return Hit{}, false
	}
	s := ix.slots[best]
	return Hit{Value: s.value, Similarity: math.Min(float64(bestSim), 1), Trace: s.trace}, true
}

// Put adds an answer for vec in partition, kept for ttl.
func (ix *Index) Put(partition string, vec []float32, value []byte, trace string, ttl time.Duration) {
	if len(vec) != ix.dims || ttl <= 0 || ix.capacity <= 0 {
		return
	}
	q := unit(vec)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	s := slot{partition: partition, expires: ix.now().Add(ttl).UnixNano(), value: value, trace: trace}
	i := ix.next
	if ix.n < ix.capacity {
		ix.slots = append(ix.slots, s)
		ix.vecs = append(ix.vecs, q...)
		ix.n++
	} else {
		ix.slots[i] = s
		copy(ix.vecs[i*ix.dims:], q)
	}
	ix.next = (i + 1) % ix.capacity
}

// dot is the similarity of two unit vectors; four sums let the CPU overlap
// the multiplications.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// unit scales v to length 1, so a dot product is the cosine similarity
// whatever the embedding model returns.
func unit(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return out // matches nothing
	}
	n = math.Sqrt(n)
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

// MaxNormalizedBytes bounds the text embedded for one request.
const MaxNormalizedBytes = 16 << 10

// Normalize is the text a request is embedded as: lower case, runs of
// space and punctuation made one space, trimmed and bounded, so requests
// that differ only in case, spacing or punctuation embed alike.
func Normalize(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), MaxNormalizedBytes))
	space := false
	for _, r := range s {
		if b.Len() >= MaxNormalizedBytes {
			break
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		space = true
	}
	return b.String()
}
