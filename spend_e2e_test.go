package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gantry/api"
	"gantry/cli"
	"gantry/config"
)

// spendCall is one gateway call on sim-small with a fixed output cap. It
// returns the call's cost from the usage the gateway reports, or refused
// when a budget turned it away.
func spendCall(hc *http.Client, a *agentProc, n int) (cost float64, refused bool, err error) {
	body := fmt.Sprintf(`{"model":"sim-small","max_tokens":%d,"messages":[{"role":"user","content":"question %d from %s"}]}`, spendMaxTokens, n, a.id)
	req, _ := http.NewRequest("POST", "http://"+a.http+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+clusterKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests && strings.Contains(string(b), "budget_exceeded"):
		return 0, true, nil
	case resp.StatusCode != http.StatusOK:
		return 0, false, fmt.Errorf("%s: status %d: %s", a.id, resp.StatusCode, b)
	}
	var out struct {
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Usage.Completion == 0 {
		return 0, false, fmt.Errorf("%s: no usage in %s (%v)", a.id, b, err)
	}
	return spendPrice.Cost(out.Usage.Prompt, 0, out.Usage.Completion), false, nil
}

const (
	spendLimit     = 0.0005 // USD, a few dozen calls
	spendMaxTokens = 20
)

// spendPrice is sim-small's price in clusterConfig.
var spendPrice = config.Price{Input: 0.15, Output: 0.60}

// TestClusterBudgetBounded puts a small global budget on three agent
// processes and spends it from all of them at once until half of it is
// gone, then freezes two agents with SIGSTOP, so the third is cut off from
// any quorum, and keeps calling it. It checks that the cut-off agent spends
// the grant it holds, no more, and then refuses, although its own local
// ledger has spent far less than the limit, and that what the three spent
// together never exceeds the limit. Then the two come back (SIGCONT): the
// agents converge on one state whose ledger holds every call's cost, and
// the agent that was cut off is granted more and serves again.
func TestClusterBudgetBounded(t *testing.T) {
	c := startBudgetCluster(t)
	d := &spendDriver{c: c, spent: map[string]float64{}}
	total, spent, mu, served, refused := d.total, d.spent, &d.mu, &d.served, &d.refused
	drive := d.drive

	// Spend from all three until half the budget is gone.
	deadline := time.Now().Add(60 * time.Second)
	drive(c.agents, 2, func() bool { return t.Failed() || total() >= spendLimit/2 || time.Now().After(deadline) })
	if total() < spendLimit/2 {
		t.Fatalf("spent %.7f USD in 60s with three agents; want at least half of %.4f", total(), spendLimit)
	}
	before := total()
	mu.Lock()
	survivorBefore := spent["n1"]
	mu.Unlock()
	if survivorBefore >= spendLimit/2 {
		t.Fatalf("n1 alone spent %.7f of %.4f: want the spend shared by the agents", survivorBefore, spendLimit)
	}

	// Let the wallets top up (they sync twice a second), so n1 holds a
	// grant when it is cut off: the others die, n1 has no quorum and cannot
	// renew it.
	time.Sleep(2 * time.Second)
	frozen := c.agents[1:]
	resume := func() {
		for _, a := range frozen {
			a.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume) // before the agents are stopped, should a check fail
	for _, a := range frozen {
		if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	survivor := c.agents[0]
	refusedBefore := refused.Load()
	lastServed := time.Now()
	var lastMu sync.Mutex
	deadline = time.Now().Add(30 * time.Second)
	served0 := served.Load()
	drive([]*agentProc{survivor}, 2, func() bool {
		lastMu.Lock()
		defer lastMu.Unlock()
		if n := served.Load(); n != served0 {
			served0, lastServed = n, time.Now()
		}
		return t.Failed() || time.Since(lastServed) > 3*time.Second || time.Now().After(deadline)
	})
	if time.Now().After(deadline) {
		t.Fatalf("n1, cut off, still served calls after 30s: it spent beyond its grant")
	}
	mu.Lock()
	cutOff := spent["n1"] - survivorBefore
	survivorTotal := spent["n1"]
	mu.Unlock()

	// A wallet asks for a slice when it holds less than half of one, so it
	// never holds more than one and a half slices. The agent's slice is a
	// twentieth of the limit, or two worst cases of the largest call.
	worst := spendPrice.Cost(64, 0, spendMaxTokens)
	slice := max(spendLimit/20, 2*worst)
	if cutOff > 1.5*slice {
		t.Fatalf("n1 spent %.7f USD while cut off; its grant is at most %.7f", cutOff, 1.5*slice)
	}
	if cutOff <= 0 {
		t.Fatal("n1 spent nothing while cut off: it should spend the grant it holds")
	}
	if refused.Load() == refusedBefore {
		t.Fatal("n1 never refused a call while cut off")
	}
	if survivorTotal >= spendLimit {
		t.Fatalf("n1 spent %.7f in all: the local limit, not the grant, refused", survivorTotal)
	}
	if got := total(); got > spendLimit*(1+1e-9) {
		t.Fatalf("three agents spent %.7f USD together, over the limit %.4f", got, spendLimit)
	}

	// The others return: one state, every call's cost in its ledger, and
	// the agent that was cut off serves again on a new grant.
	resume()
	c.waitFor("a leader all agents agree on", 30*time.Second, func() bool { return c.leader(c.agents) != "" })
	c.waitConverged(30 * time.Second)
	var ledger *api.BudgetLedger
	c.waitFor("the cut-off agent's spend to be committed", 15*time.Second, func() bool {
		var out api.Budgets
		if _, err := c.call(c.agents[1], "GET", api.PathBudgets, nil, &out); err != nil {
			return false
		}
		for _, b := range out.Budgets {
			if b.Name == "e2e-global" && b.Cluster != nil {
				ledger = b.Cluster
			}
		}
		return ledger != nil && math.Abs(ledger.SpentUSD-total()) < 1e-9
	})
	servedBefore := served.Load()
	deadline = time.Now().Add(15 * time.Second)
	drive([]*agentProc{survivor}, 1, func() bool {
		return t.Failed() || served.Load() > servedBefore || time.Now().After(deadline)
	})
	if served.Load() == servedBefore {
		t.Fatalf("n1 served nothing in 15s after the others returned, with %.7f of %.4f USD left", spendLimit-total(), spendLimit)
	}
	if got := total(); got > spendLimit*(1+1e-9) {
		t.Fatalf("three agents spent %.7f USD together, over the limit %.4f", got, spendLimit)
	}
	t.Logf("limit %.4f USD: spent %.7f by three agents (n1 %.7f), then %.7f by n1 cut off (grant bound %.7f); after the others returned the ledger holds %.7f; %d calls served, %d refused; total %.7f",
		spendLimit, before, survivorBefore, cutOff, 1.5*slice, ledger.SpentUSD, served.Load(), refused.Load(), total())
}

// startBudgetCluster starts three agents and gives them a global budget of
// spendLimit.
func startBudgetCluster(t *testing.T) *testCluster {
	t.Helper()
	c := startCluster(t)
	c.waitFor("a leader all agents agree on", 30*time.Second, func() bool { return c.leader(c.agents) != "" })
	c.waitConverged(15 * time.Second)
	addBudget(t, c, config.Budget{Name: "e2e-global", Scope: config.ScopeGlobal, Period: config.PeriodTotal, LimitUSD: spendLimit})
	c.waitConverged(15 * time.Second)
	return c
}

// addBudget adds b to the cluster's configuration as an operator's script
// would: read, edit, write back only if nothing changed in between.
func addBudget(t *testing.T, c *testCluster, b config.Budget) {
	t.Helper()
	resp, body := c.configRequest(c.agents[0], "GET", "", nil, "")
	var cfg config.Config
	if err := json.Unmarshal(body, &cfg); err != nil || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET config: %s, ETag %q: %v", body, resp.Header.Get("ETag"), err)
	}
	cfg.Budgets = append(cfg.Budgets, b)
	edited, _ := json.Marshal(cfg)
	if resp, body := c.configRequest(c.agents[0], "PUT", "", edited, resp.Header.Get("ETag")); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT config: %s: %s", resp.Status, body)
	}
}

// spendDriver makes calls and counts what they cost, by agent.
type spendDriver struct {
	c               *testCluster
	seq             atomic.Int64
	served, refused atomic.Int64
	mu              sync.Mutex
	spent           map[string]float64 // by agent
}

func (d *spendDriver) total() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	sum := 0.0
	for _, v := range d.spent {
		sum += v
	}
	return sum
}

