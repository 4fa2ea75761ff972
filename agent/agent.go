// Package agent is Gantry's node daemon: it loads configuration, builds the
// pipeline, serves the gateway, admin API, live feed and metrics over HTTP,
// and shuts down gracefully.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"gantry/agent/admin"
	"gantry/agent/gateway"
	"gantry/agent/httpio"
	"gantry/cluster"
	"gantry/config"
	"gantry/pipeline"
	"gantry/pipeline/budget"
	"gantry/pipeline/costs"
	"gantry/pipeline/metrics"
	"gantry/pipeline/provider"
	"gantry/pipeline/retrieval"
	"gantry/pipeline/tokens"
	"gantry/pipeline/trace"
	"gantry/tlsconf"
)

// Options configure an agent. The zero value of each field has a default.
type Options struct {
	HTTPAddr   string // default 127.0.0.1:7400
	DataDir    string // default $TMPDIR/gantry/<node-id>
	NodeID     string // default the host name
	ConfigFile string // YAML configuration; required unless Dev
	Dev        bool   // serve the embedded example with the simulator
	// DevKey and DevAdminToken fix dev mode's credentials for scripts;
	// empty means fresh random ones.
	DevKey        string
	DevAdminToken string
	// AdminTokens are accepted on the admin API besides the dev token.
	AdminTokens []string
	// BootstrapToken is registered as the replicated admin token
	// "bootstrap" when the cluster has no admin token yet: a new cluster's
	// way in (read from --bootstrap-token-file).
	BootstrapToken string
	// ProviderKeyPattern is what a provider's api_key_env must match
	// (default names ending in _API_KEY); the agent's own secrets and
	// cloud credentials can never be named, whatever it says.
	ProviderKeyPattern string
	// Trace store bounds.
	TraceMaxCount int
	TraceMaxBytes int64
	Log           *slog.Logger
	// Out receives the dev-mode banner; default standard output.
	Out io.Writer
	// Ready, when set, is called with the bound address once serving.
	Ready func(addr string)
	// Cluster wires the agent into a Raft cluster; see cluster.go.
	Cluster ClusterOptions
	// TLS turns on mutual TLS for HTTP and Raft when all three files are
	// named; see tls.go.
	TLS tlsconf.Files

	// adminTimeouts and bodyTimeout shorten the agent's waits in tests.
	adminTimeouts admin.Timeouts
	bodyTimeout   time.Duration
	// docTimings pace the document side; tests shorten them.
	docTimings docTimings
}

// Default bounds of the trace store.
const (
	DefaultTraceMaxCount = 5000
	DefaultTraceMaxBytes = 8 << 20
)

// Server is a running agent's HTTP side.
type Server struct {
	opts     Options
	log      *slog.Logger
	gw       *pipeline.Gateway
	store    *trace.Store
	recorder *trace.Recorder
	metrics  *metrics.Metrics
	mu       sync.Mutex // serialises reloads
	// last is the configuration compiled last, kept for the swap that
	// follows a check of the same one.
	last struct {
		sum  [32]byte
		snap *pipeline.Snapshot
	}
	set      *pipeline.ProviderSet
	docs     *retrieval.Store
	ledger   *budget.Local
	spend    *spendSide    // nil unless budgets are granted by the cluster
	stats    *statsSide    // per-release counters for the cluster
	costs    *costs.Table  // cost per good answer of this agent's calls
	cl       *replica      // nil until Run opens the cluster node
	stopping chan struct{} // closed when the HTTP server starts shutting down

	tls *tlsconf.Creds // nil: plain HTTP and Raft

	// documents keeps collections' bodies and brings indexes to the
	// cluster's manifests.
	documents *docSide
}

