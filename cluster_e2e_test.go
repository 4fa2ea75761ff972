package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	"gantry/internal/freeport"
)

const (
	clusterKey    = "gk_cluster-e2e-key-0001"
	clusterAdmin  = "gat_cluster-e2e-admin"
	clusterSecret = "cluster-e2e-secret"
)

// clusterConfig is served by the three agents: a simulator without faults,
// so every gateway failure is the cluster's.
func clusterConfig() string {
	return `providers:
  - name: sim
    kind: sim
    sim: {latency_p50: 2ms, latency_p99: 10ms, output_tokens: 12, seed: 3}
models:
  - name: sim-small
    provider: sim
    price: {input: 0.15, output: 0.60}
routes:
  - name: cheap
    targets: [{model: sim-small, weight: 1}]
features:
  - name: answer
    releases:
      - version: 1
        system: Answer briefly.
        template: [{role: user, content: "{{question}}"}]
        variables: [{name: question, required: true}]
        route: cheap
      - version: 2
        system: Answer in one sentence.
        template: [{role: user, content: "{{question}}"}]
        variables: [{name: question, required: true}]
        route: cheap
    labels: {production: 1}
keys:
  - name: e2e
    hash: ` + config.HashKey(clusterKey) + `
`
}

// agentProc is one `gantry agent` process of the test cluster.
type agentProc struct {
	id, http, raft, dir string
	args                []string
	env                 []string // added to the test's environment
	cmd                 *exec.Cmd
	log                 *os.File
	exited              chan struct{}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := freeport.Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

func (a *agentProc) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(os.Args[0], a.args...)
	cmd.Env = append(append(os.Environ(), "GANTRY_RUN_MAIN=1", "GANTRY_ADMIN_TOKENS="+clusterAdmin), a.env...)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", a.id, err)
	}
	a.cmd = cmd
	a.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(a.exited)
	}()
}

// stop sends SIGTERM and waits for a clean exit.
func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	if a.cmd == nil {
		return // never started
	}
	select {
	case <-a.exited:
		return
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		if code := a.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM", a.id, code)
		}
	case <-time.After(25 * time.Second):
		// SIGQUIT makes a Go program print every goroutine's stack to
		// its log: what the stop waited on.
		a.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-a.exited:
		case <-time.After(5 * time.Second):
			a.cmd.Process.Kill()
			<-a.exited
		}
		b, _ := os.ReadFile(a.log.Name())
		t.Errorf("%s did not stop within 25s of SIGTERM; its goroutines:\n%s", a.id, tail(string(b), 60000))
	}
}

// testCluster is three agents on loopback that form a cluster with
// --bootstrap-expect 3.
type testCluster struct {
	t      *testing.T
	agents []*agentProc
	hc     *http.Client
}

func startCluster(t *testing.T) *testCluster { return startClusterWith(t, clusterConfig()) }

// startClusterWith starts three agents that seed the cluster with cfg,
// each with the extra agent flags.
func startClusterWith(t *testing.T, cfg string, extra ...string) *testCluster {
	t.Helper()
	c := newCluster(t, cfg, extra...)
	for _, a := range c.agents {
		a.start(t)
	}
	return c
}

