package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/spend"
	"gantry/cluster/state"
	"gantry/config"
)

const testSecret = "correct horse battery staple"

// testNode is a node with the admin server it is mounted on.
type testNode struct {
	*Node
	srv  *httptest.Server
	opts Options
	h    atomic.Pointer[http.Handler]
	down bool
}

func (tn *testNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := tn.h.Load()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

func testOptions(t *testing.T, id string) Options {
	t.Helper()
	return Options{
		NodeID:             id,
		RaftAddr:           "127.0.0.1:0",
		DataDir:            t.TempDir(),
		Secret:             testSecret,
		Voters:             3,
		JoinInterval:       100 * time.Millisecond,
		ReconcileInterval:  100 * time.Millisecond,
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		HTTPClient:         &http.Client{Timeout: 2 * time.Second},
	}
}

// startNode opens a node behind a fresh admin server; edit adjusts options.
func startNode(t *testing.T, id string, edit func(*Options)) *testNode {
	t.Helper()
	tn := &testNode{}
	tn.srv = httptest.NewServer(tn)
	opts := testOptions(t, id)
	opts.HTTPAddr = tn.srv.URL
	if edit != nil {
		edit(&opts)
	}
	tn.opts = opts
	n, err := Open(context.Background(), opts)
	if err != nil {
		tn.srv.Close()
		t.Fatalf("open %s: %v", id, err)
	}
	tn.Node = n
	h := n.Handler()
	tn.h.Store(&h)
	t.Cleanup(tn.stop)
	return tn
}

// stop takes the node down as a crash would, as far as the others can tell.
func (tn *testNode) stop() {
	if tn.down {
		return
	}
	tn.down = true
	tn.srv.CloseClientConnections()
	tn.srv.Close()
	_ = tn.Node.Close()
}

// startCluster starts n nodes: the first bootstraps, the others join it.
func startCluster(t *testing.T, n, voters int) []*testNode {
	t.Helper()
	nodes := []*testNode{startNode(t, "n0", func(o *Options) { o.Bootstrap = true; o.Voters = voters })}
	for i := 1; i < n; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i), func(o *Options) {
			o.Voters = voters
			o.Join = []string{nodes[0].srv.URL}
		}))
	}
	waitFormed(t, nodes)
	return nodes
}