// Run starts an agent and serves until ctx is cancelled, then shuts down
// gracefully: it stops accepting, lets calls in flight finish, and flushes
// the trace queue.
func Run(ctx context.Context, opts Options) error {
	creds, err := loadTLS(opts.TLS)
	if err != nil {
		return err
	}
	s, cfg, err := build(&opts)
	if err != nil {
		return err
	}
	defer s.close()
	s.tls = creds

	ln, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.HTTPAddr, err)
	}
	if err := s.checkTLSHosts(ln.Addr().String()); err != nil {
		ln.Close()
		return err
	}
	if err := s.openCluster(ctx, ln.Addr().String(), cfg); err != nil {
		ln.Close()
		return err
	}
	defer func() {
		if s.cl != nil {
			s.cl.close()
		}
	}()
	reapCtx, stopReaper := context.WithCancel(ctx)
	defer stopReaper()
	go s.runReaper(reapCtx)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Live feeds never go idle; they end when shutdown begins.
	srv.RegisterOnShutdown(func() { close(s.stopping) })
	errc := make(chan error, 1)
	go func() { errc <- s.serve(srv, ln) }()
	addr := ln.Addr().String()
	s.log.Info("agent listening; serving once it has caught up with its cluster", "node", opts.NodeID, "http", addr, "data_dir", opts.DataDir)
	if opts.Ready != nil {
		opts.Ready(addr)
	}
	// A dev agent's banner promises a key and a token that work: it waits
	// for them too.
	var serving <-chan struct{} = s.cl.serving
	if opts.Dev {
		serving = both(ctx, s.cl.serving, s.cl.seeded)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-serving:
			serving = nil
			snap := s.gw.Snapshot()
			s.log.Info("agent serving", "node", opts.NodeID, "http", addr, "state_index", s.cl.Served(),
				"providers", len(snap.Config.Providers), "models", len(snap.Config.Models), "features", len(snap.Config.Features))
			if opts.Dev {
				printDevBanner(opts.Out, s.scheme()+"://"+addr, opts.DevKey, opts.DevAdminToken)
				if s.tls != nil {
					fmt.Fprint(opts.Out, "Mutual TLS is on: every client needs a certificate the CA signed (curl --cert, --key, --cacert).\n\n")
				}
			}
		case err := <-errc:
			return fmt.Errorf("http server: %w", err)
		case <-hup:
			s.reloadTLS()
			s.reloadFile()
		case <-ctx.Done():
			done = true
		}
	}
	s.log.Info("agent shutting down")
	// Calls in flight finish first, so the spend they settle is in the
	// last batch the agent commits before it leaves the cluster.
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown did not finish cleanly", "err", err)
	}
	if s.cl != nil {
		s.cl.stop()
	}
	return nil
}

// build loads the configuration and assembles the pipeline, trace store and
// metrics, filling defaults into opts.
func build(opts *Options) (*Server, *config.Config, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:7400"
	}
	if opts.NodeID == "" {
		h, _ := os.Hostname()
		opts.NodeID = h
	}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(os.TempDir(), "gantry", opts.NodeID)
	}
	// The trace store is most of an agent's live memory; these bounds keep
	// an agent near 60 MB resident after sustained load.
	if opts.TraceMaxCount == 0 {
		opts.TraceMaxCount = DefaultTraceMaxCount
	}
	if opts.TraceMaxBytes == 0 {
		opts.TraceMaxBytes = DefaultTraceMaxBytes
	}
	cfg, err := loadConfig(opts)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	s := &Server{opts: *opts, log: opts.Log, metrics: metrics.New(), stopping: make(chan struct{})}
	s.stats = newStatsSide(opts.NodeID, s.metrics.Registry())
	s.costs = costs.New(nil)
	hc := &http.Client{
		Transport: upstreamTransport(),
		// Credentials go only to the URL the configuration names; a redirect
		// elsewhere is an upstream error, not a request to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	keys, err := provider.NewKeys(os.Getenv, opts.ProviderKeyPattern)
	if err != nil {
		return nil, nil, err
	}
	s.set = pipeline.NewProviderSet(func(p config.Provider) (provider.Provider, error) {
		return provider.NewWith(p, keys, hc)
	})
	s.set.CanarySecret = canarySecret(opts.Cluster.Secret)
	// The file is checked in full now, so a broken one stops the start;
	// it is served only once the cluster has it (see replica.catchUp).
	if _, err := pipeline.Compile(cfg, s.set); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	s.store, err = trace.Open(filepath.Join(opts.DataDir, "traces"), trace.Limits{MaxCount: opts.TraceMaxCount, MaxBytes: opts.TraceMaxBytes})
	if err != nil {
		return nil, nil, fmt.Errorf("trace store: %w", err)
	}
	s.docs, err = retrieval.OpenStore(filepath.Join(opts.DataDir, "collections"))
	if err != nil {
		return nil, nil, err
	}
	s.documents, err = newDocSide(opts.Log, opts.NodeID, opts.DataDir, s.docs, opts.docTimings, s.metrics.Registry())
	if err != nil {
		return nil, nil, err
	}
	s.recorder = trace.NewRecorder(s.store, 4096, s.metrics.TraceDropped)
	router := pipeline.NewRouter()
	router.OnBreaker = func(model string, st pipeline.BreakerState) { s.metrics.SetBreaker(model, metrics.BreakerState(st)) }
	s.gw = &pipeline.Gateway{
		Router:        router,
		Record:        s.record,
		Node:          opts.NodeID,
		Log:           opts.Log,
		CountMessages: tokens.CountMessages,
		CountText:     tokens.Count,
		Retrieve:      s.retrieve,
	}
	s.wirePolicy()
	tokens.Count("warm") // load the tokenizer's vocabulary now, not on the first call
	return s, cfg, nil
}

