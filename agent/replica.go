package agent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gantry/cluster"
	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/pipeline/release"

	"github.com/prometheus/client_golang/prometheus"
)

// writeTimeout bounds a write the agent makes on its own behalf (a reload
// of its file), elections included.
const writeTimeout = 8 * time.Second

// replica is the agent's cluster side: its Raft node and the loops that
// keep the agent in step with the cluster. It follows the replicated state
// into the gateway, commits spend and per-release counters, seeds a fresh
// cluster, and leaves it on shutdown. The admin API reads and writes the
// replicated state through it.
type replica struct {
	*cluster.Node
	log    *slog.Logger
	nodeID string
	// serve compiles a configuration and swaps it into the gateway; an
	// error leaves the gateway on the one it had.
	serve func(*config.Config) error
	spend *spendSide // nil unless budgets are granted by the cluster
	stats *statsSide
	docs  *docSide
	// canaries is the leader's canary analysis (canary.go).
	canaries *canaryWatch
	// cancel stops the loops, wg waits for them.
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// served is the state index the gateway's configuration was compiled
	// from; 0 while it serves a local file or nothing.
	served atomic.Uint64
	// followed is the last state index the follow loop took in, whether
	// it swapped, skipped or refused the configuration at that index;
	// advanced is closed and replaced each time it moves.
	followMu sync.Mutex
	followed uint64
	advanced chan struct{}
	// compiled is the configuration the gateway serves, to skip commands
	// that changed only members, tokens, spend or the audit log; refused
	// is the last one that did not compile, so it is not compiled again
	// at every later index. Only the follow loop touches them.
	compiled, refused *config.Config
	// unserved is why the gateway does not serve the cluster's current
	// configuration (catching up, stale, or it does not compile here),
	// nil when it does; stale is set while it serves what the agent
	// applied before it stopped because no leader confirms anything newer.
	unserved atomic.Pointer[string]
	stale    atomic.Bool
	// serving is closed when the gateway first serves a configuration;
	// seeded when this agent's seed (its file, a dev agent's key and
	// token) is in the cluster and served here.
	serving     chan struct{}
	servingOnce sync.Once
	seeded      chan struct{}
	// catchUpWait bounds how long a restarted agent waits for a leader
	// before it serves what it applied before it stopped.
	catchUpWait time.Duration
}

// DefaultCatchUpWait is how long an agent waits for a leader to confirm
// the cluster's state before it serves the state it applied before it
// stopped, marked stale.
const DefaultCatchUpWait = 15 * time.Second

// newReplica returns a replica whose follow loop serves configurations
// through serve; the node comes later.
func newReplica(log *slog.Logger, nodeID string, serve func(*config.Config) error) *replica {
	return &replica{log: log, nodeID: nodeID, serve: serve, advanced: make(chan struct{}), serving: make(chan struct{}), seeded: make(chan struct{})}
}

// Served is the state index the gateway's configuration was compiled from.
func (r *replica) Served() uint64 { return r.served.Load() }

// Followed is the last state index the follow loop took in.
func (r *replica) Followed() uint64 {
	r.followMu.Lock()
	defer r.followMu.Unlock()
	return r.followed
}

// WaitFollowed returns once the follow loop has taken in index, so a read
// from this agent right after a write sees it, whether it reads the state
// or what the gateway serves.
func (r *replica) WaitFollowed(ctx context.Context, index uint64) error {
	for {
		r.followMu.Lock()
		done, ch := r.followed >= index, r.advanced
		r.followMu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the change committed at index %d but this agent has not taken it in yet: %w", index, ctx.Err())
		case <-ch:
		}
	}
}

// follow records that the follow loop took in index and wakes the waiters.
func (r *replica) follow(index uint64) {
	r.followMu.Lock()
	defer r.followMu.Unlock()
	if index <= r.followed {
		return
	}
	r.followed = index
	close(r.advanced)
	r.advanced = make(chan struct{})
}

// unservedReason is the cluster node's Options.Unserved.
func (r *replica) unservedReason() string {
	if p := r.unserved.Load(); p != nil {
		return *p
	}
	return ""
}

func (r *replica) setUnserved(format string, args ...any) {
	why := fmt.Sprintf(format, args...)
	r.unserved.Store(&why)
}

