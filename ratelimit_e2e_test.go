package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
)

// TestClusterRateLimitIsShared gives a key a limit of 30 requests a
// minute on three agent processes and calls all three at once, 30 times
// each: together they serve about 30, not 90, because each agent enforces
// a third of the limit.
func TestClusterRateLimitIsShared(t *testing.T) {
	const rpm, perAgent = 30, 30
	c := startCluster(t)
	c.waitFor("a leader all agents agree on", 30*time.Second, func() bool { return c.leader(c.agents) != "" })
	c.waitConverged(15 * time.Second)
	var ks api.KeySecret
	if _, err := c.call(c.agents[1], "POST", api.PathKeys, api.KeyCreate{Name: "limited", RateLimit: &config.RateLimit{RPM: rpm}}, &ks); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(15 * time.Second)

	c.waitFor("every agent to list three members", 15*time.Second, func() bool {
		for _, a := range c.agents {
			var ms api.Members
			if _, err := c.call(a, "GET", api.PathMembers, nil, &ms); err != nil || len(ms.Members) != 3 {
				return false
			}
			for _, m := range ms.Members {
				if m.HTTPAddr == "" {
					return false
				}
			}
		}
		return true
	})
	var served, limited atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, a := range c.agents {
		wg.Go(func() {
			for i := range perAgent {
				body := fmt.Sprintf(`{"model":"sim-small","max_tokens":5,"messages":[{"role":"user","content":"q%d"}]}`, i)
				req, _ := http.NewRequest("POST", "http://"+a.http+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+ks.Secret)
				resp, err := c.hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK:
					served.Add(1)
				case resp.StatusCode == http.StatusTooManyRequests && strings.Contains(string(b), "rate_limit"):
					limited.Add(1)
				default:
					t.Errorf("%s: %d %s", a.id, resp.StatusCode, b)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// A bucket refills at rpm per minute across the cluster; allow that
	// plus one request per agent for rounding.
	allowed := rpm + int64(elapsed.Seconds()*rpm/60) + int64(len(c.agents))
	if got := served.Load(); got > allowed || got < rpm-int64(len(c.agents)) {
		t.Fatalf("served %d of %d calls in %s with a limit of %d a minute: want about %d (at most %d)", got, len(c.agents)*perAgent, elapsed, rpm, rpm, allowed)
	}
	t.Logf("limit %d/min on 3 agents: %d served, %d refused in %s", rpm, served.Load(), limited.Load(), elapsed.Round(time.Millisecond))
}
