package tokens

import (
	"hash/maphash"
	"sync"
)

// Gantry counts the same long texts again and again: a release's system
// instructions and template open every call of its feature. Counts of long
// texts are kept in a small cache keyed by a 64-bit hash of the text (and
// the encoding); a collision could only skew an estimate, never a bill,
// since providers report the usage that is charged.
const (
	cacheMinLen = 256  // shorter texts are cheaper to count than to hash and look up
	cacheGen    = 4096 // entries per generation; at most two generations live
)

type countCache struct {
	seed      maphash.Seed
	mu        sync.Mutex
	cur, prev map[uint64]int32
}

var cache = &countCache{seed: maphash.MakeSeed(), cur: make(map[uint64]int32, cacheGen)}

func (c *countCache) key(legacy bool, text string) uint64 {
	h := maphash.String(c.seed, text)
	if legacy {
		h ^= 0x9e3779b97f4a7c15
	}
	return h
}

func (c *countCache) get(k uint64) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.cur[k]; ok {
		return int(n), true
	}
	if n, ok := c.prev[k]; ok {
		c.putLocked(k, n) // still in use: keep it past the next rotation
		return int(n), true
	}
	return 0, false
}

func (c *countCache) put(k uint64, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, int32(n))
}

// putLocked adds an entry, rotating generations when the current one is
// full, so the cache holds at most 2*cacheGen entries and recently used
// ones survive.
func (c *countCache) putLocked(k uint64, n int32) {
	if len(c.cur) >= cacheGen {
		c.prev, c.cur = c.cur, make(map[uint64]int32, cacheGen)
	}
	c.cur[k] = n
}