// openCluster opens the agent's cluster node once its HTTP address is
// known, follows the replicated state into the gateway, and seeds a fresh
// cluster with seed when the agent has a configuration of its own.
func (s *Server) openCluster(ctx context.Context, httpAddr string, seed *config.Config) error {
	co := s.opts.Cluster
	if err := co.check(s.opts.Dev); err != nil {
		return err
	}
	raftAddr := co.RaftAddr
	if raftAddr == "" {
		raftAddr = DefaultRaftAddr
		if s.opts.Dev {
			raftAddr = "127.0.0.1:0"
		}
	}
	lone := !co.multi()
	expect := co.BootstrapExpect
	if lone {
		expect = 0
	}
	s.wireSpend()
	r := newReplica(s.log, s.opts.NodeID, s.Reload)
	r.spend, r.stats, r.catchUpWait = s.spend, s.stats, cmp.Or(s.opts.Cluster.CatchUpWait, DefaultCatchUpWait)
	r.docs = s.documents
	r.canaries = newCanaryWatch(s.opts.NodeID, s.metrics.Registry())
	node, err := cluster.Open(ctx, cluster.Options{
		NodeID:            s.opts.NodeID,
		RaftAddr:          raftAddr,
		DataDir:           s.opts.DataDir,
		HTTPAddr:          s.scheme() + "://" + httpAddr,
		Secret:            co.Secret,
		Voters:            co.Voters,
		Bootstrap:         lone,
		BootstrapExpect:   expect,
		Join:              co.Join,
		SnapshotThreshold: co.SnapshotThreshold,
		TrailingLogs:      co.SnapshotThreshold,
		SnapshotInterval:  co.SnapshotInterval,
		Logger:            s.log.With("component", "cluster"),
		TLS:               s.raftTLS(),
		HTTPClient:        s.peerClient(),
		Unserved:          r.unservedReason,
		Serving:           r.Served,
		Blobs:             s.documents.served(),
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	r.Node = node
	s.metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: "config_unserved",
		Help: "1 while this agent does not serve the cluster's current configuration: catching up after a start, serving a stale state without a leader, or the newer one does not compile here; GET /admin/v1/status says why."},
		func() float64 {
			if r.unservedReason() != "" {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: "config_stale",
			Help: "1 while this agent serves the state it applied before it stopped because no leader has confirmed a newer one since it started."},
			func() float64 {
				if r.stale.Load() {
					return 1
				}
				return 0
			}))
	s.cl = r
	sp := seedPlan{bootstrapToken: s.opts.BootstrapToken}
	if s.opts.Dev || s.opts.ConfigFile != "" {
		sp.cfg, sp.dev, sp.devKey, sp.devToken = seed, s.opts.Dev, s.opts.DevKey, s.opts.DevAdminToken
	}
	r.start(sp)
	s.log.Info("cluster node open", "raft_addr", node.RaftAddr(), "bootstrap", lone, "expect", expect, "join", co.Join)
	return nil
}

// start runs the replica's loops until close. The gateway serves nothing
// until the agent has caught up with the cluster (see catchUp).
func (r *replica) start(sp seedPlan) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.setUnserved("catching up with the cluster: waiting for a leader to confirm its latest state")
	r.wg.Go(func() {
		if r.catchUp(ctx) {
			r.followState(ctx)
		}
	})
	if r.spend != nil {
		r.wg.Go(func() { r.syncSpend(ctx) })
	}
	r.wg.Go(func() { r.syncStats(ctx) })
	r.wg.Go(func() { r.syncDocuments(ctx) })
	r.wg.Go(func() { r.watchCanaries(ctx) })
	r.wg.Go(func() { r.pruneRevokedKeys(ctx) })
	if sp.cfg != nil || sp.dev || sp.bootstrapToken != "" {
		r.wg.Go(func() { r.seed(ctx, sp) })
	}
}

