// Package cluster is Gantry's control plane: a Raft node (hashicorp/raft with
// raft-boltdb/v2 and file snapshots) that replicates the state of package
// cluster/state. Any agent accepts writes and forwards them to the leader;
// reads are local, or linearizable on request; the agent learns of every
// change through Subscribe and swaps its data-plane snapshot, which never
// waits on Raft.
//
// The agent mounts Handler under its admin server: joins, bootstrap
// notifications, forwarded writes and reads, and member status all travel
// over it, authenticated with the cluster secret.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"gantry/cluster/command"
	"gantry/cluster/state"
)

// Errors callers branch on.
var (
	// ErrNoLeader: no leader is known or reachable; the agent answers 503
	// and the data plane keeps serving its last configuration.
	ErrNoLeader = errors.New("no cluster leader")
	// ErrNotLeader: this agent lost or never had leadership. Forwarded
	// requests that meet it are retried against the new leader.
	ErrNotLeader = errors.New("not the cluster leader")
	// ErrForbidden: the cluster secret is missing or wrong.
	ErrForbidden = errors.New("wrong cluster secret")
	// ErrClosed: the node is shut down.
	ErrClosed = errors.New("cluster node closed")
)

// Options configure a node. Zero durations take the defaults in brackets.
type Options struct {
	// NodeID names the agent in the cluster; it must be stable across
	// restarts.
	NodeID string
	// RaftAddr is the host:port the Raft transport binds; port 0 picks one.
	RaftAddr string
	// AdvertiseAddr is the host:port other agents dial; empty means the
	// bound address.
	AdvertiseAddr string
	// DataDir holds raft/raft.db (log and stable store) and raft/snapshots.
	DataDir string
	// HTTPAddr is the base URL of this agent's admin server, where Handler
	// is mounted, e.g. http://10.0.0.5:7400. Followers forward writes to the
	// leader's.
	HTTPAddr string
	// Secret authenticates agents to each other: joins, forwarded writes,
	// status. An empty secret refuses every cluster request, which suits a
	// single agent.
	Secret string
	// Voters is how many agents vote (1, 3, 5 or 7) [3]; further agents
	// join as non-voters and still replicate.
	Voters int
	// Bootstrap starts a new single-voter cluster on an empty data dir.
	Bootstrap bool
	// BootstrapExpect starts a new cluster once this many agents named in
	// Join have announced themselves to each other. All of them vote.
	BootstrapExpect int
	// Join lists other agents' admin addresses (host:port or URLs) to join
	// through. Ignored when the data dir already holds cluster state.
	Join []string
	// JoinInterval is the pause between join or announce attempts [1s].
	JoinInterval time.Duration
	// Logger receives the node's and raft's logs [slog.Default()].
	Logger *slog.Logger
	// HTTPClient carries forwarded requests [a client with a 10s timeout].
	// With TLS on, it should present the same certificate.
	HTTPClient *http.Client
	// Blobs are the document bodies this agent serves to the others; nil
	// serves none.
	Blobs Blobs
	// Unserved says why this agent does not serve the replicated
	// configuration, "" when it does; Status reports it so that the
	// member list shows an agent left on an older configuration.
	Unserved func() string
	// Serving is the state index the agent's data plane serves, for
	// Status; writes that wait for every member read it.
	Serving func() uint64
	// TLS, when set, runs the Raft transport over mutual TLS 1.3: it
	// listens with the config's certificate and requires peers' client
	// certificates verified against ClientCAs, and it dials with the same
	// certificate, verifying the peer against RootCAs and its host.
	TLS *tls.Config
	// stream, when set, carries Raft instead of a TCP or TLS listener on
	// RaftAddr: the partition tests cut the network between nodes with it.
	stream raft.StreamLayer

	HeartbeatTimeout   time.Duration // [1s]
	ElectionTimeout    time.Duration // [1s]
	LeaderLeaseTimeout time.Duration // [500ms]
	CommitTimeout      time.Duration // [50ms]
	// ApplyTimeout bounds Apply when the caller's context has no deadline
	// [10s].
	ApplyTimeout time.Duration
	// SnapshotThreshold is how many log entries trigger a snapshot [8192].
	SnapshotThreshold uint64
	// SnapshotInterval is how often the threshold is checked [2m].
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries stay after a snapshot [10240].
	TrailingLogs uint64
	// ReconcileInterval is how often the node checks its own entry in the
	// member directory [2s].
	ReconcileInterval time.Duration
	// DiskStallThreshold: a leader whose log write takes longer hands
	// leadership to another voter [2s]; negative disables the watchdog.
	DiskStallThreshold time.Duration
}