// newCluster prepares three agents as startClusterWith does, without
// starting them; stopping them and showing their logs on failure is set up.
func newCluster(t *testing.T, cfg string, extra ...string) *testCluster {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gantry.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 6)
	c := &testCluster{t: t, hc: &http.Client{Timeout: 10 * time.Second}}
	var joins []string
	for i := range 3 {
		joins = append(joins, "127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	for i := range 3 {
		a := &agentProc{id: fmt.Sprintf("n%d", i+1), http: joins[i], raft: "127.0.0.1:" + strconv.Itoa(ports[3+i]), dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1))}
		log, err := os.Create(filepath.Join(dir, a.id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		a.log = log
		a.args = []string{"agent", "--node-id", a.id, "--http-addr", a.http, "--raft-addr", a.raft, "--data-dir", a.dir,
			"--config", cfgFile, "--bootstrap-expect", "3", "--join", strings.Join(joins, ","), "--cluster-secret", clusterSecret, "--log-level", "warn"}
		a.args = append(a.args, extra...)
		c.agents = append(c.agents, a)
	}
	t.Cleanup(func() {
		for _, a := range c.agents {
			a.stop(t)
		}
		if t.Failed() {
			for _, a := range c.agents {
				b, _ := os.ReadFile(a.log.Name())
				t.Logf("log of %s:\n%s", a.id, tail(string(b), 4000))
			}
		}
		for _, a := range c.agents {
			a.log.Close()
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// call sends an admin request and decodes a 2xx answer into out.
func (c *testCluster) call(a *agentProc, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+a.http+path, body)
	req.Header.Set("Authorization", "Bearer "+clusterAdmin)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s on %s: %d %s", method, path, a.id, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func (c *testCluster) status(a *agentProc) (api.Status, error) {
	var st api.Status
	_, err := c.call(a, "GET", api.PathStatus, nil, &st)
	return st, err
}

// waitFor polls cond until it holds or the timeout passes.
func (c *testCluster) waitFor(what string, timeout time.Duration, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			c.t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// leader is the id all reachable agents among as agree leads, or "".
func (c *testCluster) leader(as []*agentProc) string {
	lead := ""
	for _, a := range as {
		st, err := c.status(a)
		if err != nil || st.Leader == "" || (lead != "" && st.Leader != lead) {
			return ""
		}
		lead = st.Leader
	}
	return lead
}

func (c *testCluster) byID(id string) *agentProc {
	for _, a := range c.agents {
		if a.id == id {
			return a
		}
	}
	c.t.Fatalf("no agent %s", id)
	return nil
}

// chat makes one gateway call and returns an error unless it succeeded.
func (c *testCluster) chat(a *agentProc) error {
	req, _ := http.NewRequest("POST", "http://"+a.http+"/v1/chat/completions",
		strings.NewReader(`{"model":"feature/answer","messages":[{"role":"user","content":"Where is my order?"}],"metadata":{"question":"Where is my order?"}}`))
	req.Header.Set("Authorization", "Bearer "+clusterKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: status %d: %s", a.id, resp.StatusCode, b)
	}
	return nil
}

// waitConverged waits until every agent serves a configuration and the
// same state, and returns its hash.
func (c *testCluster) waitConverged(timeout time.Duration) string {
	c.t.Helper()
	var hash string
	var last []string // each agent's last answer, for the failure message
	start := time.Now()
	for {
		hash, last = "", last[:0]
		converged := true
		sections := map[string]map[string]bool{} // part of the state -> its hashes
		for _, a := range c.agents {
			st, err := c.status(a)
			if err != nil {
				last = append(last, fmt.Sprintf("%s: %v", a.id, err))
				converged = false
				continue
			}
			for name, h := range st.StateSections {
				if sections[name] == nil {
					sections[name] = map[string]bool{}
				}
				sections[name][h] = true
			}
			last = append(last, fmt.Sprintf("%s: leader %q state %d %.12s serving %d %s", a.id, st.Leader, st.StateIndex, st.StateHash, st.ServingIndex, st.Unserved))
			if (hash != "" && st.StateHash != hash) || st.ServingIndex == 0 || st.ServingIndex != st.StateIndex {
				converged = false
			}
			hash = st.StateHash
		}
		if converged {
			return hash
		}
		if time.Since(start) > timeout {
			var differ []string
			for name, hs := range sections {
				if len(hs) > 1 {
					differ = append(differ, name)
				}
			}
			slices.Sort(differ)
			c.t.Fatalf("all agents serve the same state: not within %s; last seen:\n%s\nparts of the state that differ: %v", timeout, strings.Join(last, "\n"), differ)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterSurvivesLeaderKill runs three agent processes, streams key
// creations (through the followers) and gateway calls, kills the leader with
// SIGKILL mid-stream, and checks that no gateway call failed, that every
// acknowledged write is on every agent, that the killed agent catches up
// after a restart, from a snapshot since the others compacted their logs
// past its last entry while it was down, and that all three end with the
// same state hash. It then measures how soon a promote is served by all
// three.
func TestClusterSurvivesLeaderKill(t *testing.T) {
	const trailing = 64 // snapshot threshold and entries kept behind a snapshot
	c := startClusterWith(t, clusterConfig(), "--raft-snapshot-threshold", strconv.Itoa(trailing), "--raft-snapshot-interval", "1s")
	c.waitFor("the cluster forms and serves the seeded configuration", 40*time.Second, func() bool {
		if c.leader(c.agents) == "" {
			return false
		}
		for _, a := range c.agents {
			st, err := c.status(a)
			if err != nil || st.ServingIndex == 0 {
				return false
			}
		}
		return true
	})
	// Every agent announces its admin address within a reconcile interval.
	var ms api.Members
	c.waitFor("three healthy voters", 20*time.Second, func() bool {
		if _, err := c.call(c.agents[0], "GET", api.PathMembers, nil, &ms); err != nil || len(ms.Members) != 3 || ms.Leader == "" {
			return false
		}
		for _, m := range ms.Members {
			if !m.Voter || !m.Healthy {
				return false
			}
		}
		return true
	})

	leader := c.byID(c.leader(c.agents))
	var survivors []*agentProc
	for _, a := range c.agents {
		if a != leader {
			survivors = append(survivors, a)
		}
	}

	// Gateway traffic on the survivors, and key creations through them.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	var failMu sync.Mutex
	var failMsgs []string
	for _, a := range survivors {
		for range 2 {
			wg.Go(func() {
				for ctx.Err() == nil {
					calls.Add(1)
					if err := c.chat(a); err != nil {
						failures.Add(1)
						failMu.Lock()
						failMsgs = append(failMsgs, err.Error())
						failMu.Unlock()
					}
				}
			})
		}
	}
	var ackMu sync.Mutex
	var acked []string
	var refused atomic.Int64
	var refusedMsgs []string
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			name := fmt.Sprintf("k-%04d", i)
			var ks api.KeySecret
			if status, err := c.call(survivors[i%2], "POST", api.PathKeys, api.KeyCreate{Name: name}, &ks); err == nil && status == 201 {
				ackMu.Lock()
				acked = append(acked, name)
				ackMu.Unlock()
			} else {
				refused.Add(1)
				ackMu.Lock()
				refusedMsgs = append(refusedMsgs, fmt.Sprintf("%s: %d %v", name, status, err))
				ackMu.Unlock()
			}
		}
	})
	ackedNow := func() int {
		ackMu.Lock()
		defer ackMu.Unlock()
		return len(acked)
	}

	c.waitFor("writes flow before the kill", 20*time.Second, func() bool { return ackedNow() >= 30 })
	beforeKill := ackedNow()
	lastSeen, err := c.status(leader)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leader.exited
	election := c.waitFor("the survivors elect a new leader", 30*time.Second, func() bool {
		l := c.leader(survivors)
		return l != "" && l != leader.id
	})
	c.waitFor("writes flow after the kill", 30*time.Second, func() bool { return ackedNow() >= beforeKill+30 })
	// The survivors snapshot and compact until the entries after the
	// killed agent's last one are gone from their logs: it can catch up
	// only by installing a snapshot.
	var compacted uint64
	c.waitFor("the survivors compact their logs past the killed agent", 60*time.Second, func() bool {
		compacted = ^uint64(0)
		for _, a := range survivors {
			st, err := c.status(a)
			if err != nil {
				return false
			}
			compacted = min(compacted, st.SnapshotIndex)
		}
		return compacted > lastSeen.LastIndex+trailing
	})
	stop()
	wg.Wait()
	t.Logf("leader %s killed: new leader after %s; %d writes acknowledged (%d before the kill), %d not; %d gateway calls on the survivors, %d failed",
		leader.id, election.Round(time.Millisecond), len(acked), beforeKill, refused.Load(), calls.Load(), failures.Load())
	for _, m := range refusedMsgs {
		t.Logf("not acknowledged: %s", m)
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d gateway calls failed on the survivors; first: %s", failures.Load(), calls.Load(), failMsgs[0])
	}

	// The killed agent restarts from its data dir and catches up.
	leader.start(t)
	hash := c.waitConverged(40 * time.Second)
	if st, err := c.status(leader); err != nil || st.SnapshotIndex <= lastSeen.LastIndex+trailing {
		t.Fatalf("restarted agent's snapshot index %d (err %v): want a snapshot installed from the leader, past %d", st.SnapshotIndex, err, lastSeen.LastIndex+trailing)
	}
	for _, a := range c.agents {
		var keys api.KeyList
		if _, err := c.call(a, "GET", api.PathKeys, nil, &keys); err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, k := range keys.Keys {
			have[k.Name] = true
		}
		for _, name := range acked {
			if !have[name] {
				t.Fatalf("acknowledged key %s is missing on %s", name, a.id)
			}
		}
	}
	t.Logf("all three agents converged on %s with %d acknowledged keys; the killed agent was at index %d, the others compacted past %d",
		hash[:19], len(acked), lastSeen.LastIndex, compacted-trailing)
	if err := c.chat(leader); err != nil {
		t.Fatalf("the restarted agent does not serve: %v", err)
	}

	// A promote on one agent is served by all three: the time from the
	// acknowledgement until every agent's gateway runs the new
	// configuration.
	const promotes = 20
	var lat []time.Duration
	for i := range promotes {
		to := 2 - i%2 // 2, 1, 2, ...
		var res api.LabelMoveResult
		a := c.agents[i%3]
		if _, err := c.call(a, "POST", api.LabelsPath("answer"), api.LabelMove{Action: config.MovePromote, To: to}, &res); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		served := func() bool {
			for _, b := range c.agents {
				var rz struct {
					ServingIndex uint64 `json:"serving_index"`
				}
				resp, err := c.hc.Get("http://" + b.http + "/readyz")
				if err != nil {
					return false
				}
				json.NewDecoder(resp.Body).Decode(&rz)
				resp.Body.Close()
				if rz.ServingIndex < res.Index {
					return false
				}
			}
			return true
		}
		for !served() {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("promote %d: not served by every agent within 10s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)-1]
	t.Logf("promote served by all 3 agents: p50 %s, p99 %s (max of %d)", p50.Round(time.Microsecond), p99.Round(time.Microsecond), promotes)
	if p99 > time.Second {
		t.Fatalf("a promote took %s to be served by every agent, want under 1s", p99)
	}
	// The gateway really serves the promoted release.
	for _, a := range c.agents {
		var out struct {
			Release string `json:"release"`
		}
		req, _ := http.NewRequest("POST", "http://"+a.http+"/v1/features/answer/invoke", strings.NewReader(`{"vars":{"question":"hi"}}`))
		req.Header.Set("Authorization", "Bearer "+clusterKey)
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if want := "answer@v1"; out.Release != want {
			t.Fatalf("%s serves %q after the last promote, want %s", a.id, out.Release, want)
		}
	}

	// An agent stopped with SIGTERM stays a member, shown unhealthy while
	// it is down, and serves again as a voter when it restarts: a restart
	// is not a departure.
	gone := c.agents[1]
	gone.stop(t)
	others := []*agentProc{c.agents[0], c.agents[2]}
	c.waitFor("the others show the stopped agent down", 20*time.Second, func() bool {
		var ms api.Members
		if _, err := c.call(others[0], "GET", api.PathMembers, nil, &ms); err != nil || len(ms.Members) != 3 || c.leader(others) == "" {
			return false
		}
		for _, m := range ms.Members {
			if m.ID == gone.id {
				return !m.Healthy && m.Voter
			}
		}
		return false
	})
	gone.start(t)
	c.waitFor("the restarted agent is a healthy voter again", 30*time.Second, func() bool {
		var ms api.Members
		if _, err := c.call(others[0], "GET", api.PathMembers, nil, &ms); err != nil || len(ms.Members) != 3 {
			return false
		}
		for _, m := range ms.Members {
			if !m.Voter || !m.Healthy {
				return false
			}
		}
		return true
	})
	c.waitConverged(30 * time.Second)

	// With two of three agents gone the last one has no quorum: it keeps
	// serving its configuration and refuses writes with 503.
	last := c.agents[1]
	for _, a := range []*agentProc{c.agents[0], c.agents[2]} {
		a.cmd.Process.Kill()
		<-a.exited
	}
	for i := range 20 {
		if err := c.chat(last); err != nil {
			t.Fatalf("call %d without quorum: %v", i, err)
		}
	}
	status, err := c.call(last, "POST", api.PathKeys, api.KeyCreate{Name: "no-quorum"}, nil)
	if status != 503 || err == nil || !strings.Contains(err.Error(), `"code":"unavailable"`) || !strings.Contains(err.Error(), "no leader") {
		t.Fatalf("write without quorum: %d %v, want 503 unavailable", status, err)
	}
}

// TestAgentReloadAppliesConfigFile runs a lone agent with --config: it
// forms a cluster of its own and seeds it from the file. An operator then
// promotes a release and creates a key; a reload of the same file changes
// nothing, a reload of an edited file changes only what the edit declares,
// `gantry apply` keeps what a file stopped declaring until --prune, an
// empty document is refused, and through all of it the promotion and the
// key stay.
func TestAgentReloadAppliesConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gantry.yaml")
	write := func(cfg string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(clusterConfig())
	ports := freePorts(t, 2)
	log, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	a := &agentProc{id: "solo", http: "127.0.0.1:" + strconv.Itoa(ports[0]), log: log,
		args: []string{"agent", "--node-id", "solo", "--http-addr", "127.0.0.1:" + strconv.Itoa(ports[0]), "--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[1]),
			"--data-dir", filepath.Join(dir, "data"), "--config", file, "--log-level", "info"}}
	c := &testCluster{t: t, agents: []*agentProc{a}, hc: &http.Client{Timeout: 10 * time.Second}}
	a.start(t)
	t.Cleanup(func() {
		a.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("agent log:\n%s", tail(string(b), 4000))
		}
	})
	var f api.Feature
	c.waitFor("the agent seeds its cluster from the file", 30*time.Second, func() bool {
		_, err := c.call(a, "GET", api.ReleasesPath("answer"), nil, &f)
		return err == nil && c.chat(a) == nil
	})
	if f.Labels.Production != 1 {
		t.Fatalf("labels %+v, want production v1 from the file", f.Labels)
	}
	gantry := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := cli.Run(context.Background(), args[0], append(args[1:], "--agent", a.http, "--token", clusterAdmin), &out); err != nil {
			t.Fatalf("gantry %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	gantry("release", "promote", "answer", "2")
	var app api.KeySecret
	if _, err := c.call(a, "POST", api.PathKeys, api.KeyCreate{Name: "app"}, &app); err != nil {
		t.Fatal(err)
	}
	kept := func(when string) {
		t.Helper()
		if _, err := c.call(a, "GET", api.ReleasesPath("answer"), nil, &f); err != nil || f.Labels.Production != 2 {
			t.Fatalf("%s: labels %+v (%v), want the operator's production v2", when, f.Labels, err)
		}
		if served, _, err := keyCall(c.hc, a, app.Secret); !served || err != nil {
			t.Fatalf("%s: the key made through the API no longer works (%v)", when, err)
		}
	}
	auditSeq := func() uint64 {
		var l api.AuditList
		if _, err := c.call(a, "GET", api.PathAudit+"?limit=1", nil, &l); err != nil || len(l.Entries) == 0 {
			t.Fatalf("audit: %+v %v", l, err)
		}
		return l.Entries[0].Seq
	}
	reload := func(what string) {
		t.Helper()
		before := logSize(t, log)
		a.cmd.Process.Signal(syscall.SIGHUP)
		c.waitFor(what, 10*time.Second, func() bool { return strings.Contains(logSince(t, log, before), "reload") })
	}

	seq := auditSeq()
	reload("the reload of an unchanged file is logged")
	kept("after a reload of the same file")
	if got := auditSeq(); got != seq {
		t.Fatalf("a reload of an unchanged file wrote audit records %d..%d", seq+1, got)
	}

	edited := strings.Replace(clusterConfig(), "targets: [{model: sim-small, weight: 1}]", "targets: [{model: sim-small, weight: 1}]\n    retry: {attempts: 3}", 1) +
		"budgets:\n  - {name: team-cap, scope: team, match: finance, period: day, limit_usd: 100}\n"
	write(edited)
	reload("the reload of an edited file is logged")
	kept("after a reload of an edited file")
	var audit api.AuditList
	if _, err := c.call(a, "GET", api.PathAudit+"?limit=10", nil, &audit); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range audit.Entries {
		if e.Seq > seq {
			if e.Command != "apply_config" || !strings.Contains(e.Actor, "reload") {
				t.Fatalf("audit entry %+v, want the reload's", e)
			}
			targets = append(targets, e.Target)
		}
	}
	slices.Sort(targets)
	if !slices.Equal(targets, []string{"budgets/team-cap", "routes/cheap"}) {
		t.Fatalf("the reload audited %v, want each object it changed", targets)
	}

	// apply keeps what the file stopped declaring until --prune, and never
	// prunes what the API made.
	write(clusterConfig())
	if out := gantry("apply", "-f", file); !strings.Contains(out, "~ routes/cheap") || !strings.Contains(out, "! budgets/team-cap: no longer in the file") ||
		!strings.Contains(out, "retry.attempts: 3 -> -") {
		t.Fatalf("gantry apply printed:\n%s", out)
	}
	if out := gantry("apply", "-f", file, "--prune", "--dry-run"); !strings.Contains(out, "- budgets/team-cap") || strings.Contains(out, "keys/app") {
		t.Fatalf("gantry apply --prune --dry-run printed:\n%s", out)
	}
	gantry("apply", "-f", file, "--prune")
	kept("after an apply with --prune")
	var out api.Budgets
	if _, err := c.call(a, "GET", api.PathBudgets, nil, &out); err != nil || len(out.Budgets) != 0 {
		t.Fatalf("budgets after the prune: %+v %v", out.Budgets, err)
	}

	// An empty document is refused and changes nothing. The configuration
	// is the witness: the state itself moves with the agents' counters.
	_, cfgBefore := c.configRequest(a, "GET", "", nil, "")
	for _, body := range []string{"", "# only\n# comments\n"} {
		resp, b := c.configRequest(a, "PUT", "", []byte(body), "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "declares nothing") {
			t.Fatalf("PUT %q: %s %s, want 400 saying it declares nothing", body, resp.Status, b)
		}
	}
	if _, cfgAfter := c.configRequest(a, "GET", "", nil, ""); !bytes.Equal(cfgAfter, cfgBefore) {
		t.Fatalf("an empty document changed the configuration:\n%s\nbecame\n%s", cfgBefore, cfgAfter)
	}

	// A broken file is refused and the agent keeps serving.
	write("models: [{name: m, provider: nope}]\n")
	a.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if err := c.chat(a); err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
	kept("after a refused reload")
}

// logSize is how much of an agent's log is written.
func logSize(t *testing.T, f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// logSince is what the agent logged after offset.
func logSince(t *testing.T, f *os.File, offset int64) string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(offset, int64(len(b))):])
}

// configRequest sends method to a's configuration endpoint (reads are
// consistent) with body and, when etag is set, If-Match; it returns the
// answer and its body.
func (c *testCluster) configRequest(a *agentProc, method, query string, body []byte, etag string) (*http.Response, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, "http://"+a.http+api.PathConfig+"?consistent=1"+query, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+clusterAdmin)
	if etag != "" {
		req.Header.Set("If-Match", etag)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// putConfig writes a YAML configuration through a and returns the status
// and the answer.
func (c *testCluster) putConfig(a *agentProc, yaml, query string) (int, string) {
	c.t.Helper()
	resp, body := c.configRequest(a, "PUT", query, []byte(yaml), "")
	return resp.StatusCode, string(body)
}

// A configuration that one agent cannot serve, here because a provider's
// key variable is unset on it, leaves that agent serving the previous one
// and says so: its status and the member list name the reason, and a
// write through that agent is refused with it instead of committed.
func TestMemberThatCannotServeTheConfigurationIsShown(t *testing.T) {
	const keyVar = "E2E_UPSTREAM_API_KEY"
	c := newCluster(t, clusterConfig())
	for _, a := range c.agents[:2] {
		a.env = []string{keyVar + "=sk-e2e"}
	}
	for _, a := range c.agents {
		a.start(t)
	}
	c.waitFor("a leader all agents agree on", 30*time.Second, func() bool { return c.leader(c.agents) != "" })
	c.waitConverged(15 * time.Second)
	keyed, lacking := c.agents[0], c.agents[2]

	withUpstream := strings.Replace(clusterConfig(), "models:\n", `  - name: upstream
    kind: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: `+keyVar+`
models:
  - name: upstream-small
    provider: upstream
    price: {input: 0.15, output: 0.60}
`, 1)
	if code, body := c.putConfig(lacking, withUpstream, ""); code != http.StatusBadRequest || !strings.Contains(body, keyVar) {
		t.Fatalf("write through the agent without %s: %d %s; want 400 naming the variable", keyVar, code, body)
	}
	if code, body := c.putConfig(keyed, withUpstream, ""); code != http.StatusOK {
		t.Fatalf("write through an agent with %s: %d %s", keyVar, code, body)
	}
	c.waitFor("the member list to show the agent left on the older configuration, and only that one", 10*time.Second, func() bool {
		var members api.Members
		if _, err := c.call(keyed, "GET", api.PathMembers, nil, &members); err != nil || len(members.Members) != 3 {
			return false
		}
		for _, m := range members.Members {
			if m.ID == lacking.id && (m.Healthy || !strings.Contains(m.Error, keyVar)) {
				return false
			}
			if m.ID != lacking.id && (!m.Healthy || m.Error != "") {
				return false
			}
		}
		return true
	})
	st, err := c.status(lacking)
	if err != nil || st.ServingIndex >= st.StateIndex || !strings.Contains(st.Unserved, keyVar) {
		t.Fatalf("status of the agent without %s: serving %d of state %d, unserved %q (%v)", keyVar, st.ServingIndex, st.StateIndex, st.Unserved, err)
	}
	if err := c.chat(lacking); err != nil {
		t.Fatalf("the agent on the older configuration stopped serving: %v", err)
	}
	if got := c.metric(lacking, "gantry_config_unserved"); got != "1" {
		t.Fatalf("gantry_config_unserved on the agent without %s = %q, want 1", keyVar, got)
	}
	behind := "config_behind/member/" + lacking.id
	hasAlert := func(a *agentProc, id string) bool {
		var out api.Alerts
		if _, err := c.call(a, "GET", api.PathAlerts, nil, &out); err != nil {
			return false
		}
		for _, al := range out.Alerts {
			if al.ID == id {
				return strings.Contains(al.Summary, keyVar)
			}
		}
		return false
	}
	c.waitFor("an alert on another agent that "+lacking.id+" serves an older configuration", 10*time.Second, func() bool { return hasAlert(keyed, behind) })

	// Taking the provider out again (a prune: the file no longer declares
	// it) brings every agent onto one state.
	if code, body := c.putConfig(keyed, clusterConfig(), "&prune=1"); code != http.StatusOK {
		t.Fatalf("write without the provider: %d %s", code, body)
	}
	c.waitConverged(15 * time.Second)
	if st, err := c.status(lacking); err != nil || st.Unserved != "" {
		t.Fatalf("after the fix the agent still reports %q (%v)", st.Unserved, err)
	}
	if got := c.metric(lacking, "gantry_config_unserved"); got != "0" {
		t.Fatalf("gantry_config_unserved after the fix = %q, want 0", got)
	}
	c.waitFor("the alert to clear after the fix", 10*time.Second, func() bool {
		var out api.Alerts
		if _, err := c.call(keyed, "GET", api.PathAlerts, nil, &out); err != nil {
			return false
		}
		for _, al := range out.Alerts {
			if al.ID == behind {
				return false
			}
		}
		return true
	})
}

// metric is the value of an unlabelled metric on a's /metrics, or "".
func (c *testCluster) metric(a *agentProc, name string) string {
	c.t.Helper()
	resp, err := c.hc.Get("http://" + a.http + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return v
		}
	}
	return ""
}

// TestWritesThroughAnyAgent creates releases one after another through
// alternating agents, none naming a version: the replicated command
// numbers each, so none is refused as a conflict. Then a key created with
// ?wait=all works on every agent the moment the write answers.
func TestWritesThroughAnyAgent(t *testing.T) {
	c := startCluster(t)
	c.waitFor("a leader all agents agree on", 30*time.Second, func() bool { return c.leader(c.agents) != "" })
	c.waitConverged(15 * time.Second)
	rel := config.Release{System: "Answer briefly.", Template: []config.Message{{Role: "user", Content: "{{question}}"}},
		Variables: []config.Variable{{Name: "question", Required: true}}, Route: "cheap"}
	const creates = 200
	for i := range creates {
		a := c.agents[i%len(c.agents)]
		var out api.Release
		if _, err := c.call(a, "POST", api.ReleasesPath("answer"), rel, &out); err != nil {
			t.Fatalf("create %d through %s: %v", i+1, a.id, err)
		}
		if want := i + 3; out.Version != want {
			t.Fatalf("create %d through %s made v%d, want v%d", i+1, a.id, out.Version, want)
		}
	}

	leader := c.byID(c.leader(c.agents))
	var key api.KeySecret
	req, _ := http.NewRequest("POST", "http://"+leader.http+api.PathKeys+"?wait=all", strings.NewReader(`{"name":"everywhere"}`))
	req.Header.Set("Authorization", "Bearer "+clusterAdmin)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&key)
	resp.Body.Close()
	served := strings.Split(resp.Header.Get(api.HeaderServedBy), ",")
	if resp.StatusCode != http.StatusCreated || len(served) != 3 || resp.Header.Get(api.HeaderNotServed) != "" {
		t.Fatalf("key create with wait=all: %d, served by %q, not by %q", resp.StatusCode, served, resp.Header.Get(api.HeaderNotServed))
	}
	for _, a := range c.agents {
		if ok, _, err := keyCall(c.hc, a, key.Secret); !ok || err != nil {
			t.Fatalf("%s refused the key right after the write answered (%v)", a.id, err)
		}
	}
}
