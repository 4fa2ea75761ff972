package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/api"
	"gantry/cluster"
	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/config"
)

// ClusterOptions wire an agent into a Raft cluster. Every agent runs a
// cluster node; one started without Join or BootstrapExpect forms a cluster
// of its own.
type ClusterOptions struct {
	// RaftAddr is where the Raft transport listens [127.0.0.1:7401; a dev
	// agent picks a free port].
	RaftAddr string
	// BootstrapExpect forms a new cluster once this many agents named in
	// Join have met; all of them vote.
	BootstrapExpect int
	// Join lists other agents' HTTP addresses (host:port) to join through.
	Join []string
	// Secret authenticates agents to each other; required with Join or
	// BootstrapExpect.
	Secret string
	// Voters is how many agents vote: 3 or 5 [3]. Further agents join as
	// non-voters and still replicate the state.
	Voters int
	// SnapshotThreshold is how many new log entries make the agent
	// snapshot its state and compact its log, keeping as many entries
	// behind the snapshot for followers that lag [8192].
	SnapshotThreshold uint64
	// SnapshotInterval is how often the threshold is checked [2m].
	SnapshotInterval time.Duration
}

// DefaultRaftAddr is where an agent's Raft transport listens by default.
const DefaultRaftAddr = "127.0.0.1:7401"

// leftMarker is written into the data dir after the agent left its cluster,
// so the next start joins afresh instead of waiting on a cluster that no
// longer counts it.
const leftMarker = "cluster-left"

// minSnapshotThreshold keeps snapshots from running after every few writes.
const minSnapshotThreshold = 32

func (c ClusterOptions) multi() bool { return len(c.Join) > 0 || c.BootstrapExpect > 1 }

// fromCluster reports whether the agent may start without a configuration
// file because a cluster's state will bring one.
func (c ClusterOptions) fromCluster(dataDir string) bool {
	if c.multi() {
		return true
	}
	_, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db"))
	return err == nil
}

func (c ClusterOptions) check(dev bool) error {
	switch {
	case c.Voters != 0 && c.Voters != 3 && c.Voters != 5:
		return fmt.Errorf("--voters %d: want 3 or 5", c.Voters)
	case c.BootstrapExpect < 0 || c.BootstrapExpect > max(c.Voters, 3):
		return fmt.Errorf("--bootstrap-expect %d: want 1 up to the number of voters (%d)", c.BootstrapExpect, max(c.Voters, 3))
	case c.BootstrapExpect > 1 && len(c.Join) == 0:
		return errors.New("--bootstrap-expect needs --join with the other agents' addresses")
	case dev && c.multi():
		return errors.New("--dev is a single agent; drop --join and --bootstrap-expect, or drop --dev")
	case c.multi() && c.Secret == "":
		return errors.New("a cluster of several agents needs --cluster-secret (or GANTRY_CLUSTER_SECRET), the same on every agent")
	case c.SnapshotThreshold != 0 && c.SnapshotThreshold < minSnapshotThreshold:
		return fmt.Errorf("--raft-snapshot-threshold %d: want at least %d", c.SnapshotThreshold, minSnapshotThreshold)
	case c.SnapshotInterval < 0 || (c.SnapshotInterval != 0 && c.SnapshotInterval < time.Second):
		return fmt.Errorf("--raft-snapshot-interval %s: want at least 1s", c.SnapshotInterval)
	}
	return nil
}

// clusterSide is the agent's cluster node and the loops that follow it.
type clusterSide struct {
	node   *cluster.Node
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// served is the state index the gateway's configuration was compiled
	// from; 0 while it serves a local file or nothing.
	served atomic.Uint64
	// followed is the last state index the follow loop took in, whether
	// it swapped, skipped or refused the configuration at that index.
	followed atomic.Uint64
	// compiled is the configuration the gateway serves, to skip commands
	// that changed only members, tokens, spend or the audit log; refused
	// is the last one that did not compile, so it is not compiled again
	// at every later index.
	compiled, refused *config.Config
	// unserved is why the configuration at the state's index is not
	// served, nil when it is.
	unserved atomic.Pointer[string]
}