func loadConfig(opts *Options) (*config.Config, error) {
	if !opts.Dev {
		if opts.ConfigFile == "" {
			if opts.Cluster.fromCluster(opts.DataDir) {
				return &config.Config{}, nil // the cluster's state brings it
			}
			return nil, errors.New("no configuration: pass --config FILE, --join to take it from a cluster, or --dev for the built-in example")
		}
		return config.LoadFile(opts.ConfigFile)
	}
	if err := devOnLoopback(opts.HTTPAddr); err != nil {
		return nil, err
	}
	cfg := config.Example()
	if opts.ConfigFile != "" {
		c, err := config.LoadFile(opts.ConfigFile)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if opts.DevKey == "" {
		opts.DevKey, _ = config.NewKey()
	}
	if !config.WellFormedKey(opts.DevKey) {
		return nil, fmt.Errorf("--dev-key %q: a virtual key starts with %q followed by 5 to 253 letters, digits, '-' or '_'", opts.DevKey, config.KeyPrefix)
	}
	if opts.DevAdminToken == "" {
		opts.DevAdminToken = "gat_" + randomHex(16)
	}
	// The dev key is registered at run time once the cluster is seeded,
	// like any key made through the API, so no file reload removes it.
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// devOnLoopback keeps dev mode, with its printed credentials, off the
// network.
func devOnLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--dev binds to loopback only; %q is not a loopback address", addr)
	}
	return nil
}

// Reload replaces the configuration. The new one is compiled in full
// before it is swapped in, so a bad file leaves the agent serving the old.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.compile(cfg)
	if err != nil {
		return err
	}
	s.gw.Swap(snap)
	return nil
}

// compile compiles cfg, or reuses the snapshot compiled last when cfg is
// the same configuration: a write through this agent compiles the result
// to check it can serve it, and the follow loop then swaps in that very
// configuration. The caller holds mu.
func (s *Server) compile(cfg *config.Config) (*pipeline.Snapshot, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if s.last.snap != nil && s.last.sum == sum {
		return s.last.snap, nil
	}
	snap, err := pipeline.Compile(cfg, s.set)
	if err != nil {
		return nil, err
	}
	s.last.sum, s.last.snap = sum, snap
	return snap, nil
}

// compiles reports whether the gateway could serve cfg, without serving it.
func (s *Server) compiles(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.compile(cfg)
	return err
}

// reloadFile reloads the configuration file on SIGHUP.
func (s *Server) reloadFile() {
	if s.opts.ConfigFile == "" {
		if s.tls == nil {
			s.log.Warn("reload asked for, but the agent has no configuration file")
		}
		return
	}
	if s.cl != nil {
		s.cl.applyFile(s.opts.ConfigFile)
		return
	}
	cfg, err := config.LoadFile(s.opts.ConfigFile)
	if err == nil {
		err = s.Reload(cfg)
	}
	if err != nil {
		s.log.Error("reload refused; still serving the previous configuration", "file", s.opts.ConfigFile, "err", err)
		return
	}
	s.log.Info("configuration reloaded", "file", s.opts.ConfigFile)
}

// Feedback counts a stored signal in the metrics and the per-release
// counters; before is the trace as it was before the signal.
func (s *Server) Feedback(before *trace.Trace, fb trace.Feedback) {
	if before.Evaluation() {
		return // not production traffic: no release is judged by it
	}
	s.metrics.Feedback(before.Feature, before.Release, fb)
	s.stats.feedback(before, fb)
	if d := negativeDelta(before, fb); d != 0 {
		s.costs.NegativeFeedback(before.Start, costs.KeyOf(before), d)
	}
}

// record observes metrics and queues the trace; it never blocks.
// Evaluation calls stay out of the production series and the cluster's
// per-release counters, which canary analysis compares.
func (s *Server) record(t *trace.Trace) {
	if t.Evaluation() {
		s.metrics.ObserveEvalTrace(t)
	} else {
		s.metrics.ObserveTrace(t)
		s.stats.record(t)
		s.costs.Add(costs.FromTrace(t))
	}
	s.recorder.Record(t)
}

func (s *Server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.recorder.Close(ctx)
	if err := s.store.Close(); err != nil {
		s.log.Warn("closing trace store", "err", err)
	}
	if err := s.docs.Close(); err != nil {
		s.log.Warn("closing document store", "err", err)
	}
}

// upstreamTransport is tuned for many concurrent calls to few hosts; its
// dialer refuses link-local and metadata addresses (provider.Transport).
func upstreamTransport() *http.Transport {
	t := provider.Transport()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 0 // the router's attempt timeout bounds it
	t.DisableCompression = true // loopback and LAN upstreams: gzip costs more CPU than it saves
	return t
}