func (o *Options) defaults() error {
	if o.NodeID == "" || len(o.NodeID) > 64 || strings.ContainsAny(o.NodeID, " /\t\n") {
		return fmt.Errorf("node id %q: want 1..64 characters without spaces or slashes", o.NodeID)
	}
	if o.RaftAddr == "" {
		return errors.New("raft address is empty")
	}
	if o.DataDir == "" {
		return errors.New("data dir is empty")
	}
	if o.HTTPAddr != "" {
		u, err := url.Parse(o.HTTPAddr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("http address %q is not an http or https URL", o.HTTPAddr)
		}
		o.HTTPAddr = strings.TrimRight(o.HTTPAddr, "/")
	}
	if o.Voters == 0 {
		o.Voters = 3
	}
	switch o.Voters {
	case 1, 3, 5, 7:
	default:
		return fmt.Errorf("voters %d: want 1, 3, 5 or 7", o.Voters)
	}
	if o.BootstrapExpect < 0 || o.BootstrapExpect > o.Voters {
		return fmt.Errorf("bootstrap-expect %d: want 0..%d (the voter count)", o.BootstrapExpect, o.Voters)
	}
	if o.Bootstrap && o.BootstrapExpect > 0 {
		return errors.New("bootstrap and bootstrap-expect exclude each other")
	}
	if o.BootstrapExpect > 1 && len(o.Join) == 0 {
		return errors.New("bootstrap-expect needs the other agents' addresses to join")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.JoinInterval, time.Second)
	def(&o.HeartbeatTimeout, time.Second)
	def(&o.ElectionTimeout, time.Second)
	def(&o.LeaderLeaseTimeout, 500*time.Millisecond)
	def(&o.CommitTimeout, 50*time.Millisecond)
	def(&o.ApplyTimeout, 10*time.Second)
	def(&o.SnapshotInterval, 2*time.Minute)
	def(&o.ReconcileInterval, 2*time.Second)
	if o.DiskStallThreshold == 0 {
		o.DiskStallThreshold = 2 * time.Second
	}
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = 8192
	}
	if o.TrailingLogs == 0 {
		o.TrailingLogs = 10240
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return nil
}

// Node is one agent's member of the cluster.
type Node struct {
	opts  Options
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
	logs  *timedLogStore
	// lastStall is the latest log write the watchdog found too slow.
	lastStall atomic.Pointer[DiskStall]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	// readyTerm is the term in which this leader's barrier completed: from
	// then on its state includes every entry committed before it led.
	readyTerm atomic.Uint64

	mu        sync.Mutex
	announced map[string]state.Member // bootstrap-expect announcements

	// memberMu serialises changes of the raft configuration on the leader.
	memberMu sync.Mutex

	// servers is how many servers the raft configuration had when the
	// reconcile loop last looked; the request path reads it.
	servers atomic.Int32

	// recovered is what the node had applied before it last stopped;
	// marked is the index the applied marker holds.
	recovered *state.State
	markMu    sync.Mutex
	marked    uint64
}

