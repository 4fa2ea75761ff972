package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"gantry/cluster/command"
	"gantry/cluster/spend"
	"gantry/config"
)

// network connects test nodes over real TCP on loopback and can cut one
// node off from the others: both Raft (new dials refused, open connections
// closed) and the HTTP the nodes send each other (forwarded writes, joins,
// status) stop in both directions, as in a network partition.
type network struct {
	mu       sync.Mutex
	isolated map[string]bool   // node id → cut off from the rest
	owner    map[string]string // raft address or HTTP host → node id
	conns    []dialed
}

type dialed struct {
	from, to string
	conn     net.Conn
}

var errPartitioned = errors.New("network partition")

func newNetwork() *network {
	return &network{isolated: map[string]bool{}, owner: map[string]string{}}
}

// blocked reports whether traffic between a and b is cut: one is isolated
// and the other is not.
func (nw *network) blocked(a, b string) bool {
	return a != b && nw.isolated[a] != nw.isolated[b]
}

func (nw *network) isolate(id string) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.isolated[id] = true
	kept := nw.conns[:0]
	for _, d := range nw.conns {
		if nw.blocked(d.from, d.to) {
			d.conn.Close()
			continue
		}
		kept = append(kept, d)
	}
	nw.conns = kept
}

func (nw *network) heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.isolated)
}

func (nw *network) gate(from, addr string) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.blocked(from, nw.owner[addr]) {
		return fmt.Errorf("%s to %s: %w", from, addr, errPartitioned)
	}
	return nil
}

// stream is one node's Raft stream layer on the network.
type stream struct {
	nw *network
	id string
	ln net.Listener
}

func (s *stream) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *stream) Close() error              { return s.ln.Close() }
func (s *stream) Addr() net.Addr            { return s.ln.Addr() }

func (s *stream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if err := s.nw.gate(s.id, string(address)); err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	// The network may have been cut while this dial was under way: check
	// again under the lock that isolate holds while it closes connections.
	s.nw.mu.Lock()
	defer s.nw.mu.Unlock()
	to := s.nw.owner[string(address)]
	if s.nw.blocked(s.id, to) {
		c.Close()
		return nil, fmt.Errorf("%s to %s: %w", s.id, address, errPartitioned)
	}
	s.nw.conns = append(s.nw.conns, dialed{from: s.id, to: to, conn: c})
	return c, nil
}

// roundTripper is one node's HTTP client transport on the network.
type roundTripper struct {
	nw   *network
	from string
}

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := rt.nw.gate(rt.from, r.URL.Host); err != nil {
		return nil, err
	}
	return http.DefaultTransport.RoundTrip(r)
}

// join puts a node on the network: its Raft listener and HTTP client.
func (nw *network) join(t *testing.T, o *Options) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(o.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	nw.mu.Lock()
	nw.owner[ln.Addr().String()] = o.NodeID
	nw.owner[u.Host] = o.NodeID
	nw.mu.Unlock()
	o.stream = &stream{nw: nw, id: o.NodeID, ln: ln}
	o.HTTPClient = &http.Client{Timeout: 2 * time.Second, Transport: roundTripper{nw: nw, from: o.NodeID}}
}

// startPartitionable starts n nodes, all voters, on a network the test
// can cut.
func startPartitionable(t *testing.T, n int) ([]*testNode, *network) {
	t.Helper()
	nw := newNetwork()
	nodes := []*testNode{startNode(t, "n0", func(o *Options) { o.Bootstrap, o.Voters = true, n; nw.join(t, o) })}
	for i := 1; i < n; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i), func(o *Options) {
			o.Join, o.Voters = []string{nodes[0].srv.URL}, n
			nw.join(t, o)
		}))
	}
	waitFormed(t, nodes)
	waitFor(t, 15*time.Second, fmt.Sprintf("%d voters", n), func() bool {
		f := nodes[0].raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		voters := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		return voters == n
	})
	return nodes, nw
}

// A leader cut off with a minority cannot commit; the majority elects a
// leader of its own and goes on. When the network heals the old leader
// follows, every acknowledged write is on every node, and the write the
// cut-off leader could not acknowledge is gone. Three nodes lose the
// leader alone, five the leader and one follower.
func TestPartitionedLeaderIsReplaced(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) { testPartitionedLeader(t, size) })
	}
}