// waitFormed waits until every node is in the configuration and announced
// in the member directory everywhere.
func waitFormed(t *testing.T, nodes []*testNode) {
	t.Helper()
	waitFor(t, 15*time.Second, "cluster to form", func() bool {
		for _, a := range nodes {
			if a.down {
				continue
			}
			if a.Leader() == "" {
				return false
			}
			for _, b := range nodes {
				if b.down {
					continue
				}
				if m, ok := a.State().Member(b.ID()); !ok || m.HTTPAddr != b.srv.URL {
					return false
				}
			}
		}
		return true
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitConverged waits until every live node has the same state hash.
func waitConverged(t *testing.T, nodes []*testNode) string {
	t.Helper()
	var hash string
	waitFor(t, 10*time.Second, "replicas to converge", func() bool {
		hash = ""
		for _, n := range nodes {
			if n.down {
				continue
			}
			h := n.StateHash()
			if hash == "" {
				hash = h
			} else if h != hash {
				return false
			}
		}
		return true
	})
	return hash
}

func leaderOf(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var l *testNode
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if !n.down && n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func followerOf(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	l := leaderOf(t, nodes)
	for _, n := range nodes {
		if !n.down && n != l {
			return n
		}
	}
	t.Fatal("no follower")
	return nil
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func env(t *testing.T, typ command.Type, payload any) command.Envelope {
	t.Helper()
	e, err := command.New(typ, payload)
	if err != nil {
		t.Fatalf("build %s: %v", typ, err)
	}
	e.Actor = "user:test"
	return e
}

func apply(t *testing.T, n *testNode, e command.Envelope) state.Result {
	t.Helper()
	res, err := n.Apply(ctxT(t, 10*time.Second), e)
	if err != nil {
		t.Fatalf("apply %s on %s: %v", e.Type, n.ID(), err)
	}
	return res
}

func seedConfig() config.Config {
	r := config.Release{Version: 1, System: "Answer briefly.", Template: []config.Message{{Role: "user", Content: "{{.question}}"}}, Route: "r1"}
	return config.Config{
		Providers: []config.Provider{{Name: "sim", Kind: config.KindSim}},
		Models:    []config.Model{{Name: "m1", Provider: "sim", Price: config.Price{Input: 1, Output: 2}}},
		Routes:    []config.Route{{Name: "r1", Targets: []config.Target{{Model: "m1", Weight: 1}}}},
		Features:  []config.Feature{{Name: "support", Releases: []config.Release{r}, Labels: config.Labels{Production: 1}}},
	}
}

func newRelease(system string) command.Release {
	return command.Release{Feature: "support", Release: config.Release{System: system, Route: "r1"}}
}

func TestThreeNodesReplicateEveryCommandFromAFollower(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	f := followerOf(t, nodes)
	steps := []struct {
		typ     command.Type
		payload any
	}{
		{command.ApplyConfig, command.Config{Config: seedConfig()}},
		{command.PutProvider, command.Provider{Provider: config.Provider{Name: "openai", Kind: config.KindOpenAI, APIKeyEnv: "OPENAI_API_KEY"}}},
		{command.PutModel, command.Model{Model: config.Model{Name: "gpt", Provider: "openai", Price: config.Price{Input: 3, Output: 12}}}},
		{command.PutRoute, command.Route{Route: config.Route{Name: "r2", Targets: []config.Target{{Model: "gpt", Weight: 1}}}}},
		{command.CreateRelease, newRelease("v2")},
		{command.MoveLabel, command.Label{Feature: "support", Action: config.MoveCanary, Version: 2, Weight: 20, Reason: "trial"}},
		{command.MoveLabel, command.Label{Feature: "support", Action: config.MovePromote, Version: 2}},
		{command.MoveLabel, command.Label{Feature: "support", Action: config.MoveRollback}},
		{command.PutFeature, command.Feature{Feature: config.Feature{Name: "support", Description: "Customer answers"}}},
		{command.PutKey, command.Key{Key: config.Key{Name: "team-a", Hash: config.HashKey("gk_a")}}},
		{command.RevokeKey, command.Name{Name: "team-a"}},
		{command.PutToken, command.TokenPayload{Token: command.Token{Name: "ops", Hash: config.HashKey("tok"), Role: config.RoleAdmin}}},
		{command.RevokeToken, command.Name{Name: "ops"}},
		{command.PutObject, command.Object{Kind: "budgets", Object: []byte(`{"name":"daily","scope":"global","period":"day","limit_usd":25}`)}},
		{command.DeleteObject, command.ObjectName{Kind: "budgets", Name: "daily"}},
		{command.DeleteRoute, command.Name{Name: "r2"}},
		{command.DeleteModel, command.Name{Name: "gpt"}},
		{command.DeleteProvider, command.Name{Name: "openai"}},
	}
	for _, st := range steps {
		res := apply(t, f, env(t, st.typ, st.payload))
		// The acknowledged write is visible to a linearizable read on
		// any node at once.
		for _, n := range nodes {
			s, err := n.ConsistentState(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatalf("%s: consistent read on %s: %v", st.typ, n.ID(), err)
			}
			if s.Index < res.Index {
				t.Fatalf("%s: %s read index %d, write was at %d", st.typ, n.ID(), s.Index, res.Index)
			}
		}
	}
	waitConverged(t, nodes)
	s := nodes[2].State()
	feat, _ := s.Feature("support")
	if feat.Labels.Production != 1 || len(feat.Releases) != 2 || feat.Description != "Customer answers" {
		t.Fatalf("feature = %+v", feat)
	}
	if len(s.Config.Providers) != 1 || !s.Config.Keys[0].Revoked || !s.Tokens[0].Revoked {
		t.Fatalf("state = %+v", s.Config)
	}
	if got := len(s.LabelHistory["support"]); got != 4 {
		t.Fatalf("label history = %d entries, want 4", got)
	}
}

func TestRejectedCommandsNeverReachTheLog(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	l, f := leaderOf(t, nodes), followerOf(t, nodes)
	apply(t, l, env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	before := l.raft.LastIndex()
	tests := []struct {
		name    string
		node    *testNode
		e       command.Envelope
		wantErr error
	}{
		{"invalid on the leader", l, env(t, command.PutModel, command.Model{Model: config.Model{Name: "x", Provider: "nope"}}), state.ErrInvalid},
		{"invalid forwarded", f, env(t, command.PutModel, command.Model{Model: config.Model{Name: "x", Provider: "nope"}}), state.ErrInvalid},
		{"not found forwarded", f, env(t, command.DeleteRoute, command.Name{Name: "nope"}), state.ErrNotFound},
		{"conflict forwarded", f, env(t, command.PutFeature, command.Feature{Feature: config.Feature{Name: "support", Releases: []config.Release{{Version: 5, Route: "r1"}}}}), state.ErrConflict},
		{"secret forwarded", f, env(t, command.PutProvider, command.Provider{Provider: config.Provider{Name: "o", Kind: config.KindOpenAI, BaseURL: "https://u:p@example.com"}}), state.ErrInvalid},
		{"unknown type", f, command.Envelope{Type: "put_widget", Version: 1, Payload: []byte(`{}`)}, state.ErrUnknownCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.node.Apply(ctxT(t, 5*time.Second), tt.e)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := HTTPStatus(err); got < 400 || got >= 500 && !errors.Is(err, state.ErrUnknownCommand) {
				t.Fatalf("status %d for %v", got, err)
			}
		})
	}
	if got := l.raft.LastIndex(); got != before {
		t.Fatalf("log grew from %d to %d on rejected commands", before, got)
	}
	// A skippable unknown command is committed and ignored.
	res := apply(t, f, command.Envelope{Type: "put_widget", Version: 1, Skippable: true, Payload: []byte(`{}`)})
	if !res.Skipped {
		t.Fatalf("result %+v, want skipped", res)
	}
}

func TestRetryAfterLeaderLossIsIdempotent(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	l := leaderOf(t, nodes)
	apply(t, l, env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	e := env(t, command.CreateRelease, newRelease("acknowledged"))
	e.RequestID = "release-once"
	first := apply(t, followerOf(t, nodes), e)
	waitConverged(t, nodes)

	l.stop()
	var live []*testNode
	for _, n := range nodes {
		if !n.down {
			live = append(live, n)
		}
	}
	nl := leaderOf(t, live)
	if nl == l {
		t.Fatal("stopped leader still leads")
	}
	// The client never saw the reply and retries on another agent.
	for _, n := range live {
		again := apply(t, n, e)
		if !again.Duplicate || again.Version != first.Version || again.Index != first.Index {
			t.Fatalf("retry on %s: %+v, first %+v", n.ID(), again, first)
		}
	}
	// New writes go on with two of three voters.
	apply(t, live[0], env(t, command.CreateRelease, newRelease("after failover")))
	waitConverged(t, live)
	for _, n := range live {
		feat, _ := n.State().Feature("support")
		if len(feat.Releases) != 3 || feat.Releases[1].System != "acknowledged" {
			t.Fatalf("%s releases = %+v", n.ID(), feat.Releases)
		}
	}
}

func TestFiveVotersSurviveTwoFailures(t *testing.T) {
	nodes := startCluster(t, 5, 5)
	for _, m := range mustMembers(t, nodes[0]) {
		if !m.Voter {
			t.Fatalf("%s is not a voter in a five-voter cluster", m.ID)
		}
	}
	apply(t, nodes[0], env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	l := leaderOf(t, nodes)
	l.stop()
	followerOf(t, nodes).stop()
	nl := leaderOf(t, nodes)
	res := apply(t, nl, env(t, command.CreateRelease, newRelease("three of five")))
	if res.Version != 2 {
		t.Fatalf("version %d, want 2", res.Version)
	}
	waitConverged(t, nodes)
}

func TestNonVoterBeyondVoterCountReplicates(t *testing.T) {
	nodes := startCluster(t, 4, 3)
	voters := 0
	for _, m := range mustMembers(t, nodes[1]) {
		if m.Voter {
			voters++
		}
		if m.HTTPAddr == "" || m.Status == nil {
			t.Fatalf("member %+v has no address or status", m)
		}
	}
	if voters != 3 {
		t.Fatalf("voters = %d, want 3", voters)
	}
	apply(t, nodes[3], env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	hash := waitConverged(t, nodes)
	if nodes[3].StateHash() != hash {
		t.Fatal("non-voter did not replicate")
	}
	// After a voter is removed the non-voter is promoted.
	victim := nodes[1]
	if victim.IsLeader() {
		victim = nodes[2]
	}
	victim.stop()
	if err := nodes[0].RemoveMember(ctxT(t, 5*time.Second), victim.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "non-voter promotion", func() bool {
		f := nodes[0].raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		v := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == 0 { // raft.Voter
				v++
			}
		}
		return v == 3 && len(f.Configuration().Servers) == 3
	})
	s, err := nodes[0].ConsistentState(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Member(victim.ID()); ok {
		t.Fatal("removed member still in the directory")
	}
}

func mustMembers(t *testing.T, n *testNode) []Member {
	t.Helper()
	ms, err := n.Members(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestBootstrapExpect(t *testing.T) {
	servers := make([]*testNode, 3)
	for i := range servers {
		servers[i] = &testNode{}
		servers[i].srv = httptest.NewServer(servers[i])
	}
	urls := []string{servers[0].srv.URL, servers[1].srv.URL, servers[2].srv.URL}
	for i, tn := range servers {
		opts := testOptions(t, fmt.Sprintf("e%d", i))
		opts.HTTPAddr = tn.srv.URL
		opts.BootstrapExpect = 3
		opts.Join = urls
		n, err := Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		tn.Node, tn.opts = n, opts
		h := n.Handler()
		tn.h.Store(&h)
		t.Cleanup(tn.stop)
	}
	waitFormed(t, servers)
	apply(t, servers[2], env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	waitConverged(t, servers)
	ms := mustMembers(t, servers[0])
	if len(ms) != 3 {
		t.Fatalf("members = %d, want 3", len(ms))
	}
	leaders := 0
	for _, m := range ms {
		if !m.Voter || m.Status == nil || m.HTTPAddr == "" {
			t.Fatalf("member %+v", m)
		}
		if m.Status.AppliedIndex == 0 || m.Status.LastLogIndex < m.Status.AppliedIndex || m.Status.StateIndex == 0 {
			t.Fatalf("member %s status %+v", m.ID, *m.Status)
		}
		if m.Leader {
			leaders++
		} else if m.Status.LastContact.IsZero() {
			t.Fatalf("follower %s reports no contact with the leader", m.ID)
		}
	}
	if leaders != 1 {
		t.Fatalf("leaders = %d, want 1", leaders)
	}
	// Joining again is a no-op.
	if err := servers[1].Join(ctxT(t, 5*time.Second), urls); err != nil {
		t.Fatal(err)
	}
	if got := len(mustMembers(t, servers[0])); got != 3 {
		t.Fatalf("members after a second join = %d, want 3", got)
	}
}

func TestJoinWithWrongSecretIsRefused(t *testing.T) {
	nodes := startCluster(t, 1, 3)
	tests := []struct{ name, secret string }{
		{"wrong secret", "guess"},
		{"empty secret", ""},
		{"secret with a suffix", testSecret + "x"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			intruder := startNode(t, fmt.Sprintf("x%d", i), func(o *Options) { o.Secret = tt.secret })
			err := intruder.Join(ctxT(t, 3*time.Second), []string{nodes[0].srv.URL})
			if !errors.Is(err, ErrForbidden) {
				t.Fatalf("err = %v, want ErrForbidden", err)
			}
			if nodes[0].inConfiguration(intruder.ID()) {
				t.Fatal("intruder joined")
			}
		})
	}
	// A forwarded write with a wrong secret is refused too.
	req, _ := http.NewRequest(http.MethodPost, nodes[0].srv.URL+pathApply, nil)
	req.Header.Set(SecretHeader, "guess")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

func TestNoLeaderIsATypedError(t *testing.T) {
	lone := startNode(t, "lone", nil)
	_, err := lone.Apply(ctxT(t, 300*time.Millisecond), env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("err = %v, want ErrNoLeader", err)
	}
	if got := HTTPStatus(err); got != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", got)
	}
	if _, err := lone.ConsistentState(ctxT(t, 300*time.Millisecond)); err == nil {
		t.Fatal("consistent read without a leader succeeded")
	}
	if err := lone.WaitForLeader(ctxT(t, 200*time.Millisecond)); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("wait for leader: %v, want ErrNoLeader", err)
	}
}

func TestSnapshotInstallAndRestart(t *testing.T) {
	small := func(o *Options) {
		o.SnapshotThreshold = 16
		o.TrailingLogs = 4
		o.SnapshotInterval = 50 * time.Millisecond
	}
	a := startNode(t, "s0", func(o *Options) { small(o); o.Bootstrap = true })
	if err := a.WaitForLeader(ctxT(t, 10*time.Second)); err != nil || !a.IsLeader() {
		t.Fatalf("single bootstrapped node: leader %v, err %v", a.IsLeader(), err)
	}
	apply(t, a, env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	for i := range 40 {
		apply(t, a, env(t, command.CreateRelease, newRelease(fmt.Sprintf("release %d", i))))
	}
	if err := a.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	// A new member far behind the trailing logs gets the snapshot.
	b := startNode(t, "s1", func(o *Options) { small(o); o.Join = []string{a.srv.URL} })
	nodes := []*testNode{a, b}
	waitFormed(t, nodes)
	hash := waitConverged(t, nodes)
	feat, _ := b.State().Feature("support")
	if len(feat.Releases) != 41 {
		t.Fatalf("releases on the new member = %d, want 41", len(feat.Releases))
	}
	// A restarted member recovers the same state from its data dir.
	opts := b.opts
	b.stop()
	var err error
	tn := &testNode{srv: b.srv}
	tn.Node, err = Open(context.Background(), func() Options { o := opts; o.RaftAddr = b.RaftAddr(); o.Join = nil; return o }())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Node.Close() })
	waitFor(t, 10*time.Second, "restored state", func() bool { return tn.StateHash() == hash })
}

func TestSubscribeSeesEveryChange(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	ctx, cancel := context.WithCancel(context.Background())
	ch := nodes[2].Subscribe(ctx)
	res := apply(t, nodes[0], env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	deadline := time.After(5 * time.Second)
	for got := uint64(0); got < res.Index; {
		select {
		case got = <-ch:
		case <-deadline:
			t.Fatalf("no notification of index %d", res.Index)
		}
	}
	if _, ok := nodes[2].State().Feature("support"); !ok {
		t.Fatal("state after notification lacks the change")
	}
	cancel()
	waitFor(t, 5*time.Second, "channel close", func() bool {
		select {
		case _, ok := <-ch:
			return !ok
		default:
			return false
		}
	})
}

func TestLeaderLeaves(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	l := leaderOf(t, nodes)
	if err := l.Leave(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	l.stop()
	nl := leaderOf(t, nodes)
	if nl == l {
		t.Fatal("leader did not hand over")
	}
	ms := mustMembers(t, nl)
	if len(ms) != 2 {
		t.Fatalf("members = %d, want 2", len(ms))
	}
	apply(t, nl, env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	waitConverged(t, nodes)
}

func TestLeaderWithStalledDiskHandsOver(t *testing.T) {
	stall := func(o *Options) { o.DiskStallThreshold = 200 * time.Millisecond }
	nodes := []*testNode{startNode(t, "d0", func(o *Options) { stall(o); o.Bootstrap = true })}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("d%d", i), func(o *Options) { stall(o); o.Join = []string{nodes[0].srv.URL} }))
	}
	waitFormed(t, nodes)
	l := leaderOf(t, nodes)
	if s := l.LastDiskStall(); s != nil {
		t.Fatalf("a stall reported before any: %+v", s)
	}
	// A write that began a second ago and has not returned.
	l.logs.inflight.Store(time.Now().Add(-time.Second).UnixNano())
	waitFor(t, 5*time.Second, "leadership to move", func() bool { return !l.IsLeader() })
	if s := l.LastDiskStall(); s == nil || s.Write < time.Second || time.Since(s.At) > 5*time.Second {
		t.Fatalf("the stall the disk alert reads: %+v, want a write of at least 1s seen just now", s)
	}
	l.logs.inflight.Store(0)
	nl := leaderOf(t, nodes)
	if nl == l {
		t.Fatal("stalled leader kept leading")
	}
	apply(t, l, env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
}

func TestSpendStaysWithinTheBudgetAcrossAgents(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	cfg := seedConfig()
	cfg.Budgets = []config.Budget{{Name: "total", Scope: config.ScopeGlobal, Period: config.PeriodTotal, LimitUSD: 10}}
	apply(t, nodes[0], env(t, command.ApplyConfig, command.Config{Config: cfg}))
	waitConverged(t, nodes)
	slice := func(config.Budget) float64 { return 1 }
	wallets := make([]*spend.Wallet, len(nodes))
	for i, n := range nodes {
		wallets[i] = spend.NewWallet(n.ID(), 0)
	}
	spent := 0.0
	for round := 0; round < 20; round++ {
		for i, n := range nodes {
			if err := n.SyncWallet(ctxT(t, 5*time.Second), wallets[i], slice); err != nil {
				t.Fatalf("sync %s: %v", n.ID(), err)
			}
			for wallets[i].Reserve("total", 0.25) {
				wallets[i].Settle("total", 0.25, 0.25)
				spent += 0.25
			}
		}
	}
	for i, n := range nodes {
		if err := n.SyncWallet(ctxT(t, 5*time.Second), wallets[i], slice); err != nil {
			t.Fatal(err)
		}
	}
	if spent != 10 {
		t.Fatalf("agents spent %v of a budget of 10, want all of it and no more", spent)
	}
	s, err := nodes[1].ConsistentState(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Spend.Accounts["total"].Spent; got != 10 {
		t.Fatalf("ledger spent %v, want 10", got)
	}
	// Replaying an acknowledged batch changes nothing.
	e := env(t, command.CommitSpend, command.Spend{Batch: spend.Batch{Agent: nodes[0].ID(), Seq: 1, Items: []spend.Item{{Budget: "total", Amount: 5}}}})
	apply(t, nodes[2], e)
	s, _ = nodes[2].ConsistentState(ctxT(t, 5*time.Second))
	if got := s.Spend.Accounts["total"].Spent; got != 10 {
		t.Fatalf("ledger spent %v after a replayed batch, want 10", got)
	}
}

func TestSpendWithoutQuorumIsBoundedByTheGrant(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	cfg := seedConfig()
	cfg.Budgets = []config.Budget{{Name: "total", Scope: config.ScopeGlobal, Period: config.PeriodTotal, LimitUSD: 100}}
	apply(t, nodes[0], env(t, command.ApplyConfig, command.Config{Config: cfg}))
	waitConverged(t, nodes)
	lone := nodes[2]
	w := spend.NewWallet(lone.ID(), 0)
	if err := lone.SyncWallet(ctxT(t, 5*time.Second), w, func(config.Budget) float64 { return 2 }); err != nil {
		t.Fatal(err)
	}
	nodes[0].stop()
	nodes[1].stop()
	spent := 0.0
	for w.Reserve("total", 0.1) {
		w.Settle("total", 0.1, 0.1)
		spent += 0.1
	}
	if spent > 2+1e-9 {
		t.Fatalf("spent %v without quorum on a grant of 2", spent)
	}
	err := lone.SyncWallet(ctxT(t, 1*time.Second), w, func(config.Budget) float64 { return 2 })
	if err == nil {
		t.Fatal("sync without quorum succeeded")
	}
	if w.Reserve("total", 0.1) {
		t.Fatal("reserved beyond the grant without quorum")
	}
}

func TestLeavingAgentReturnsItsGrant(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	cfg := seedConfig()
	cfg.Budgets = []config.Budget{{Name: "total", Scope: config.ScopeGlobal, Period: config.PeriodTotal, LimitUSD: 10}}
	apply(t, nodes[0], env(t, command.ApplyConfig, command.Config{Config: cfg}))
	waitConverged(t, nodes)
	four := func(config.Budget) float64 { return 4 }
	leaving, staying := spend.NewWallet(nodes[1].ID(), 0), spend.NewWallet(nodes[2].ID(), 0)
	for _, s := range []struct {
		n *testNode
		w *spend.Wallet
	}{{nodes[1], leaving}, {nodes[2], staying}} {
		if err := s.n.SyncWallet(ctxT(t, 5*time.Second), s.w, four); err != nil {
			t.Fatal(err)
		}
	}
	leaving.Reserve("total", 1)
	leaving.Settle("total", 1, 1)
	if err := nodes[1].CloseWallet(ctxT(t, 5*time.Second), leaving); err != nil {
		t.Fatal(err)
	}
	s, err := nodes[0].ConsistentState(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Budgets[0]
	if got := s.Spend.Available(b, time.Now()); got != 5 {
		t.Fatalf("available after an agent left: %v, want 10 - 1 it spent - 4 the other holds = 5", got)
	}
	if got := s.Spend.Accounts["total"].Spent; got != 1 {
		t.Fatalf("spent %v, want the 1 the leaving agent spent", got)
	}
	// The agent that stays can now be granted what the other gave back.
	staying.Reserve("total", 4)
	staying.Settle("total", 4, 4)
	if err := nodes[2].SyncWallet(ctxT(t, 5*time.Second), staying, func(config.Budget) float64 { return 5 }); err != nil {
		t.Fatal(err)
	}
	if got := staying.Balance("total"); got != 5 {
		t.Fatalf("balance after the return: %v, want a full slice of 5", got)
	}
}

// A node restarted while the rest of its cluster is down has no leader to
// tell it which log entries are committed, so its state machine holds only
// its snapshot; Recovered still has everything it applied before it
// stopped, snapshot and later entries, and no more.
func TestRestartWithoutLeaderRecoversWhatItApplied(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	l := leaderOf(t, nodes)
	apply(t, l, env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	apply(t, l, env(t, command.PutKey, command.Key{Key: config.Key{Name: "app", Hash: config.HashKey("gk_app-key-000001")}}))
	for i := range 5 {
		apply(t, l, env(t, command.CreateRelease, newRelease(fmt.Sprintf("before the snapshot %d", i))))
	}
	f := followerOf(t, nodes)
	waitConverged(t, nodes)
	if err := f.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapIndex := f.State().Index
	for i := range 5 {
		apply(t, l, env(t, command.CreateRelease, newRelease(fmt.Sprintf("after the snapshot %d", i))))
	}
	apply(t, l, env(t, command.RevokeKey, command.Name{Name: "app"}))
	want := waitConverged(t, nodes)
	wantIndex := f.State().Index
	opts := f.opts
	for _, n := range nodes {
		n.stop()
	}

	opts.RaftAddr, opts.Join = f.RaftAddr(), nil
	n, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := n.State().Index; got > snapIndex {
		t.Fatalf("without a leader the state machine applied up to %d, past its snapshot at %d", got, snapIndex)
	}
	r := n.Recovered()
	if r.Index != wantIndex || r.Hash() != want {
		t.Fatalf("recovered state at index %d (hash %s), want the applied one at %d (hash %s)", r.Index, r.Hash(), wantIndex, want)
	}
	if len(r.Config.Keys) != 1 || !r.Config.Keys[0].Revoked {
		t.Fatalf("the recovered state lost the revocation: %+v", r.Config.Keys)
	}
}
