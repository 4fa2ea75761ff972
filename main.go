// Command gantry is the Gantry LLMOps platform in one binary: the agent that
// sits on the path of every model call, and the operator commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"time"

	"gantry/agent"
	"gantry/cli"
	"gantry/config"
	"gantry/console"
	"gantry/demo"
	"gantry/tlsconf"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `gantry — an LLMOps gateway and control plane

Usage:
  gantry agent [flags]     run an agent (gateway, admin API, metrics)
  gantry console [flags]   watch traces, costs and releases; promote and roll back
  gantry demo [--headless] a three-agent cluster with traffic, and the console on it
  gantry apply -f FILE     apply a whole configuration as one change
  gantry get KIND          list members, features, releases FEATURE, routes, models, budgets, keys,
                           costs (--by feature|release|model|team --window 24h)
  gantry release ...       list, diff, promote (gated by evaluation), rollback, canary
  gantry dataset ...       push -f FILE, list, show NAME, add-trace NAME TRACE_ID
  gantry eval ...          run a dataset against a release; compare a candidate with production
  gantry audit             show the audit log
  gantry members remove ID remove a dead agent from the cluster
  gantry keys ...          create, rotate, revoke virtual keys; new and hash for files
  gantry tokens ...        create, list, revoke admin tokens; generate a bootstrap token
  gantry version           print the version

Run 'gantry agent -h' for the agent's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "agent":
		err = runAgent(args)
	case "console":
		err = runConsole(args)
	case "demo":
		err = runDemo(args)
	case "apply", "get", "release", "audit", "members", "keys", "tokens", "dataset", "eval":
		// Interrupted, an evaluation run stops sending cases and keeps
		// what finished, to be resumed.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = cli.Run(ctx, cmd, args, os.Stdout)
		stop()
	case "version", "--version", "-v":
		fmt.Println("gantry", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "gantry: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "gantry:", err)
		os.Exit(1)
	}
}

// agentEnv documents the agent's environment in 'gantry agent -h'.
const agentEnv = `
Environment:
  GANTRY_CLUSTER_SECRET  the cluster secret, the same on every agent (--cluster-secret)
  GANTRY_ADMIN_TOKENS    comma-separated admin tokens this agent alone accepts, besides the
                         cluster's replicated ones: a break-glass way in to one agent. A new
                         cluster gets its first replicated token from --bootstrap-token-file.
  <NAME>_API_KEY         provider keys, named by each provider's api_key_env
  OTEL_EXPORTER_OTLP_*   OpenTelemetry export of spans and metrics; the other standard
                         OTEL_* variables apply too, and --otlp-* flags win (deploy/TELEMETRY.md)