// unservedReason is the cluster node's Options.Unserved.
func (cl *clusterSide) unservedReason() string {
	if p := cl.unserved.Load(); p != nil {
		return *p
	}
	return ""
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
	if err := s.rejoinAfterLeave(&co); err != nil {
		return err
	}
	lone := !co.multi()
	expect := co.BootstrapExpect
	if lone {
		expect = 0
	}
	cl := &clusterSide{}
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
		Unserved:          cl.unservedReason,
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cl.node = node
	s.metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gantry", Name: "config_unserved",
		Help: "1 while this agent serves an older configuration than the cluster's because the newer one does not compile here; GET /admin/v1/status says why."},
		func() float64 {
			if cl.unservedReason() != "" {
				return 1
			}
			return 0
		}))
	lctx, cancel := context.WithCancel(context.Background())
	cl.cancel = cancel
	s.cl = cl
	cl.wg.Go(func() { s.followState(lctx) })
	if s.spend != nil {
		cl.wg.Go(func() { s.syncSpend(lctx) })
	}
	cl.wg.Go(func() { s.syncStats(lctx) })
	if s.opts.Dev || s.opts.ConfigFile != "" {
		cl.wg.Go(func() { s.seed(lctx, seed) })
	}
	s.log.Info("cluster node open", "raft_addr", node.RaftAddr(), "bootstrap", lone, "expect", expect, "join", co.Join)
	return nil
}

// rejoinAfterLeave moves aside the Raft state of an agent that left its
// cluster, so it joins again as a new member.
func (s *Server) rejoinAfterLeave(co *ClusterOptions) error {
	marker := filepath.Join(s.opts.DataDir, leftMarker)
	if _, err := os.Stat(marker); err != nil {
		return nil
	}
	dir := filepath.Join(s.opts.DataDir, "raft")
	old := dir + ".left"
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("cluster: clear %s: %w", old, err)
	}
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster: move aside the state of the cluster this agent left: %w", err)
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	// The others formed the cluster long ago; join it rather than wait
	// for a bootstrap that will not come.
	co.BootstrapExpect = 0
	s.log.Info("this agent left its cluster before; joining again", "old_state", old)
	return nil
}

