// Package cache is Gantry's exact-match response cache: a response is
// reused only for a request with the same release, the same rendered
// messages and the same sampling parameters. Entries expire after their
// TTL, and the cache is bounded by bytes with least-recently-used eviction.
package cache

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"gantry/pipeline/chat"
)

// Key identifies a cacheable request.
type Key [32]byte

// KeyFor is the SHA-256 of a canonical encoding of everything that shapes
// the answer: the release hash, the model named, the rendered messages
// (roles, contents, names, tool calls) and the sampling parameters, tools
// and response format. Streaming and the end user do not change the answer
// and are left out. Every field is length-prefixed, so no two requests
// share an encoding.
func KeyFor(releaseHash string, req *chat.Request) Key {
	h := sha256.New()
	e := encoder{h: h}
	e.str("gantry-cache-v1")
	e.str(releaseHash)
	e.str(req.Model)
	e.num(uint64(len(req.Messages)))
	for _, m := range req.Messages {
		e.str(m.Role)
		if m.Content.Parts != nil {
			e.num(uint64(len(m.Content.Parts)) + 1)
			for _, p := range m.Content.Parts {
				b, _ := json.Marshal(p)
				e.json(b)
			}
		} else {
			e.num(0)
			e.str(m.Content.Text)
		}
		e.str(m.Name)
		e.str(m.ToolCallID)
		e.num(uint64(len(m.ToolCalls)))
		for _, tc := range m.ToolCalls {
			e.str(tc.ID)
			e.str(tc.Type)
			e.str(tc.Function.Name)
			e.str(tc.Function.Arguments)
		}
	}
	e.float(req.Temperature)
	e.float(req.TopP)
	e.float(req.PresencePenalty)
	e.float(req.FrequencyPenalty)
	e.num(uint64(req.OutputLimit()))
	e.num(uint64(req.Choices()))
	if req.Seed != nil {
		e.num(1)
		e.num(uint64(*req.Seed))
	} else {
		e.num(0)
	}
	e.num(uint64(len(req.Stop)))
	for _, s := range req.Stop {
		e.str(s)
	}
	if rf := req.ResponseFormat; rf != nil {
		b, _ := json.Marshal(rf)
		e.json(b)
	} else {
		e.str("")
	}
	e.num(uint64(len(req.Tools)))
	for _, t := range req.Tools {
		b, _ := json.Marshal(t)
		e.json(b)
	}
	e.json(req.ToolChoice)
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
		e.num(1)
	} else {
		e.num(0)
	}
	var k Key
	h.Sum(k[:0])
	return k
}

// EmbeddingKeyFor is the key of an embeddings request: the identity of
// the route's targets (each model's name, provider and upstream id, so a
// configuration change never serves vectors of another model), the
// dimensions and every input. The output encoding and the end user do not
// change the vectors and are left out.
func EmbeddingKeyFor(targets []string, dimensions int, inputs []string) Key {
	h := sha256.New()
	e := encoder{h: h}
	e.str("gantry-embeddings-v1")
	e.num(uint64(len(targets)))
	for _, t := range targets {
		e.str(t)
	}
	e.num(uint64(dimensions))
	e.num(uint64(len(inputs)))
	for _, in := range inputs {
		e.str(in)
	}
	var k Key
	h.Sum(k[:0])
	return k
}

type encoder struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (e *encoder) num(v uint64) {
	n := binary.PutUvarint(e.buf[:], v)
	e.h.Write(e.buf[:n])
}

func (e *encoder) str(s string) {
	e.num(uint64(len(s)))
	e.h.Write([]byte(s))
}

// json writes raw JSON compacted, so whitespace does not split entries.
func (e *encoder) json(raw []byte) {
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		raw = b.Bytes()
	}
	e.num(uint64(len(raw)))
	e.h.Write(raw)
}

func (e *encoder) float(p *float64) {
	if p == nil {
		e.num(0)
		return
	}
	e.num(1)
	e.num(math.Float64bits(*p))
}

// entryOverhead approximates the memory of an entry beyond its value.
const entryOverhead = 128

// Stats are counters for metrics.
type Stats struct {
	Hits, Misses, Evictions, Expired uint64
	Entries                          int
	Bytes                            int64
}

// Cache is safe for concurrent use.
type Cache struct {
	maxBytes int64
	clock    func() time.Time

	mu    sync.Mutex
	used  int64
	lru   *list.List // front: most recently used
	items map[Key]*list.Element

	hits, misses, evictions, expired atomic.Uint64
}

type entry struct {
	key     Key
	value   []byte
	expires time.Time
}

// New returns a cache holding at most maxBytes of entries. clock may be nil
// for the wall clock.
func New(maxBytes int64, clock func() time.Time) *Cache {
	if clock == nil {
		clock = time.Now
	}
	return &Cache{maxBytes: maxBytes, clock: clock, lru: list.New(), items: map[Key]*list.Element{}}
}

// Get returns the value of k if present and not expired. The value is
// shared: callers must not modify it.
func (c *Cache) Get(k Key) ([]byte, bool) {
	now := c.clock()
	c.mu.Lock()
	el, ok := c.items[k]
	if ok {
		e := el.Value.(*entry)
		if now.Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			c.hits.Add(1)
			return e.value, true
		}
		c.remove(el)
		c.expired.Add(1)
	}
	c.mu.Unlock()
	c.misses.Add(1)
	return nil, false
}

// Put stores a copy of value under k for ttl, evicting the least recently
// used entries to make room. A value larger than the whole cache, or a
// non-positive ttl, is not stored; Put reports whether it was.
func (c *Cache) Put(k Key, value []byte, ttl time.Duration) bool {
	size := int64(len(value)) + entryOverhead
	if ttl <= 0 || size > c.maxBytes {
		return false
	}
	e := &entry{key: k, value: append([]byte(nil), value...), expires: c.clock().Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.remove(el)
	}
	for c.used+size > c.maxBytes {
		c.remove(c.lru.Back())
		c.evictions.Add(1)
	}
	c.items[k] = c.lru.PushFront(e)
	c.used += size
	return true
}

func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.items, e.key)
	c.used -= int64(len(e.value)) + entryOverhead
}

// Stats returns the counters and current size.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	n, used := len(c.items), c.used
	c.mu.Unlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		Expired: c.expired.Load(), Entries: n, Bytes: used}
}

// sweepBatch bounds the entries Sweep looks at under one lock hold, so a
// sweep never holds up a lookup for long.
const sweepBatch = 256

// Sweep removes every expired entry and returns how many. Expired entries
// are otherwise only dropped when looked up or evicted, so a cache of
// short-lived answers would stay full of dead ones. It walks from the least
// recently used end in batches, releasing the lock between them.
func (c *Cache) Sweep() int {
	now := c.clock()
	n := 0
	c.mu.Lock()
	el := c.lru.Back()
	c.mu.Unlock()
	for el != nil {
		c.mu.Lock()
		if c.items[el.Value.(*entry).key] != el {
			c.mu.Unlock()
			return n // removed meanwhile: the next sweep goes on
		}
		for i := 0; el != nil && i < sweepBatch; i++ {
			prev := el.Prev()
			if e := el.Value.(*entry); !now.Before(e.expires) {
				c.remove(el)
				c.expired.Add(1)
				n++
			}
			el = prev
		}
		c.mu.Unlock()
	}
	return n
}