`

func runAgent(args []string) error {
	fs := flag.NewFlagSet("gantry agent", flag.ContinueOnError)
	var o agent.Options
	fs.StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:7400", "address for HTTP: gateway /v1, admin /admin/v1, /metrics, /healthz, /readyz")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for state and traces (default $TMPDIR/gantry/<node-id>; with --dev a fresh directory each run, removed on exit)")
	fs.StringVar(&o.NodeID, "node-id", "", "name of this agent (default the host name)")
	fs.StringVar(&o.ConfigFile, "config", "", "YAML configuration file")
	fs.BoolVar(&o.Dev, "dev", false, "dev mode: the built-in example configuration with the sim provider, loopback only")
	fs.StringVar(&o.DevKey, "dev-key", "", "dev mode: use this virtual key instead of a random one")
	fs.StringVar(&o.DevAdminToken, "dev-admin-token", "", "dev mode: use this admin token instead of a random one")
	fs.StringVar(&o.Cluster.RaftAddr, "raft-addr", "", "address for Raft between agents (default "+agent.DefaultRaftAddr+"; a --dev agent picks a free port)")
	fs.IntVar(&o.Cluster.BootstrapExpect, "bootstrap-expect", 0, "form a new cluster once this many agents named in --join have met")
	join := fs.String("join", "", "comma-separated HTTP addresses (host:port) of agents to join or form a cluster with")
	fs.StringVar(&o.Cluster.Secret, "cluster-secret", os.Getenv("GANTRY_CLUSTER_SECRET"), "secret shared by the agents of a cluster (default $GANTRY_CLUSTER_SECRET)")
	fs.IntVar(&o.Cluster.Voters, "voters", 3, "how many agents vote: 3 or 5; later agents join as non-voters")
	fs.Uint64Var(&o.Cluster.SnapshotThreshold, "raft-snapshot-threshold", 8192, "snapshot the state and compact the Raft log after this many new entries, keeping as many behind it")
	fs.DurationVar(&o.Cluster.SnapshotInterval, "raft-snapshot-interval", 2*time.Minute, "how often to check the snapshot threshold")
	fs.DurationVar(&o.Cluster.CatchUpWait, "catch-up-wait", agent.DefaultCatchUpWait, "how long a starting agent waits for a leader to confirm the cluster's state (answering 503 meanwhile) before it serves what it applied before it stopped, marked stale")
	fs.StringVar(&o.TLS.Cert, "tls-cert", "", "mutual TLS: this agent's certificate (PEM), for both its HTTP server and Raft, as server and client")
	fs.StringVar(&o.TLS.Key, "tls-key", "", "mutual TLS: the certificate's private key (PEM)")
	fs.StringVar(&o.TLS.CA, "tls-ca", "", "mutual TLS: CA certificates (PEM) that every agent and HTTP client must be signed by")
	fs.IntVar(&o.TraceMaxCount, "trace-max-count", agent.DefaultTraceMaxCount, "most traces the agent keeps")
	fs.Int64Var(&o.TraceMaxBytes, "trace-max-bytes", agent.DefaultTraceMaxBytes, "most bytes of traces (JSON) the agent keeps")
	fs.StringVar(&o.ProviderKeyPattern, "provider-key-env", config.DefaultKeyEnvPattern, "regular expression a provider's api_key_env must match; the agent's own secrets (GANTRY_*) and cloud credentials are refused whatever it says")
	o.Telemetry.RegisterFlags(fs)
	o.Version = version
	tokenFile := fs.String("bootstrap-token-file", "", "file holding the first admin token of a new cluster: registered as the admin token \"bootstrap\" while the cluster has none ('gantry tokens generate > FILE' makes one)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gantry agent [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), agentEnv)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("agent: --bootstrap-token-file: %w", err)
		}
		if o.BootstrapToken = strings.TrimSpace(string(b)); len(o.BootstrapToken) < config.MinTokenLen {
			return fmt.Errorf("agent: --bootstrap-token-file %s: a token of at least %d characters is needed; 'gantry tokens generate' makes one", *tokenFile, config.MinTokenLen)
		}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("agent: unexpected argument %q", fs.Arg(0))
	}
	if *join != "" {
		o.Cluster.Join = strings.Split(*join, ",")
	}
	if (o.DevKey != "" || o.DevAdminToken != "") && !o.Dev {
		return errors.New("agent: --dev-key and --dev-admin-token need --dev")
	}
	if tok := os.Getenv("GANTRY_ADMIN_TOKENS"); tok != "" {
		o.AdminTokens = strings.Split(tok, ",")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("agent: --log-level: %w", err)
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return agent.Run(ctx, o)
}

func runDemo(args []string) error {
	fs := flag.NewFlagSet("gantry demo", flag.ContinueOnError)
	headless := fs.Bool("headless", false, "print how to reach the cluster and keep running, instead of opening the console")
	rate := fs.Float64("rate", demo.DefaultRate, "calls per second the simulated users send, across the cluster")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: gantry demo [--headless] [--rate N]

Starts a three-agent Gantry cluster on loopback with temporary data, the sim
provider (a simulator, not a model), three seeded features, documents, budgets,
a dataset and simulated users, and opens the console on it. Ctrl-C (or q in
the console) stops it and removes its data.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo: unexpected argument %q", fs.Arg(0))
	}
	if !(*rate > 0 && *rate <= demo.MaxRate) { // NaN too
		return fmt.Errorf("demo: --rate %g: want more than 0 and at most %d calls per second", *rate, demo.MaxRate)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := demo.Start(ctx, demo.Options{Exe: exe, Rate: *rate, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "demo: stopping the traffic and the agents, then removing", d.Dir)
		began := time.Now()
		d.Stop()
		sent, failed := d.Sent()
		fmt.Fprintf(os.Stderr, "demo: stopped in %v; %d calls sent, %d refused or failed\n", time.Since(began).Round(time.Millisecond), sent, failed)
	}()
	if *headless {
		printDemo(os.Stdout, d)
		return d.Wait(ctx)
	}
	// The console owns the terminal; Ctrl-C there is a key that quits it.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.Wait(waitCtx) }()
	cerr := console.Run(ctx, console.Options{FleetOptions: console.FleetOptions{Agents: d.URLs, Token: d.Token, Operator: "local:demo"}}, os.Stdin, os.Stdout)
	cancel()
	if err := <-errc; err != nil {
		return err
	}
	return cerr
}

func printDemo(w io.Writer, d *demo.Demo) {
	bin := agent.BinPath()
	fmt.Fprintf(w, "\nGantry demo: %d agents on loopback serving three features through the \"sim\"\nprovider (a simulator, not a model), with simulated users calling them.\n\n", len(d.URLs))
	for i, u := range d.URLs {
		fmt.Fprintf(w, "  agent-%d   %s\n", i+1, u)
	}
	fmt.Fprintf(w, "  data      %s (removed on exit)\n\n", d.Dir)
	fmt.Fprintf(w, "  export GANTRY_AGENT=%s\n  export GANTRY_TOKEN=%s\n  export GANTRY_KEY=%s\n\n", d.URLs[0], d.Token, d.Key)
	fmt.Fprintf(w, "  %s console                        watch it (? lists the keys)\n", bin)
	fmt.Fprintf(w, "  %s get members                    the cluster\n", bin)
	fmt.Fprintf(w, "  %s release list support-answer    a canary is live on v2\n", bin)
	fmt.Fprintf(w, "  %s get costs --by release         what a call and a validated answer cost\n", bin)
	fmt.Fprintf(w, "  %s eval compare --feature support-answer --candidate 2 --dataset support-answer-smoke\n\n", bin)
	fmt.Fprintln(w, "Ctrl-C stops the agents and removes the data.")
}

// stringList is a flag that may be repeated or hold a comma-separated list.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func runConsole(args []string) error {
	fs := flag.NewFlagSet("gantry console", flag.ContinueOnError)
	var agents stringList
	fs.Var(&agents, "agent", "agent URL, repeatable or comma-separated; the console learns the others from the cluster's members (default $GANTRY_AGENT)")
	token := fs.String("token", os.Getenv("GANTRY_TOKEN"), "admin token (default $GANTRY_TOKEN)")
	readOnly := fs.Bool("readonly", false, "observe only: promote, roll back and canary are disabled")
	bell := fs.Bool("bell", false, "ring the terminal's bell when a new critical alert appears")
	sshListen := fs.String("ssh-listen", "", "serve the console over SSH on this address instead of this terminal, e.g. 127.0.0.1:2222")
	authKeys := fs.String("authorized-keys", "", "with --ssh-listen: public keys admitted; mark a key read-only with the option or comment word "+console.ReadOnlyMarker)
	hostKey := fs.String("host-key", "", "with --ssh-listen: ed25519 host key file, created if missing (default under the user's config dir)")
	var tf tlsconf.Files
	tlsconf.ClientFlags(fs, &tf)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("console: unexpected argument %q", fs.Arg(0))
	}
	if len(agents) == 0 {
		agents.Set(os.Getenv("GANTRY_AGENT"))
	}
	if len(agents) == 0 {
		return errors.New("console: no agent: pass --agent URL or set GANTRY_AGENT")
	}
	if *token == "" {
		return errors.New("console: no admin token: pass --token T or set GANTRY_TOKEN")
	}
	creds, err := tlsconf.LoadClient(tf)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	o := console.Options{ReadOnly: *readOnly, Bell: *bell, FleetOptions: console.FleetOptions{Agents: agents, Token: *token, TLS: creds.Client()}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *sshListen == "" {
		if *authKeys != "" || *hostKey != "" {
			return errors.New("console: --authorized-keys and --host-key need --ssh-listen")
		}
		u := os.Getenv("USER")
		if cur, err := user.Current(); u == "" && err == nil {
			u = cur.Username
		}
		if u != "" {
			o.Operator = "local:" + u
		}
		return console.Run(ctx, o, os.Stdin, os.Stdout)
	}
	// Every session would fail the same way: say so once, now.
	if err := console.Check(ctx, o.FleetOptions); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	srv, err := console.NewSSHServer(console.SSHOptions{Options: o, Addr: *sshListen, AuthorizedKeys: *authKeys, HostKey: *hostKey})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	fmt.Fprintf(os.Stderr, "gantry console: serving over SSH on %s (ssh -t -p PORT HOST)\n", srv.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	return err
}