// catchUp waits until this agent's state holds everything the cluster had
// committed when it started: a consistent read through the leader. Raft
// replays the log meanwhile, but nothing of it is served, so the gateway
// never serves an intermediate configuration (a key revoked later, a label
// that moved since). Budget grants are resumed before the first call. With
// no leader for catchUpWait it serves what the agent applied before it
// stopped, says it is stale, and keeps trying. It reports false when ctx
// ended first.
func (r *replica) catchUp(ctx context.Context) bool {
	start := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := r.ConsistentState(cctx)
		cancel()
		if err == nil {
			if r.spend != nil {
				r.spend.waitFirstSync(ctx, 2*time.Second)
			}
			// Judge the current state afresh, whatever was served stale.
			r.stale.Store(false)
			r.refused = nil
			r.served.Store(0)
			r.log.Info("caught up with the cluster", "index", st.Index, "took", time.Since(start).Round(time.Millisecond))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if waited := time.Since(start); waited >= r.catchUpWait && !r.stale.Load() {
			rec := r.Recovered()
			if cur := r.State(); cur.Index > rec.Index {
				rec = cur
			}
			r.stale.Store(true)
			r.swapState(rec)
			if rec.Index == r.served.Load() && hasConfig(&rec.Config) {
				r.setUnserved("no leader reachable for %s: serving the state at index %d this agent applied before it stopped, which may be older than the cluster's", waited.Round(time.Second), rec.Index)
				r.log.Warn("no cluster leader; serving what this agent applied before it stopped", "index", rec.Index, "waited", waited.Round(time.Second))
			}
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return false
		}
	}
}

// stop commits the agent's last spend, giving its budget grants back, and
// its last per-release counters, once no call is in flight. The agent stays
// a member: a restart is not a departure, and taking a voter out for every
// restart would shrink the quorum under the cluster. `gantry members
// remove` takes an agent out for good. Spend that cannot be committed
// (no leader) is kept on disk and committed after the next start.
func (r *replica) stop() {
	if r.Leader() == "" {
		r.log.Warn("the cluster has no leader; the last spend is kept for the next start and the last counters are lost")
		if r.spend != nil {
			r.spend.keep(r.log)
		}
		return
	}
	// One bound for all of it: a stop must not hang on a cluster that is
	// stopping too.
	ctx, cancel := context.WithTimeout(context.Background(), stopBudget)
	defer cancel()
	go r.cancelWhenLeaderless(ctx, cancel)
	r.flushSpend(ctx)
	r.flushStats(ctx)
	if err := r.HandOver(ctx); err != nil {
		r.log.Warn("could not hand leadership over; the others elect a leader after a timeout", "err", err)
	}
}

// stopBudget bounds what a stopping agent does for its cluster: its last
// spend and counters, and handing leadership over.
const stopBudget = 4 * time.Second

// leaderlessWait is how long a stopping agent goes on once its cluster
// has no leader. When a whole cluster stops at once, nothing it sends can
// commit any more; waiting out stopBudget would only delay the stop. The
// price: an agent stopping while the others elect a new leader keeps its
// spend for its next start (as without a leader) and loses its last
// per-release counters.
const leaderlessWait = 200 * time.Millisecond

// cancelWhenLeaderless calls cancel once the node has known no leader for
// leaderlessWait, or returns when ctx ends.
func (r *replica) cancelWhenLeaderless(ctx context.Context, cancel context.CancelFunc) {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch {
		case r.Leader() != "":
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= leaderlessWait:
			r.log.Warn("the cluster has had no leader for " + leaderlessWait.String() + " while this agent stops; it stops without waiting for it")
			cancel()
			return
		}
	}
}

// close stops the loops and the node.
func (r *replica) close() {
	r.cancel()
	r.wg.Wait()
	if err := r.Node.Close(); err != nil {
		r.log.Warn("closing the cluster node", "err", err)
	}
}

// hasConfig reports whether a configuration holds anything to serve; a
// fresh cluster's empty state never replaces a configuration.
func hasConfig(c *config.Config) bool {
	return c != nil && len(c.Providers)+len(c.Models)+len(c.Routes)+len(c.Features)+len(c.Keys) > 0
}

// followState compiles every new replicated configuration and swaps it into
// the gateway. The gateway never waits on this loop: it keeps serving the
// previous snapshot until the next one is compiled.
func (r *replica) followState(ctx context.Context) {
	ch := r.Subscribe(ctx)
	r.swapState(r.State())
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			r.swapState(r.State())
		}
	}
}