// Handler routes every HTTP endpoint of the agent: the gateway, the admin
// API, the cluster's own API, metrics and health.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	gateway.New(gateway.Deps{Gateway: s.gw, Traces: s.store, Record: s.record, Feedback: s, NotServing: s.notServing,
		BodyTimeout: s.opts.bodyTimeout}).Route(mux)
	s.adminAPI().Route(mux)
	if s.cl != nil {
		mux.Handle(cluster.PathPrefix, s.cl.Handler())
	}
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpio.JSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.opts.NodeID})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	return mux
}

// adminAPI wires the admin API to this agent's parts.
func (s *Server) adminAPI() *admin.API {
	d := admin.Deps{
		NodeID:        s.opts.NodeID,
		Gateway:       s.gw,
		Traces:        s.store,
		Documents:     s.documents,
		Ledger:        s.ledger,
		Costs:         s.costs,
		Tokens:        []admin.LocalToken{{Name: "dev", Token: s.opts.DevAdminToken}},
		Stopping:      s.stopping,
		TraceMaxCount: s.opts.TraceMaxCount,
		StatsInterval: statsSyncInterval,
		Compiles:      s.compiles,
		NotServing:    s.notServing,
		Timeouts:      s.opts.adminTimeouts,
	}
	for i, t := range s.opts.AdminTokens {
		d.Tokens = append(d.Tokens, admin.LocalToken{Name: fmt.Sprintf("local-%d", i+1), Token: t})
	}
	if s.cl != nil {
		d.Cluster = s.cl
	}
	if s.spend != nil {
		d.Burn = s.spend.burn.perHour
	}
	return admin.New(d)
}

// readyz answers 200 once the gateway serves a configuration, with the
// state index it was compiled from, and 503 with the reason before.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if why := s.notServing(); why != "" {
		w.Header().Set("Retry-After", "1")
		httpio.JSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not serving", "reason": why, "node": s.opts.NodeID})
		return
	}
	out := map[string]any{"status": "ready", "node": s.opts.NodeID}
	if s.cl != nil {
		out["serving_index"] = s.cl.Served()
		if s.cl.stale.Load() {
			out["status"], out["reason"] = "stale", s.cl.unservedReason()
		}
	}
	httpio.JSON(w, http.StatusOK, out)
}

// notServing says why the gateway serves nothing yet, "" once it does.
func (s *Server) notServing() string {
	if s.gw.Snapshot() != nil {
		return ""
	}
	if s.cl != nil {
		if why := s.cl.unservedReason(); why != "" {
			return why
		}
	}
	return "this agent serves no configuration yet"
}

func printDevBanner(w io.Writer, base, key, token string) {
	fmt.Fprintf(w, `
Gantry agent in dev mode: one node, the built-in example configuration, and
the "sim" provider, a simulator that stands in for a model (not a model).

  gateway      %[1]s/v1
  virtual key  %[2]s
  admin token  %[3]s
  metrics      %[1]s/metrics

Call it:

  curl %[1]s/v1/chat/completions \
    -H "Authorization: Bearer %[2]s" -H "Content-Type: application/json" \
    -d '{"model":"default","messages":[{"role":"user","content":"Where is my order?"}]}'

  curl -N %[1]s/v1/chat/completions \
    -H "Authorization: Bearer %[2]s" -H "Content-Type: application/json" \
    -d '{"model":"feature/support-answer","stream":true,"metadata":{"customer":"Ana","question":"Where is my order?"},"messages":[{"role":"user","content":"It was due Monday."}]}'

  curl %[1]s/v1/features/ticket-triage/invoke \
    -H "Authorization: Bearer %[2]s" -d '{"vars":{"ticket":"My parcel never arrived"}}'

  curl -H "Authorization: Bearer %[3]s" "%[1]s/admin/v1/traces?limit=5"

Or point any OpenAI SDK at base URL %[1]s/v1 with the virtual key.

Evaluate a release on the example dataset, and compare the draft v2 with it:

  export GANTRY_AGENT=%[1]s GANTRY_TOKEN=%[3]s GANTRY_KEY=%[2]s
  gantry eval run --feature ticket-triage --release 1 --dataset ticket-triage-smoke
  gantry eval compare --feature ticket-triage --candidate 2 --dataset ticket-triage-smoke

`, base, key, token)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// both is closed once a and b are; its goroutine ends with ctx.
func both(ctx context.Context, a, b <-chan struct{}) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		for _, ch := range []<-chan struct{}{a, b} {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
		close(c)
	}()
	return c
}