// Open starts the node. It returns once raft runs; joining and bootstrapping
// go on in the background, owned by the node and stopped by Close. ctx bounds
// only the opening itself.
func Open(ctx context.Context, opts Options) (*Node, error) {
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("cluster options: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	hlog := raftLogger(opts.Logger)
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog.Named("snapshots"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	var advertise net.Addr
	if opts.AdvertiseAddr != "" {
		a, err := net.ResolveTCPAddr("tcp", opts.AdvertiseAddr)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("advertise address %q: %w", opts.AdvertiseAddr, err)
		}
		advertise = a
	}
	var trans *raft.NetworkTransport
	if opts.stream != nil {
		trans = raft.NewNetworkTransportWithConfig(transportConfig(opts.stream, hlog.Named("transport")))
	} else {
		trans, err = openTransport(opts.RaftAddr, advertise, opts.TLS, hlog.Named("transport"))
	}
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen for raft on %s: %w", opts.RaftAddr, err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(opts.NodeID)
	conf.HeartbeatTimeout = opts.HeartbeatTimeout
	conf.ElectionTimeout = opts.ElectionTimeout
	conf.LeaderLeaseTimeout = opts.LeaderLeaseTimeout
	conf.CommitTimeout = opts.CommitTimeout
	conf.SnapshotThreshold = opts.SnapshotThreshold
	conf.SnapshotInterval = opts.SnapshotInterval
	conf.TrailingLogs = opts.TrailingLogs
	conf.Logger = hlog
	if err := raft.ValidateConfig(conf); err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("raft config: %w", err)
	}
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	f := newFSM(opts.Logger)
	logs := &timedLogStore{LogStore: store}
	r, err := raft.NewRaft(conf, f, logs, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	nctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		opts: opts, log: opts.Logger.With("node", opts.NodeID), raft: r, fsm: f, trans: trans, store: store, logs: logs,
		ctx: nctx, cancel: cancel, announced: map[string]state.Member{},
	}
	marked, err := readMarker(filepath.Join(dir, appliedFile))
	n.marked = marked
	if err == nil {
		start := time.Now()
		n.recovered, err = recoverState(f.state.Load(), logs, marked)
		n.log.Debug("replayed the log up to what this node had applied", "index", n.recovered.Index, "took", time.Since(start))
	}
	if err != nil {
		n.log.Warn("cannot tell what this node applied before it stopped; serving without a leader falls back to its snapshot", "err", err)
		if n.recovered == nil {
			n.recovered = f.state.Load()
		}
	}
	if opts.Bootstrap && !existing {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: trans.LocalAddr(), Suffrage: raft.Voter}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Close()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	n.goLoop(n.leaderLoop)
	n.goLoop(n.reconcileLoop)
	n.goLoop(n.markerLoop)
	if opts.DiskStallThreshold > 0 {
		n.goLoop(n.watchdogLoop)
	}
	if !existing && !opts.Bootstrap {
		switch {
		case opts.BootstrapExpect > 0:
			n.goLoop(n.expectLoop)
		case len(opts.Join) > 0:
			n.goLoop(func(ctx context.Context) { n.joinLoop(ctx, opts.Join) })
		}
	} else if existing && len(opts.Join) > 0 {
		n.log.Info("cluster state found in data dir; not joining again", "dir", dir)
	}
	return n, nil
}

func (n *Node) goLoop(fn func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn(n.ctx)
	}()
}

// Close stops the node's loops and raft, and closes the log store. It does
// not leave the cluster; see Leave.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.cancel()
	n.wg.Wait()
	var errs []error
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("shut down raft: %w", err))
	}
	n.mark()
	if err := n.trans.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft transport: %w", err))
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft log: %w", err))
	}
	n.fsm.mu.Lock()
	for ch := range n.fsm.subs {
		delete(n.fsm.subs, ch)
		close(ch)
	}
	n.fsm.mu.Unlock()
	return errors.Join(errs...)
}

// ID is the node's id.
func (n *Node) ID() string { return n.opts.NodeID }

// RaftAddr is the address other agents reach this node's raft transport at.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// IsLeader reports whether this node leads the cluster now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the id of the leader this node knows of, or "".
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// WaitForLeader waits until the cluster has a leader this node knows of; on
// the leader itself, until it has applied everything its predecessors
// committed. A dev agent calls it after Open before seeding its
// configuration.
func (n *Node) WaitForLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if n.IsLeader() {
			if err := n.barrier(ctx); err == nil {
				return nil
			} else if !errors.Is(err, ErrNotLeader) {
				return err
			}
		} else if n.Leader() != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a cluster leader: %w: %w", ErrNoLeader, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		case <-t.C:
		}
	}
}

// State returns the state this node has applied. It never blocks and may lag
// the leader; use ConsistentState for a read that must see every write
// acknowledged before it began.
func (n *Node) State() *state.State { return n.fsm.state.Load() }

// StateHash is the hash of State, for comparing replicas.
func (n *Node) StateHash() string { return n.State().Hash() }

// Halted returns why the state machine stopped applying commands, or nil.
func (n *Node) Halted() error {
	if p := n.fsm.halted.Load(); p != nil {
		return *p
	}
	return nil
}