func (r *replica) swapState(st *state.State) {
	defer r.follow(st.Index)
	if !hasConfig(&st.Config) {
		r.setUnserved("the cluster holds no configuration yet (index %d): apply one, or start an agent with --config to seed it", st.Index)
		return
	}
	if st.Index <= r.served.Load() {
		return
	}
	cfg := st.Config
	if r.compiled != nil && sameConfig(r.compiled, &cfg) {
		r.served.Store(st.Index)
		r.unserved.Store(nil)
		return
	}
	if r.refused != nil && sameConfig(r.refused, &cfg) {
		return
	}
	if err := r.serve(&cfg); err != nil {
		r.refused = &cfg
		why := fmt.Sprintf("the configuration at index %d does not compile here, so the gateway serves the one of index %d: %v", st.Index, r.served.Load(), err)
		r.unserved.Store(&why)
		r.log.Error("replicated configuration does not compile; still serving the previous one", "index", st.Index, "err", err)
		return
	}
	r.compiled, r.refused = &cfg, nil
	if !r.stale.Load() {
		r.unserved.Store(nil)
	}
	r.served.Store(st.Index)
	r.servingOnce.Do(func() { close(r.serving) })
	r.log.Debug("configuration swapped", "index", st.Index)
}

// sameConfig reports whether b is a copy of a that shares every list, which
// is how the state machine leaves a configuration a command did not touch.
func sameConfig(a, b *config.Config) bool {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		fa, fb := va.Field(i), vb.Field(i)
		if fa.Kind() == reflect.Slice {
			if fa.Len() != fb.Len() || (fa.Len() > 0 && fa.Pointer() != fb.Pointer()) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			return false
		}
	}
	return true
}

// seedPlan is what an agent brings to a cluster: its configuration file
// (or the dev example) and, in dev mode, the printed key and admin token.
type seedPlan struct {
	cfg              *config.Config
	dev              bool
	devKey, devToken string
	// bootstrapToken becomes the admin token "bootstrap" of a cluster that
	// has no admin token yet.
	bootstrapToken string
}

