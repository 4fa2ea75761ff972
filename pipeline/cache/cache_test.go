package cache

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"gantry/pipeline/chat"
)

func baseRequest() *chat.Request {
	t := 0.2
	return &chat.Request{
		Model:       "feature/support",
		Temperature: &t,
		MaxTokens:   200,
		Messages: []chat.Message{
			{Role: "system", Content: chat.Text("Be brief.")},
			{Role: "user", Content: chat.Text("Where is my parcel?")},
		},
	}
}

func TestKeyFor(t *testing.T) {
	base := KeyFor("sha256:r1", baseRequest())
	if base != KeyFor("sha256:r1", baseRequest()) {
		t.Fatal("key not deterministic")
	}
	f := func(v float64) *float64 { return &v }
	seed := int64(7)
	differs := map[string]func(r *chat.Request) string{
		"release": func(r *chat.Request) string { return "sha256:r2" },
		"model":   func(r *chat.Request) string { r.Model = "feature/other"; return "" },
		"content": func(r *chat.Request) string { r.Messages[1].Content = chat.Text("Where is my parcel!"); return "" },
		"role":    func(r *chat.Request) string { r.Messages[0].Role = "developer"; return "" },
		"split text": func(r *chat.Request) string {
			r.Messages[0].Content = chat.Text("Be brief.Where")
			r.Messages[1].Content = chat.Text(" is my parcel?")
			return ""
		},
		"name":        func(r *chat.Request) string { r.Messages[1].Name = "kim"; return "" },
		"temperature": func(r *chat.Request) string { r.Temperature = f(0.3); return "" },
		"no temp":     func(r *chat.Request) string { r.Temperature = nil; return "" },
		"top_p":       func(r *chat.Request) string { r.TopP = f(0.9); return "" },
		"max tokens":  func(r *chat.Request) string { r.MaxTokens = 201; return "" },
		"seed":        func(r *chat.Request) string { r.Seed = &seed; return "" },
		"stop":        func(r *chat.Request) string { r.Stop = chat.Stop{"\n"}; return "" },
		"format":      func(r *chat.Request) string { r.ResponseFormat = &chat.ResponseFormat{Type: "json_object"}; return "" },
		"tools": func(r *chat.Request) string {
			r.Tools = []chat.Tool{{Type: "function", Function: chat.Function{Name: "f"}}}
			return ""
		},
		"tool call": func(r *chat.Request) string {
			r.Messages = append(r.Messages, chat.Message{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "1", Function: chat.FunctionCall{Name: "f", Arguments: "{}"}}}})
			return ""
		},
	}
	for name, change := range differs {
		t.Run(name, func(t *testing.T) {
			r := baseRequest()
			release := "sha256:r1"
			if v := change(r); v != "" {
				release = v
			}
			if KeyFor(release, r) == base {
				t.Fatalf("changing %s kept the key", name)
			}
		})
	}
	same := map[string]func(r *chat.Request){
		"stream":                func(r *chat.Request) { r.Stream = true },
		"user":                  func(r *chat.Request) { r.User = "u1" },
		"max_completion_tokens": func(r *chat.Request) { r.MaxTokens = 0; r.MaxCompletionTokens = 200 },
	}
	for name, change := range same {
		r := baseRequest()
		change(r)
		if KeyFor("sha256:r1", r) != base {
			t.Fatalf("%s changed the key", name)
		}
	}
	var a, b chat.Request
	if err := json.Unmarshal([]byte(`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"messages":[{"role":"user","content":[ { "type" : "text", "text": "hi" } ]}]}`), &b); err != nil {
		t.Fatal(err)
	}
	if KeyFor("r", &a) != KeyFor("r", &b) {
		t.Fatal("JSON whitespace in content parts changed the key")
	}
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func key(i int) Key { return KeyFor(fmt.Sprint(i), &chat.Request{}) }