// leaveCluster hands leadership over and takes the agent out of a cluster
// of several; a lone agent just stops.
func (s *Server) leaveCluster() {
	if s.cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	members, err := s.cl.node.Members(ctx)
	if err != nil || len(members) <= 1 {
		return
	}
	if s.cl.node.Leader() == "" {
		// Without a quorum nobody can record the departure.
		s.log.Warn("the cluster has no leader; stopping without leaving it")
		return
	}
	s.flushSpend()
	s.flushStats()
	if err := s.cl.node.Leave(ctx); err != nil {
		s.log.Warn("could not leave the cluster cleanly; the others will see this agent as failed", "err", err)
		return
	}
	if err := os.WriteFile(filepath.Join(s.opts.DataDir, leftMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		s.log.Warn("left the cluster but could not record it", "err", err)
	}
	s.log.Info("left the cluster")
}

// closeCluster stops the loops and the node.
func (s *Server) closeCluster() {
	if s.cl == nil {
		return
	}
	s.cl.cancel()
	s.cl.wg.Wait()
	if err := s.cl.node.Close(); err != nil {
		s.log.Warn("closing the cluster node", "err", err)
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
func (s *Server) followState(ctx context.Context) {
	ch := s.cl.node.Subscribe(ctx)
	s.swapState(s.cl.node.State())
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			s.swapState(s.cl.node.State())
		}
	}
}

func (s *Server) swapState(st *state.State) {
	defer s.cl.followed.Store(max(s.cl.followed.Load(), st.Index))
	if !hasConfig(&st.Config) || st.Index <= s.cl.served.Load() {
		return
	}
	cfg := st.Config
	if s.cl.compiled != nil && sameConfig(s.cl.compiled, &cfg) {
		s.cl.served.Store(st.Index)
		s.cl.unserved.Store(nil)
		return
	}
	if s.cl.refused != nil && sameConfig(s.cl.refused, &cfg) {
		return
	}
	if err := s.Reload(&cfg); err != nil {
		s.cl.refused = &cfg
		why := fmt.Sprintf("the configuration at index %d does not compile here, so the gateway serves the one of index %d: %v", st.Index, s.cl.served.Load(), err)
		s.cl.unserved.Store(&why)
		s.log.Error("replicated configuration does not compile; still serving the previous one", "index", st.Index, "err", err)
		return
	}
	s.cl.compiled, s.cl.refused = &cfg, nil
	s.cl.unserved.Store(nil)
	s.cl.served.Store(st.Index)
	s.log.Debug("configuration swapped", "index", st.Index)
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

// seed applies the agent's own configuration to a cluster whose state holds
// none yet, once; in dev mode it also makes sure the printed key and admin
// token work. It retries until it succeeds or the agent stops.
func (s *Server) seed(ctx context.Context, cfg *config.Config) {
	for wait := 200 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		err := s.seedOnce(ctx, cfg)
		if err == nil {
			return
		}
		s.log.Debug("seeding the cluster will be retried", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (s *Server) seedOnce(ctx context.Context, cfg *config.Config) error {
	node := s.cl.node
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := node.WaitForLeader(wctx); err != nil {
		return err
	}
	st, err := node.ConsistentState(wctx)
	if err != nil {
		return err
	}
	actor := "agent:" + s.opts.NodeID
	if !hasConfig(&st.Config) && hasConfig(cfg) {
		env, err := command.New(command.ApplyConfig, command.Config{Config: *cfg})
		if err != nil {
			return err
		}
		// Agents seeding the same file at once write one change: the
		// request id is the file's digest.
		b, _ := json.Marshal(cfg)
		sum := sha256.Sum256(b)
		env.RequestID = "seed-" + hex.EncodeToString(sum[:16])
		env.Actor = actor
		res, err := node.Apply(wctx, env)
		if err != nil {
			return fmt.Errorf("seed the configuration: %w", err)
		}
		s.log.Info("cluster seeded with this agent's configuration", "index", res.Index, "duplicate", res.Duplicate)
		if st, err = node.ConsistentState(wctx); err != nil {
			return err
		}
	}
	if !s.opts.Dev {
		return nil
	}
	hash := config.HashKey(s.opts.DevKey)
	if i := keyIndex(st.Config.Keys, "dev"); i < 0 || st.Config.Keys[i].Hash != hash || st.Config.Keys[i].Revoked {
		env, err := command.New(command.PutKey, command.Key{Key: config.Key{Name: "dev", Team: "dev", Hash: hash}})
		if err != nil {
			return err
		}
		env.Actor = actor
		if _, err := node.Apply(wctx, env); err != nil {
			return fmt.Errorf("register the dev key: %w", err)
		}
	}
	thash := config.HashKey(s.opts.DevAdminToken)
	if t, ok := st.Token(thash); !ok || t.Name != "dev" || t.Revoked || t.Role != command.RoleAdmin {
		env, err := command.New(command.PutToken, command.TokenPayload{Token: command.Token{Name: "dev", Hash: thash, Role: command.RoleAdmin}})
		if err != nil {
			return err
		}
		env.Actor = actor
		if _, err := node.Apply(wctx, env); err != nil {
			return fmt.Errorf("register the dev admin token: %w", err)
		}
	}
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

// applyFile applies the configuration file as one change, on SIGHUP.
func (s *Server) applyFile() {
	cfg, err := config.LoadFile(s.opts.ConfigFile)
	if err != nil {
		s.log.Error("reload refused; the cluster keeps its configuration", "file", s.opts.ConfigFile, "err", err)
		return
	}
	if err := checkReleases(cfg); err != nil {
		s.log.Error("reload refused; the cluster keeps its configuration", "file", s.opts.ConfigFile, "err", err)
		return
	}
	env, err := command.New(command.ApplyConfig, command.Config{Config: *cfg})
	if err != nil {
		s.log.Error("reload refused", "err", err)
		return
	}
	env.Actor = "agent:" + s.opts.NodeID + " (reload of " + filepath.Base(s.opts.ConfigFile) + ")"
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	res, err := s.cl.node.Apply(ctx, env)
	if err != nil {
		s.log.Error("reload refused; the cluster keeps its configuration", "file", s.opts.ConfigFile, "err", err)
		return
	}
	s.log.Info("configuration file applied to the cluster", "file", s.opts.ConfigFile, "index", res.Index)
}

// readyz answers 200 once the gateway serves a configuration, with the
// state index it was compiled from.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	snap := s.gw.Snapshot()
	if snap == nil || !hasConfig(snap.Config) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "no configuration", "node": s.opts.NodeID})
		return
	}
	var served uint64
	if s.cl != nil {
		served = s.cl.served.Load()
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "node": s.opts.NodeID, "serving_index": served})
}