// seed applies the agent's own configuration to a cluster whose state holds
// none yet, once; in dev mode it also makes sure the printed key and admin
// token work. It retries until it succeeds or the agent stops.
func (r *replica) seed(ctx context.Context, sp seedPlan) {
	for wait := 200 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		err := r.seedOnce(ctx, sp)
		if err == nil {
			if r.WaitFollowed(ctx, r.State().Index) == nil {
				close(r.seeded)
			}
			return
		}
		r.log.Debug("seeding the cluster will be retried", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (r *replica) seedOnce(ctx context.Context, sp seedPlan) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.WaitForLeader(wctx); err != nil {
		return err
	}
	st, err := r.ConsistentState(wctx)
	if err != nil {
		return err
	}
	actor := "agent:" + r.nodeID
	if !hasConfig(&st.Config) && hasConfig(sp.cfg) {
		env, err := command.New(command.ApplyConfig, command.Config{Config: *sp.cfg})
		if err != nil {
			return err
		}
		// Agents seeding the same file at once write one change: the
		// request id is the file's digest.
		b, _ := json.Marshal(sp.cfg)
		sum := sha256.Sum256(b)
		env.RequestID = "seed-" + hex.EncodeToString(sum[:16])
		env.Actor = actor
		res, err := r.Apply(wctx, env)
		if err != nil {
			return fmt.Errorf("seed the configuration: %w", err)
		}
		r.log.Info("cluster seeded with this agent's configuration", "index", res.Index, "duplicate", res.Duplicate)
		if st, err = r.ConsistentState(wctx); err != nil {
			return err
		}
	}
	if sp.bootstrapToken != "" {
		if err := r.bootstrapToken(wctx, st, sp.bootstrapToken, actor); err != nil {
			return err
		}
	}
	if !sp.dev {
		return nil
	}
	hash := config.HashKey(sp.devKey)
	if i := keyIndex(st.Config.Keys, "dev"); i < 0 || st.Config.Keys[i].Hash != hash || st.Config.Keys[i].Revoked || !st.Config.Keys[i].Eval {
		// The dev key may run evaluations, so the example works at once.
		env, err := command.New(command.PutKey, command.Key{Key: config.Key{Name: "dev", Team: "dev", Hash: hash, Eval: true}})
		if err != nil {
			return err
		}
		env.Actor = actor
		if _, err := r.Apply(wctx, env); err != nil {
			return fmt.Errorf("register the dev key: %w", err)
		}
	}
	thash := config.HashKey(sp.devToken)
	if t, ok := st.Token(thash); !ok || t.Name != "dev" || t.Revoked || t.Role != config.RoleAdmin {
		env, err := command.New(command.PutToken, command.TokenPayload{Token: command.Token{Name: "dev", Hash: thash, Role: config.RoleAdmin}})
		if err != nil {
			return err
		}
		env.Actor = actor
		if _, err := r.Apply(wctx, env); err != nil {
			return fmt.Errorf("register the dev admin token: %w", err)
		}
	}
	return r.seedDataset(wctx, st, actor)
}

// bootstrapToken registers token as the replicated admin token "bootstrap"
// when the cluster has no admin token yet; otherwise the file is not
// needed and is ignored. Agents registering the same file at once write
// one change.
func (r *replica) bootstrapToken(ctx context.Context, st *state.State, token, actor string) error {
	for _, t := range st.Tokens {
		if t.Role == config.RoleAdmin && !t.Revoked {
			r.log.Debug("the cluster has admin tokens; the bootstrap token file is not used")
			return nil
		}
	}
	hash := config.HashKey(token)
	env, err := command.New(command.PutToken, command.TokenPayload{Token: command.Token{Name: "bootstrap", Hash: hash, Role: config.RoleAdmin}})
	if err != nil {
		return err
	}
	env.RequestID = "bootstrap-token-" + strings.TrimPrefix(hash, "sha256:")[:32]
	env.Actor = actor
	if _, err := r.Apply(ctx, env); err != nil {
		return fmt.Errorf("register the bootstrap admin token: %w", err)
	}
	r.log.Info("the bootstrap admin token is registered; create your own admin tokens and revoke it (gantry tokens revoke bootstrap)")
	return nil
}

func keyIndex(keys []config.Key, name string) int {
	for i, k := range keys {
		if k.Name == name {
			return i
		}
	}
	return -1
}

// applyFile applies a configuration file to the cluster as one change, on
// SIGHUP, as `gantry apply` does without --prune: only what the file
// declares and changed since it was last applied. A file that changes
// nothing is not written to the log; each change is logged.
func (r *replica) applyFile(path string) {
	cfg, err := config.LoadFile(path)
	if err == nil {
		err = release.CheckConfig(cfg)
	}
	if err == nil && cfg.DeclaresNothing() {
		err = errors.New("the file declares nothing")
	}
	if err != nil {
		r.log.Error("reload refused; the cluster keeps its configuration", "file", path, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	st, err := r.ConsistentState(ctx)
	if err != nil {
		r.log.Error("reload refused: the cluster's current state cannot be read", "file", path, "err", err)
		return
	}
	env, err := command.New(command.ApplyConfig, command.Config{Config: *cfg})
	if err != nil {
		r.log.Error("reload refused", "err", err)
		return
	}
	env.Actor = "agent:" + r.nodeID + " (reload of " + filepath.Base(path) + ")"
	env.Time = time.Now().UTC()
	dry := env
	dry.RequestID = "dry-run"
	next, _, err := st.Apply(st.Index+1, dry)
	if err != nil {
		r.log.Error("reload refused; the cluster keeps its configuration", "file", path, "err", err)
		return
	}
	changes := config.Changes(&st.Config, &next.Config, st.Declared, cfg)
	if !config.ChangesAnything(changes) {
		r.log.Info("configuration file reloaded: it changes nothing", "file", path)
		return
	}
	res, err := r.Apply(ctx, env)
	if err != nil {
		r.log.Error("reload refused; the cluster keeps its configuration", "file", path, "err", err)
		return
	}
	for _, c := range changes {
		if c.Op == config.OpAdd || c.Op == config.OpRemove || c.Op == config.OpChange {
			r.log.Info("configuration file reloaded", "file", path, "index", res.Index, "op", c.Op, "object", c.Kind+"/"+c.Name, "fields", len(c.Fields))
		}
	}
}
