package semcache

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// Lookups and puts from many calls at once, across releases and
// partitions, keep every bound.
func TestConcurrentUse(t *testing.T) {
	c := New(4, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ix := c.Index(fmt.Sprint("release-", (w+i)%6), 50, 8)
				v := make([]float32, 8)
				v[i%8] = 1
				ix.Put(fmt.Sprint("team-", w%3), v, []byte{byte(i)}, "", time.Minute)
				ix.Lookup(fmt.Sprint("team-", w%3), v, 0.9)
			}
		}()
	}
	wg.Wait()
	if n := c.Entries(); n > 4*50 {
		t.Fatalf("%d entries, more than 4 indexes of 50", n)
	}
}