// drive calls each of as from workers goroutines, one call at a time each,
// until stop reports true.
func (d *spendDriver) drive(as []*agentProc, workers int, stop func() bool) {
	t := d.c.t
	var wg sync.WaitGroup
	for _, a := range as {
		for range workers {
			wg.Go(func() {
				for !stop() {
					cost, ref, err := spendCall(d.c.hc, a, int(d.seq.Add(1)))
					switch {
					case err != nil:
						t.Error(err)
						return
					case ref:
						d.refused.Add(1)
						time.Sleep(20 * time.Millisecond)
					default:
						d.served.Add(1)
						d.mu.Lock()
						d.spent[a.id] += cost
						d.mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
}

// untilIdle stops a drive once no call was served for idle, or at
// deadline; timedOut reports the latter.
func (d *spendDriver) untilIdle(idle time.Duration, deadline time.Time) (stop func() bool, timedOut func() bool) {
	var mu sync.Mutex
	last, n := time.Now(), d.served.Load()
	out := false
	stop = func() bool {
		mu.Lock()
		defer mu.Unlock()
		if m := d.served.Load(); m != n {
			n, last = m, time.Now()
		}
		out = time.Now().After(deadline)
		return d.c.t.Failed() || time.Since(last) > idle || out
	}
	return stop, func() bool { mu.Lock(); defer mu.Unlock(); return out }
}

// TestClusterBudgetExhaustedAcrossAgents spends a small global budget from
// three agents until every agent refuses: together they spend no more than
// the limit, and most of it, since grants follow the spend.
func TestClusterBudgetExhaustedAcrossAgents(t *testing.T) {
	c := startBudgetCluster(t)
	d := &spendDriver{c: c, spent: map[string]float64{}}
	stop, timedOut := d.untilIdle(3*time.Second, time.Now().Add(90*time.Second))
	d.drive(c.agents, 2, stop)
	if timedOut() {
		t.Fatalf("agents still served calls after 90s, having spent %.7f of %.4f USD", d.total(), spendLimit)
	}
	worst := spendPrice.Cost(64, 0, spendMaxTokens)
	slice := max(spendLimit/20, 2*worst)
	got := d.total()
	if got > spendLimit*(1+1e-9) {
		t.Fatalf("three agents spent %.7f USD together, over the limit %.4f", got, spendLimit)
	}
	// What is left is at most what each agent holds but cannot use (less
	// than one call) plus what no call fits in.
	if left := spendLimit - got; left > 3*worst+worst {
		t.Fatalf("spent %.7f of %.4f USD: %.7f left unused, more than the agents' remainders", got, spendLimit, left)
	}
	d.mu.Lock()
	by := fmt.Sprint(d.spent)
	d.mu.Unlock()
	t.Logf("limit %.4f USD, slice %.7f: spent %.7f (%s); %d calls served, %d refused", spendLimit, slice, got, by, d.served.Load(), d.refused.Load())
}

// TestStoppedAgentGivesItsGrantBack spends a little from three agents so
// each holds a grant, stops one with SIGTERM, and checks on another agent
// that the leaver's spend is committed and its grant is gone, so what it
// held can be granted to the others.
func TestStoppedAgentGivesItsGrantBack(t *testing.T) {
	c := startBudgetCluster(t)
	d := &spendDriver{c: c, spent: map[string]float64{}}
	deadline := time.Now().Add(30 * time.Second)
	d.drive(c.agents, 1, func() bool { return t.Failed() || d.total() >= spendLimit/4 || time.Now().After(deadline) })
	leaver, observer := c.agents[2], c.agents[0]
	ledger := func() *api.BudgetLedger {
		var out api.Budgets
		if _, err := c.call(observer, "GET", api.PathBudgets, nil, &out); err != nil {
			t.Fatal(err)
		}
		for _, b := range out.Budgets {
			if b.Name == "e2e-global" && b.Cluster != nil {
				if b.SpentUSD != b.Cluster.SpentUSD {
					t.Fatalf("budget spent %.7f, its cluster ledger %.7f: a shared budget shows the cluster's spend", b.SpentUSD, b.Cluster.SpentUSD)
				}
				return b.Cluster
			}
		}
		t.Fatalf("no cluster ledger for e2e-global in %+v", out.Budgets)
		return nil
	}
	held := func(l *api.BudgetLedger, agent string) (api.BudgetGrant, bool) {
		for _, g := range l.Grants {
			if g.Agent == agent {
				return g, true
			}
		}
		return api.BudgetGrant{}, false
	}
	var before *api.BudgetLedger
	c.waitFor("the leaver to hold a grant it has not used", 10*time.Second, func() bool {
		before = ledger()
		g, ok := held(before, leaver.id)
		return ok && g.GrantedUSD > g.UsedUSD
	})
	g, _ := held(before, leaver.id)
	leaver.stop(t)

	d.mu.Lock()
	leaverSpent := d.spent[leaver.id]
	d.mu.Unlock()
	var after *api.BudgetLedger
	c.waitFor("the leaver's grant to be given back", 10*time.Second, func() bool {
		after = ledger()
		_, ok := held(after, leaver.id)
		return !ok
	})
	// What the leaver spent stays spent: the ledger's spend covers it.
	if after.SpentUSD < leaverSpent-1e-12 {
		t.Fatalf("ledger spent %.7f after the leave, less than the leaver's own %.7f", after.SpentUSD, leaverSpent)
	}
	others := 0.0
	for _, og := range after.Grants {
		others += og.GrantedUSD - og.UsedUSD
	}
	if want := spendLimit - after.SpentUSD - others; math.Abs(after.AvailableUSD-want) > 1e-12 {
		t.Fatalf("available %.7f, want limit - spent - others' outstanding = %.7f", after.AvailableUSD, want)
	}
	// An operator sees the same: the cluster's spend, and grants held by
	// the agents still there.
	var out bytes.Buffer
	if err := cli.Run(context.Background(), "get", []string{"budgets", "--agent", observer.http, "--token", clusterAdmin}, &out); err != nil {
		t.Fatal(err)
	}
	row := ""
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "e2e-global ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 10 || f[5] != fmt.Sprintf("%.4f", after.SpentUSD) || f[9] != strconv.Itoa(len(after.Grants)) {
		t.Fatalf("gantry get budgets shows %q; want the cluster's spend %.4f and %d grants\n%s", row, after.SpentUSD, len(after.Grants), out.String())
	}
	t.Logf("leaver held %.7f (used %.7f); available before %.7f, after %.7f", g.GrantedUSD, g.UsedUSD, before.AvailableUSD, after.AvailableUSD)
}