// principal is who made an admin request.
type principal struct {
	name string
	role command.Role
}

type principalKey struct{}

// actor names the caller of an admin request for the audit log.
func actor(r *http.Request) string {
	name := "unknown"
	if p, ok := r.Context().Value(principalKey{}).(principal); ok {
		name = "token:" + p.name
	}
	// The console names the person at the keyboard (an SSH user and key, or
	// a local user). The token is what authenticates; the name is what the
	// client says, kept so operators sharing a token can be told apart.
	if op := operatorName(r.Header.Get("X-Gantry-Operator")); op != "" {
		name += " (" + op + ")"
	}
	return name
}

// operatorName keeps a client's operator header printable and short.
func operatorName(s string) string {
	const maxLen = 128
	b := make([]byte, 0, min(len(s), maxLen))
	for i := 0; i < len(s) && len(b) < maxLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '(' && c != ')' {
			b = append(b, c)
		}
	}
	return strings.TrimSpace(string(b))
}

// authenticate finds the admin token: the agent's own (the dev token and
// GANTRY_ADMIN_TOKENS, both admins) or one of the replicated state's. Every
// candidate is compared in constant time.
func (s *Server) authenticate(tok string) (principal, bool) {
	if tok == "" {
		return principal{}, false
	}
	var found principal
	ok := 0
	sum := sha256.Sum256([]byte(tok))
	local := func(name, t string) {
		if t == "" {
			return
		}
		want := sha256.Sum256([]byte(t))
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			found, ok = principal{name: name, role: command.RoleAdmin}, 1
		}
	}
	local("dev", s.opts.DevAdminToken)
	for i, t := range s.opts.AdminTokens {
		local(fmt.Sprintf("local-%d", i+1), t)
	}
	if s.cl != nil {
		hash := []byte(config.HashKey(tok))
		for _, t := range s.cl.node.State().Tokens {
			if subtle.ConstantTimeCompare(hash, []byte(t.Hash)) == 1 && !t.Revoked && ok == 0 {
				found, ok = principal{name: t.Name, role: t.Role}, 1
			}
		}
	}
	return found, ok == 1
}

// require wraps an admin endpoint: the caller's token must have at least
// the role want.
func (s *Server) require(want string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(bearer(r))
		if !ok {
			writeAPIError(w, http.StatusUnauthorized, api.CodeUnauthorized, "an admin token is required: 'Authorization: Bearer <token>'")
			return
		}
		if !p.role.Allows(command.Role(want)) {
			writeAPIError(w, http.StatusForbidden, api.CodeForbidden, fmt.Sprintf("token %s has the role %s; this needs %s", p.name, p.role, want))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// requireByMethod asks a viewer's token of reads (GET, HEAD) and an
// operator's of every other method.
func (s *Server) requireByMethod(h http.HandlerFunc) http.Handler {
	read, write := s.require(api.RoleViewer, h), s.require(api.RoleOperator, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			read.ServeHTTP(w, r)
			return
		}
		write.ServeHTTP(w, r)
	})
}