func TestTTL(t *testing.T) {
	clk := &clock{now: time.Unix(1000, 0)}
	c := New(1<<20, clk.Now)
	if !c.Put(key(1), []byte("answer"), time.Minute) {
		t.Fatal("put refused")
	}
	if v, ok := c.Get(key(1)); !ok || string(v) != "answer" {
		t.Fatalf("get = %q %v", v, ok)
	}
	clk.Add(time.Minute)
	if _, ok := c.Get(key(1)); ok {
		t.Fatal("expired entry served")
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Expired != 1 || st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
	if c.Put(key(2), []byte("x"), 0) {
		t.Fatal("zero TTL stored")
	}
}

func TestLRUByBytes(t *testing.T) {
	value := make([]byte, 1000-entryOverhead)
	c := New(3000, nil)
	for i := 1; i <= 3; i++ {
		c.Put(key(i), value, time.Hour)
	}
	c.Get(key(1)) // 1 is now the most recently used; 2 is the oldest
	c.Put(key(4), value, time.Hour)
	for i, want := range map[int]bool{1: true, 2: false, 3: true, 4: true} {
		if _, ok := c.Get(key(i)); ok != want {
			t.Fatalf("entry %d present=%v, want %v", i, ok, want)
		}
	}
	st := c.Stats()
	if st.Bytes > 3000 || st.Evictions != 1 || st.Entries != 3 {
		t.Fatalf("stats %+v", st)
	}
	if c.Put(key(9), make([]byte, 3000), time.Hour) {
		t.Fatal("entry larger than the cache stored")
	}
	// Replacing an entry does not count its old size twice.
	c.Put(key(3), value, time.Hour)
	if st := c.Stats(); st.Bytes != 3000 || st.Entries != 3 {
		t.Fatalf("after replace: %+v", st)
	}
}

func TestPutCopies(t *testing.T) {
	c := New(1<<20, nil)
	v := []byte("abc")
	c.Put(key(1), v, time.Hour)
	v[0] = 'X'
	if got, _ := c.Get(key(1)); string(got) != "abc" {
		t.Fatalf("cache shares the caller's buffer: %q", got)
	}
}

func TestConcurrent(t *testing.T) {
	c := New(64<<10, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := key((g*7 + i) % 300)
				if v, ok := c.Get(k); ok && len(v) != 500 {
					t.Errorf("corrupt value of %d bytes", len(v))
					return
				}
				c.Put(k, make([]byte, 500), time.Hour)
			}
		}(g)
	}
	wg.Wait()
	if st := c.Stats(); st.Bytes > 64<<10 || st.Hits+st.Misses != 16000 {
		t.Fatalf("stats %+v", st)
	}
}

func BenchmarkKeyFor(b *testing.B) {
	r := baseRequest()
	for b.Loop() {
		KeyFor("sha256:r1", r)
	}
}

func BenchmarkGetPut(b *testing.B) {
	c := New(16<<20, nil)
	keys := make([]Key, 4096)
	for i := range keys {
		keys[i] = key(i)
	}
	value := make([]byte, 2048)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := keys[i%len(keys)]
			if _, ok := c.Get(k); !ok {
				c.Put(k, value, time.Hour)
			}
			i++
		}
	})
}

func TestEmbeddingKeyFor(t *testing.T) {
	targets := []string{"embed\x00openai\x00text-embedding-3-small"}
	base := EmbeddingKeyFor(targets, 256, []string{"a b", "c"})
	if base != EmbeddingKeyFor(targets, 256, []string{"a b", "c"}) {
		t.Fatal("key not deterministic")
	}
	for name, k := range map[string]Key{
		"upstream":   EmbeddingKeyFor([]string{"embed\x00openai\x00text-embedding-3-large"}, 256, []string{"a b", "c"}),
		"dimensions": EmbeddingKeyFor(targets, 0, []string{"a b", "c"}),
		"input":      EmbeddingKeyFor(targets, 256, []string{"a b", "d"}),
		"split":      EmbeddingKeyFor(targets, 256, []string{"a", "b c"}),
		"order":      EmbeddingKeyFor(targets, 256, []string{"c", "a b"}),
		"one input":  EmbeddingKeyFor(targets, 256, []string{"a b"}),
	} {
		if k == base {
			t.Fatalf("%s: same key", name)
		}
	}
}

// TestSweepDropsExpiredEntries: expired entries leave the cache and give
// their bytes back without being looked up; live ones stay.
func TestSweepDropsExpiredEntries(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(1<<20, func() time.Time { return now })
	for i := range 1000 {
		ttl := time.Minute
		if i%2 == 0 {
			ttl = time.Hour
		}
		c.Put(Key{byte(i), byte(i >> 8)}, []byte("answer"), ttl)
	}
	now = now.Add(2 * time.Minute)
	if n := c.Sweep(); n != 500 {
		t.Fatalf("swept %d, want the 500 expired", n)
	}
	st := c.Stats()
	if st.Entries != 500 || st.Bytes != 500*(int64(len("answer"))+entryOverhead) {
		t.Fatalf("after the sweep: %+v", st)
	}
	if _, ok := c.Get(Key{0, 0}); !ok {
		t.Fatal("a live entry was swept")
	}
}

// TestSweepUnderConcurrentUse: sweeping while other goroutines store the
// same keys again and look them up leaves the cache consistent: every
// entry in the index is in the list, and the bytes add up.
func TestSweepUnderConcurrentUse(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := New(1<<20, clock)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3000 {
				k := Key{byte(i % 300), byte(g)}
				c.Put(k, []byte("answer"), time.Duration(1+i%3)*time.Second)
				c.Get(k)
			}
		})
	}
	for range 50 {
		mu.Lock()
		now = now.Add(time.Second)
		mu.Unlock()
		c.Sweep()
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var used int64
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*entry)
		if c.items[e.key] != el {
			t.Fatal("an entry in the list is not the one the index names")
		}
		used += int64(len(e.value)) + entryOverhead
	}
	if len(c.items) != c.lru.Len() || used != c.used {
		t.Fatalf("index %d entries, list %d, bytes %d counted %d", len(c.items), c.lru.Len(), c.used, used)
	}
}