// Subscribe returns a channel that receives the state's index after every
// applied change, coalesced so a slow reader sees only the newest. Read
// State after a receive. The channel closes when ctx ends or the node
// closes.
func (n *Node) Subscribe(ctx context.Context) <-chan uint64 {
	ch := n.fsm.subscribe()
	if n.closed.Load() {
		n.fsm.unsubscribe(ch)
		return ch
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		select {
		case <-ctx.Done():
		case <-n.ctx.Done():
		}
		n.fsm.unsubscribe(ch)
	}()
	return ch
}

// Apply commits a command and returns its result once this node's leader
// applied it. On a follower it is forwarded to the leader. A request id is
// assigned when the envelope has none; a command whose outcome is unknown
// (leadership lost mid-commit, a dropped connection) is retried with the same
// request id, which the state machine applies at most once.
func (n *Node) Apply(ctx context.Context, env command.Envelope) (state.Result, error) {
	if n.closed.Load() {
		return state.Result{}, ErrClosed
	}
	if env.RequestID == "" {
		env.RequestID = newRequestID()
	}
	if env.Version == 0 {
		env.Version = 1
	}
	if env.Time.IsZero() {
		env.Time = time.Now().UTC()
	}
	if err := env.Check(); err != nil {
		return state.Result{}, fmt.Errorf("%w: %w", state.ErrInvalid, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.opts.ApplyTimeout)
		defer cancel()
	}
	var last error
	for wait := 20 * time.Millisecond; ; wait = min(wait*2, 500*time.Millisecond) {
		var res state.Result
		var err error
		if n.IsLeader() {
			res, err = n.applyLocal(ctx, env)
		} else {
			res, err = n.forwardApply(ctx, env)
		}
		if err == nil || !retryable(err) {
			return res, err
		}
		last = err
		n.log.Debug("cluster apply will be retried", "type", env.Type, "request_id", env.RequestID, "error", err)
		select {
		case <-ctx.Done():
			if errors.Is(last, ErrNoLeader) {
				return state.Result{}, fmt.Errorf("apply %s: %w", env.Type, last)
			}
			return state.Result{}, fmt.Errorf("apply %s: %w (outcome unknown; retry with request id %s): %w", env.Type, ctx.Err(), env.RequestID, last)
		case <-n.ctx.Done():
			return state.Result{}, ErrClosed
		case <-time.After(wait):
		}
	}
}

// retryable reports whether an Apply error leaves the command worth
// retrying with the same request id.
func retryable(err error) bool {
	return errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) ||
		errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) ||
		errors.Is(err, raft.ErrAbortedByRestore) || errors.Is(err, errTransport)
}

// applyLocal commits env on this node, which must be the leader. The command
// is first applied to the current state without committing it, so an invalid
// command is refused before it reaches the log, and a request id already
// applied returns its first result without a new entry.
func (n *Node) applyLocal(ctx context.Context, env command.Envelope) (state.Result, error) {
	if n.closed.Load() {
		return state.Result{}, ErrClosed
	}
	if n.raft.State() != raft.Leader {
		return state.Result{}, ErrNotLeader
	}
	data, err := command.Encode(env)
	if err != nil {
		return state.Result{}, fmt.Errorf("%w: %w", state.ErrInvalid, err)
	}
	// Check what the replicas will decode, not what the caller built.
	decoded, err := command.Decode(data)
	if err != nil {
		return state.Result{}, fmt.Errorf("%w: %w", state.ErrInvalid, err)
	}
	// A new leader may not have applied everything its predecessor
	// committed; checking against a stale state would refuse valid commands.
	if err := n.barrier(ctx); err != nil {
		return state.Result{}, err
	}
	cur := n.State()
	if !state.Known(decoded.Type, decoded.Version) && !decoded.Skippable {
		return state.Result{}, fmt.Errorf("%w: %s version %d", state.ErrUnknownCommand, decoded.Type, decoded.Version)
	}
	if _, res, err := cur.Apply(cur.Index+1, decoded); err != nil {
		return state.Result{}, err
	} else if res.Duplicate {
		return res, nil
	}
	timeout := n.opts.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return state.Result{}, ctx.Err()
		}
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return state.Result{}, fmt.Errorf("commit %s: %w", env.Type, err)
	}
	resp, ok := f.Response().(fsmResponse)
	if !ok {
		return state.Result{}, fmt.Errorf("commit %s: unexpected response %T", env.Type, f.Response())
	}
	return resp.result, resp.err
}

