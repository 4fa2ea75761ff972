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
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
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
	"gantry/pipeline/cache"
	"gantry/pipeline/costs"
	"gantry/pipeline/metrics"
	"gantry/pipeline/provider"
	"gantry/pipeline/retrieval"
	"gantry/pipeline/tokens"
	"gantry/pipeline/trace"
	"gantry/telemetry"
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
	// Telemetry exports calls over OTLP; with no endpoint here or in the
	// OTEL_* environment nothing is exported.
	Telemetry telemetry.Config
	// Version is the build's version, for gantry_build_info and the
	// exported service.version.
	Version string

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
	gwLedger *ledgerSwitch // what the gateway reserves with
	// The gateway's caches, swept of expired entries by runReaper.
	cache, embedCache *cache.Cache
	spend             *spendSide    // nil unless budgets are granted by the cluster
	stats             *statsSide    // per-release counters for the cluster
	costs             *costs.Table  // cost per good answer of this agent's calls
	cl                *replica      // nil until Run opens the cluster node
	stopping          chan struct{} // closed when the HTTP server starts shutting down
	alerts            *admin.AlertBook

	tls  *tlsconf.Creds      // nil: plain HTTP and Raft
	otlp *telemetry.Exporter // nil exports nothing
	// freshDir: the data directory was made for this run and goes with it.
	freshDir bool

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
	// The alert loop reads the cluster node: it ends before the node closes.
	alertsDone := make(chan struct{})
	go func() {
		defer close(alertsDone)
		s.adminAPI().RunAlerts(reapCtx)
	}()
	defer func() {
		stopReaper()
		<-alertsDone
	}()
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
				printDevBanner(opts.Out, s.scheme()+"://"+addr, opts.DevKey, opts.DevAdminToken, opts.DataDir, s.freshDir)
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
	s.log.Info(fmt.Sprintf("stopping: calls in flight finish (at most %v), then the last spend and counters go to the cluster and leadership is handed over (at most %v)", shutdownWait, stopBudget))
	// Calls in flight finish first, so the spend they settle is in the
	// last batch the agent commits before it leaves the cluster.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown did not finish cleanly", "err", err)
	}
	// The cluster and the collector are told the last of it side by side,
	// so exporting adds nothing to the time a stop takes.
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopBudget)
		defer cancel()
		if err := s.otlp.Shutdown(ctx); err != nil {
			s.log.Warn("OTLP: the last spans and metrics were not all sent", "err", err)
		}
	})
	if s.cl != nil {
		s.cl.stop()
	}
	wg.Wait()
	return nil
}

// shutdownWait bounds how long a stopping agent lets calls in flight
// finish.
const shutdownWait = 15 * time.Second

// build loads the configuration and assembles the pipeline, trace store and
// metrics, filling defaults into opts.
func build(opts *Options) (_ *Server, _ *config.Config, err error) {
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
	// A dev agent without --data-dir starts from the example each run: a
	// state kept from an earlier run would serve an edited example stale.
	fresh := false
	if opts.DataDir == "" && opts.Dev {
		dir, err := os.MkdirTemp("", "gantry-dev-")
		if err != nil {
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
		opts.DataDir, fresh = dir, true
		defer func() {
			if err != nil {
				os.RemoveAll(dir)
			}
		}()
	}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(os.TempDir(), "gantry", opts.NodeID)
	}
	// The trace store is most of an agent's live heap under load (about
	// 17 MB at its bounds); README "Where the memory goes" accounts for
	// the rest.
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
	s := &Server{opts: *opts, log: opts.Log, metrics: metrics.New(), stopping: make(chan struct{}), freshDir: fresh}
	s.metrics.SetBuildInfo(opts.Version)
	s.stats = newStatsSide(opts.NodeID, s.metrics.Registry())
	s.costs = costs.New(nil)
	s.alerts = admin.NewAlertBook(s.metrics.Registry())
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
	s.set.KeyEnv = keys.Check
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
	if err := errors.Join(s.metrics.WatchStore(s.store), s.metrics.WatchRecorder(s.recorder)); err != nil {
		return nil, nil, fmt.Errorf("trace store metrics: %w", err)
	}
	tc := opts.Telemetry
	tc.Node, tc.Version, tc.Log = opts.NodeID, opts.Version, opts.Log
	if s.otlp, err = telemetry.New(context.Background(), tc, s.metrics.Registry()); err != nil {
		return nil, nil, fmt.Errorf("telemetry: %w", err)
	}
	router := pipeline.NewRouter()
	router.OnBreaker = func(model string, st pipeline.BreakerState) { s.metrics.SetBreaker(model, metrics.BreakerState(st)) }
	d := s.wirePolicy()
	d.Router, d.Record, d.Node, d.Log = router, s.record, opts.NodeID, opts.Log
	d.Counter, d.Retriever = tokens.Counter{}, s.retrieve
	s.gw = pipeline.NewGateway(d)
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
		s.otlp.Record(t)
	}
	s.recorder.Record(t)
}

func (s *Server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.otlp.Shutdown(ctx) // done already unless the agent never served
	s.recorder.Close(ctx)
	if err := s.store.Close(); err != nil {
		s.log.Warn("closing trace store", "err", err)
	}
	if err := s.docs.Close(); err != nil {
		s.log.Warn("closing document store", "err", err)
	}
	if s.freshDir {
		if err := os.RemoveAll(s.opts.DataDir); err != nil {
			s.log.Warn("removing this run's data directory", "dir", s.opts.DataDir, "err", err)
		}
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
	timeout := s.opts.bodyTimeout
	if timeout <= 0 {
		timeout = gateway.DefaultBodyTimeout
	}
	return httpio.BodyDeadline(mux, timeout)
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
		AlertBook:     s.alerts,
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

// printDevBanner tells a newcomer how to reach the agent in one screen
// (under 24 lines): the exports every client command reads, a call, and
// the console.
func printDevBanner(w io.Writer, base, key, token, dataDir string, fresh bool) {
	state := dataDir + " (kept; delete it to start afresh)"
	if fresh {
		state = dataDir + " (fresh this run, removed on exit)"
	}
	bin := BinPath()
	fmt.Fprintf(w, `
Gantry agent in dev mode: one node serving the built-in example through the
"sim" provider, a simulator that stands in for a model (not a model).

  gateway   %[1]s/v1   (any OpenAI SDK: this base URL and the key)
  metrics   %[1]s/metrics
  state     %[4]s

  export GANTRY_AGENT=%[1]s
  export GANTRY_KEY=%[2]s
  export GANTRY_TOKEN=%[3]s

  curl $GANTRY_AGENT/v1/features/ticket-triage/invoke -H "Authorization: Bearer $GANTRY_KEY" \
    -d '{"vars":{"ticket":"My parcel never arrived"}}'

  %[5]s console     traces, costs, releases, budgets (? lists the keys)
  %[5]s eval compare --feature ticket-triage --candidate 2 --dataset ticket-triage-smoke

Ctrl-C stops the agent.
`, base, key, token, state, bin)
}

// BinPath is how the user runs this binary from where they are: its name
// when it is on PATH, else its path, relative when under the working
// directory (bin/gantry after make).
func BinPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "gantry"
	}
	if onPath, err := exec.LookPath("gantry"); err == nil && sameFile(onPath, exe) {
		return "gantry"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
			if !strings.Contains(rel, string(filepath.Separator)) {
				rel = "." + string(filepath.Separator) + rel
			}
			return rel
		}
	}
	return exe
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
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
