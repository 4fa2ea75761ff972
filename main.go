// Command gantry is the Gantry LLMOps platform in one binary: the agent that
// sits on the path of every model call, and the operator commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"gantry/agent"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `gantry — an LLMOps gateway and control plane

Usage:
  gantry agent [flags]     run an agent (gateway, admin API, metrics)
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

func runAgent(args []string) error {
	fs := flag.NewFlagSet("gantry agent", flag.ContinueOnError)
	var o agent.Options
	fs.StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:7400", "address for HTTP: gateway /v1, admin /admin/v1, /metrics, /healthz, /readyz")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for state and traces (default $TMPDIR/gantry/<node-id>)")
	fs.StringVar(&o.NodeID, "node-id", "", "name of this agent (default the host name)")
	fs.StringVar(&o.ConfigFile, "config", "", "YAML configuration file")
	fs.BoolVar(&o.Dev, "dev", false, "dev mode: the built-in example configuration with the sim provider, loopback only")
	fs.StringVar(&o.DevKey, "dev-key", "", "dev mode: use this virtual key instead of a random one")
	fs.StringVar(&o.DevAdminToken, "dev-admin-token", "", "dev mode: use this admin token instead of a random one")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("agent: unexpected argument %q", fs.Arg(0))
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