// ConsistentState returns a state that includes every write acknowledged
// before the call. On the leader it confirms leadership with a quorum (after
// the barrier that follows an election); a follower asks the leader for its
// commit index and waits until it has applied that far.
func (n *Node) ConsistentState(ctx context.Context) (*state.State, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	var index uint64
	var err error
	if n.IsLeader() {
		index, err = n.readIndex(ctx)
	} else {
		index, err = n.forwardReadIndex(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := n.waitApplied(ctx, index); err != nil {
		return nil, err
	}
	return n.State(), nil
}

// readIndex is the leader's half of a linearizable read. Once the barrier
// of its term has been applied, every write acknowledged to any client is in
// the leader's state (a leader acknowledges only after its own state machine
// applied the entry), so after a quorum confirms leadership the state's index
// bounds every acknowledged write. Raft's own commit and applied indexes are
// not used: they count entries the state machine never sees and run ahead of
// it.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	if err := n.barrier(ctx); err != nil {
		return 0, err
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return 0, fmt.Errorf("verify leadership: %w", err)
	}
	return n.State().Index, nil
}

// barrier makes sure this leader applied everything committed before its
// term, once per term.
func (n *Node) barrier(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() == term {
		return nil
	}
	timeout := n.opts.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return fmt.Errorf("barrier: %w", err)
	}
	n.readyTerm.Store(term)
	return nil
}

// waitApplied waits until this node's state includes the command at index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for n.State().Index < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", index, n.State().Index, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		case <-t.C:
		}
	}
	return nil
}

// leaderLoop runs the barrier and announces this node in the member
// directory whenever it becomes leader.
func (n *Node) leaderLoop(ctx context.Context) {
	ch := n.raft.LeaderCh()
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader := <-ch:
			if !isLeader {
				continue
			}
			n.log.Info("cluster leadership acquired", "term", n.raft.CurrentTerm())
			bctx, cancel := context.WithTimeout(ctx, n.opts.ApplyTimeout)
			if err := n.barrier(bctx); err != nil {
				n.log.Warn("cluster barrier after election failed", "error", err)
			}
			n.announceSelf(bctx)
			cancel()
		}
	}
}

// reconcileLoop keeps this node's entry in the member directory current, so
// followers can forward to it once it leads and the console can reach it.
func (n *Node) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(n.opts.ReconcileInterval)
	defer t.Stop()
	for {
		n.countServers()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n.IsLeader() {
				n.promote()
			}
			actx, cancel := context.WithTimeout(ctx, n.opts.ReconcileInterval)
			n.announceSelf(actx)
			cancel()
		}
	}
}

func (n *Node) self() state.Member {
	return state.Member{ID: n.opts.NodeID, RaftAddr: n.RaftAddr(), HTTPAddr: n.opts.HTTPAddr}
}

func (n *Node) announceSelf(ctx context.Context) {
	me := n.self()
	if cur, ok := n.State().Member(me.ID); ok && cur == me {
		return
	}
	if n.Leader() == "" || !n.inConfiguration(me.ID) {
		return
	}
	env, err := command.New(command.PutMember, command.Member(me))
	if err != nil {
		n.log.Error("encode member announcement", "error", err)
		return
	}
	env.Actor = "node:" + me.ID
	if _, err := n.Apply(ctx, env); err != nil {
		n.log.Debug("cluster member announcement not committed yet", "error", err)
	}
}

// Servers is how many agents the cluster has, voters and non-voters, as of
// a few seconds ago, or of the member directory when that is larger (before
// the first count). It never blocks, so the request path may call it.
func (n *Node) Servers() int {
	return max(int(n.servers.Load()), len(n.State().Members))
}

func (n *Node) countServers() {
	f := n.raft.GetConfiguration()
	if f.Error() == nil {
		n.servers.Store(int32(len(f.Configuration().Servers)))
	}
}

func (n *Node) inConfiguration(id string) bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}

func newRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("cluster: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}