func testPartitionedLeader(t *testing.T, size int) {
	nodes, nw := startPartitionable(t, size)
	apply(t, nodes[1], env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	waitConverged(t, nodes)
	old := leaderOf(t, nodes)
	minority := []*testNode{old}
	var majority []*testNode
	for _, n := range nodes {
		switch {
		case n == old:
		case len(minority) < (size-1)/2:
			minority = append(minority, n)
		default:
			majority = append(majority, n)
		}
	}
	for _, n := range minority {
		nw.isolate(n.ID())
	}
	lost := env(t, command.CreateRelease, newRelease("written on the cut-off leader"))
	if _, err := old.Apply(ctxT(t, 2*time.Second), lost); err == nil {
		t.Fatal("a leader without a majority acknowledged a write")
	}
	newLeader := leaderOf(t, majority)
	acked := apply(t, majority[0], env(t, command.CreateRelease, newRelease("written on the majority")))
	for _, n := range minority {
		if f, _ := n.State().Feature("support"); len(f.Releases) != 1 || f.Labels.Production != 1 {
			t.Fatalf("the state of %s, cut off, changed: %+v", n.ID(), f)
		}
	}

	nw.heal()
	hash := waitConverged(t, nodes)
	waitFor(t, 10*time.Second, "the old leader to follow", func() bool { return !old.IsLeader() && old.Leader() != "" })
	f, _ := old.State().Feature("support")
	var systems []string
	for _, r := range f.Releases {
		systems = append(systems, r.System)
	}
	if len(f.Releases) != 2 || f.Releases[1].System != "written on the majority" {
		t.Fatalf("after healing the old leader holds releases %q; want the seeded one and the majority's", systems)
	}
	if old.State().Index < acked.Index {
		t.Fatalf("old leader at index %d, the acknowledged write is at %d", old.State().Index, acked.Index)
	}
	t.Logf("leader %s cut off with %d of %d, %s elected; converged on %s", old.ID(), len(minority), size, newLeader.ID(), hash[:19])
}

// A follower cut off from the leader keeps spending the grant it holds,
// and no more, while the majority goes on granting what is left; when the
// network heals its spend is committed and the ledger holds every agent's
// spend, within the limit.
func TestPartitionedAgentSpendsOnlyItsGrant(t *testing.T) {
	nodes, nw := startPartitionable(t, 3)
	cfg := seedConfig()
	cfg.Budgets = []config.Budget{{Name: "total", Scope: config.ScopeGlobal, Period: config.PeriodTotal, LimitUSD: 10}}
	apply(t, nodes[0], env(t, command.ApplyConfig, command.Config{Config: cfg}))
	waitConverged(t, nodes)
	slice := func(config.Budget) float64 { return 2 }
	wallets := map[*testNode]*spend.Wallet{}
	for _, n := range nodes {
		wallets[n] = spend.NewWallet(n.ID(), 0)
		if err := n.SyncWallet(ctxT(t, 5*time.Second), wallets[n], slice); err != nil {
			t.Fatal(err)
		}
	}
	cut := followerOf(t, nodes)
	nw.isolate(cut.ID())

	spent := map[*testNode]float64{}
	spendAll := func(n *testNode) {
		for wallets[n].Reserve("total", 0.25) {
			wallets[n].Settle("total", 0.25, 0.25)
			spent[n] += 0.25
		}
	}
	spendAll(cut)
	if spent[cut] != 2 {
		t.Fatalf("cut-off agent spent %v of its grant of 2", spent[cut])
	}
	if err := cut.SyncWallet(ctxT(t, 2*time.Second), wallets[cut], slice); err == nil {
		t.Fatal("a cut-off agent synced its wallet")
	}
	if wallets[cut].Reserve("total", 0.25) {
		t.Fatal("the cut-off agent reserved beyond its grant")
	}
	// The majority spends everything else there is to grant.
	for round := 0; round < 10; round++ {
		for _, n := range nodes {
			if n == cut {
				continue
			}
			spendAll(n)
			if err := n.SyncWallet(ctxT(t, 5*time.Second), wallets[n], slice); err != nil {
				t.Fatalf("sync on the majority side: %v", err)
			}
		}
	}

	nw.heal()
	waitFor(t, 10*time.Second, "the cut-off agent to commit its spend", func() bool {
		return cut.SyncWallet(ctxT(t, 2*time.Second), wallets[cut], slice) == nil
	})
	waitConverged(t, nodes)
	total := 0.0
	for _, v := range spent {
		total += v
	}
	if total != 10 {
		t.Fatalf("agents spent %v of a limit of 10: want all of it and no more", total)
	}
	s, err := nodes[2].ConsistentState(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Spend.Accounts["total"].Spent; got != total {
		t.Fatalf("ledger spent %v after healing, agents spent %v", got, total)
	}
}
