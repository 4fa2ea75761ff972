package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
)

// prober calls every agent with a revoked key and with a key whose budget
// is spent, all the time: it counts revoked calls served, and adds up the
// cost of every call served on the budget, which the ledger must hold.
type prober struct {
	hc                    *http.Client
	revoked, spent        string // the two keys' secrets
	revokedServed, served atomic.Int64
	mu                    sync.Mutex
	cost                  float64
	stop                  chan struct{}
	wg                    sync.WaitGroup
}

func startProber(c *testCluster, revoked, spent string) *prober {
	p := &prober{hc: &http.Client{Timeout: 5 * time.Second}, revoked: revoked, spent: spent, stop: make(chan struct{})}
	for _, a := range c.agents {
		for _, secret := range []string{revoked, spent} {
			p.wg.Go(func() {
				for {
					select {
					case <-p.stop:
						return
					default:
					}
					// Agents that are down or not serving yet answer
					// nothing or 503.
					if ok, cost, _ := keyCall(c.hc, a, secret); ok && secret == revoked {
						p.revokedServed.Add(1)
					} else if ok {
						p.served.Add(1)
						p.mu.Lock()
						p.cost += cost
						p.mu.Unlock()
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
	}
	return p
}

func (p *prober) close() {
	close(p.stop)
	p.wg.Wait()
}

// serving reports whether the agent's /readyz says it serves, and how.
func (c *testCluster) serving(a *agentProc) (bool, string) {
	resp, err := c.hc.Get("http://" + a.http + "/readyz")
	if err != nil {
		return false, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK, string(b)
}

// restart stops the agents and starts them again, and returns how long
// each took from its start to serving.
func (c *testCluster) restart(as ...*agentProc) map[string]time.Duration {
	c.t.Helper()
	for _, a := range as {
		a.stop(c.t)
	}
	took := map[string]time.Duration{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range as {
		a.start(c.t)
		started := time.Now()
		wg.Go(func() {
			for time.Since(started) < 60*time.Second {
				if ok, _ := c.serving(a); ok {
					mu.Lock()
					took[a.id] = time.Since(started)
					mu.Unlock()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, a := range as {
		if _, ok := took[a.id]; !ok {
			c.t.Fatalf("%s did not serve within 60s of its restart", a.id)
		}
	}
	return took
}

// TestRestartServesNothingStale revokes a key and spends a key's budget to
// the end, then restarts the whole cluster and then one follower while
// probing every agent with both keys from the moment it listens: an agent
// must not serve before it knows the cluster's state, so not one revoked
// call and not one call beyond the spent budget is served. Then one agent
// starts while the others are down: after its bounded wait it serves what
// it applied before it stopped, says it is stale, and still refuses both.
func TestRestartServesNothingStale(t *testing.T) {
	c := startClusterWith(t, clusterConfig(), "--catch-up-wait", "3s")
	c.waitFor("a leader all agents agree on", 30*time.Second, func() bool { return c.leader(c.agents) != "" })
	c.waitConverged(15 * time.Second)
	var victim, spender api.KeySecret
	for name, out := range map[string]*api.KeySecret{"victim": &victim, "spender": &spender} {
		if _, err := c.call(c.agents[0], "POST", api.PathKeys, api.KeyCreate{Name: name}, out); err != nil {
			t.Fatal(err)
		}
	}
	addBudget(t, c, config.Budget{Name: "spender-cap", Scope: config.ScopeKey, Match: "spender", Period: config.PeriodTotal, LimitUSD: 0.0002})
	c.waitConverged(15 * time.Second)
	// Spend the budget through every agent until all refuse.
	deadline := time.Now().Add(60 * time.Second)
	var charged float64 // what the calls served on the budget cost
	for refusing := 0; refusing < len(c.agents); {
		if time.Now().After(deadline) {
			t.Fatal("the budget was not spent within 60s")
		}
		refusing = 0
		for _, a := range c.agents {
			served, cost, err := keyCall(c.hc, a, spender.Secret)
			switch {
			case err != nil:
				t.Fatal(err)
			case served:
				charged += cost
			default:
				refusing++
			}
		}
	}
	if _, err := c.call(c.agents[1], "POST", api.KeyPath("victim", "revoke"), nil, nil); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the revoked key refused everywhere", 10*time.Second, func() bool {
		for _, a := range c.agents {
			if served, _, _ := keyCall(c.hc, a, victim.Secret); served {
				return false
			}
		}
		return true
	})

	p := startProber(c, victim.Secret, spender.Secret)
	whole := c.restart(c.agents...)
	time.Sleep(2 * time.Second)
	lead := c.leader(c.agents)
	var follower *agentProc
	for _, a := range c.agents {
		if a.id != lead {
			follower = a
		}
	}
	one := c.restart(follower)
	time.Sleep(2 * time.Second)
	p.close()
	if n := p.revokedServed.Load(); n != 0 {
		t.Errorf("a revoked key was served %d times across the restarts", n)
	}
	charged += p.cost
	for _, a := range c.agents {
		if err := c.chat(a); err != nil {
			t.Fatalf("after the restarts: %v", err)
		}
	}
	t.Logf("start to serving, whole cluster restarted: %v; one follower restarted with a leader: %v", whole, one[follower.id])

	// Alone, without a leader: 503 for the bounded wait, then the state it
	// applied before it stopped, said to be stale.
	for _, a := range c.agents {
		a.stop(t)
	}
	alone := c.agents[0]
	p = startProber(&testCluster{t: t, hc: c.hc, agents: []*agentProc{alone}}, victim.Secret, spender.Secret)
	alone.start(t)
	started := time.Now()
	var body string
	c.waitFor("the lone agent to serve, stale", 30*time.Second, func() bool {
		ok, b := c.serving(alone)
		body = b
		return ok
	})
	took := time.Since(started)
	p.close()
	if took < 3*time.Second || !strings.Contains(body, `"stale"`) {
		t.Fatalf("without a leader the agent served after %v with %s; want after its 3s wait, marked stale", took, body)
	}
	if n := p.revokedServed.Load(); n != 0 {
		t.Fatalf("the lone agent served the revoked key %d times", n)
	}
	charged += p.cost
	if err := c.chat(alone); err != nil {
		t.Fatalf("the stale agent does not serve: %v", err)
	}
	if got := c.metric(alone, "gantry_config_stale"); got != "1" {
		t.Fatalf("gantry_config_stale = %q, want 1", got)
	}
	st, err := c.status(alone)
	if err != nil || !strings.Contains(st.Unserved, "no leader reachable") {
		t.Fatalf("status %+v (%v): want it to say it serves without a leader", st, err)
	}
	t.Logf("start to serving without a leader: %v (wait 3s)", took)
	for _, a := range c.agents[1:] {
		a.start(t)
	}
	c.waitFor("the agent caught up once a leader exists", 30*time.Second, func() bool { return c.metric(alone, "gantry_config_stale") == "0" })
	c.waitConverged(60 * time.Second)

	// Every call served on the budget is in its ledger, and together they
	// never went past the limit.
	var out api.Budgets
	if _, err := c.call(alone, "GET", api.PathBudgets, nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, b := range out.Budgets {
		if b.Name != "spender-cap" {
			continue
		}
		if b.Cluster == nil || math.Abs(b.Cluster.SpentUSD-charged) > 1e-9 || b.Cluster.SpentUSD > b.LimitUSD+1e-12 {
			t.Fatalf("the ledger holds %+v; the calls served on it cost %.9f USD, within the limit %.4f", b.Cluster, charged, b.LimitUSD)
		}
		t.Logf("budget %.4f USD: %d calls served during the restarts; ledger %.9f USD, calls %.9f USD", b.LimitUSD, p.served.Load(), b.Cluster.SpentUSD, charged)
		return
	}
	t.Fatal("no spender-cap budget")
}

// keyCall makes one small gateway call with a virtual key: whether it was
// served and what it cost, or an error for anything but a refusal (a
// refused key, a spent budget, an agent not serving yet or down).
func keyCall(hc *http.Client, a *agentProc, secret string) (served bool, cost float64, err error) {
	req, _ := http.NewRequest("POST", "http://"+a.http+"/v1/chat/completions",
		strings.NewReader(`{"model":"sim-small","max_tokens":20,"messages":[{"role":"user","content":"spend"}]}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := hc.Do(req)
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		var out struct {
			Usage struct {
				Prompt     int `json:"prompt_tokens"`
				Completion int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return true, 0, err
		}
		return true, spendPrice.Cost(out.Usage.Prompt, 0, out.Usage.Completion), nil
	case http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusServiceUnavailable:
		return false, 0, nil
	}
	return false, 0, fmt.Errorf("%s: status %d: %s", a.id, resp.StatusCode, b)
}
