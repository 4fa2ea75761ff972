package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gantry/agent"
	"gantry/api"
	"gantry/tlsconf"
	"gantry/tlsconf/tlstest"
)

// startTLSAgent runs a dev agent with mutual TLS and returns its host:port
// and an operator's certificate, once the cluster holds its admin token.
func startTLSAgent(t *testing.T) (string, tlsconf.Files) {
	t.Helper()
	ca := tlstest.NewCA(t, "gantry test CA")
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{Dev: true, DevKey: "gk_cli-test-key-0001", DevAdminToken: adminToken, HTTPAddr: "127.0.0.1:0",
			DataDir: t.TempDir(), NodeID: "cli", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard,
			TLS: ca.Issue(t, "cli"), Ready: func(addr string) { ready <- addr }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent did not stop within 30s")
		}
	})
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not start within 30s")
	}
	operator := ca.Issue(t, "operator")
	creds, err := tlsconf.LoadClient(operator)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newTLSClient(addr, adminToken, creds.Client())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var toks api.TokenList
		if c.call(context.Background(), "GET", api.PathTokens, nil, &toks) == nil && len(toks.Tokens) > 0 {
			return addr, operator
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster was not seeded within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCommandsOverMutualTLS(t *testing.T) {
	addr, op := startTLSAgent(t)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(context.Background(), args[0], append(args[1:], "--agent", addr, "--token", adminToken), &out)
		return out.String(), err
	}
	// A bare host:port with the flags means https.
	out, err := run("get", "members", "--tls-cert", op.Cert, "--tls-key", op.Key, "--tls-ca", op.CA)
	if err != nil || !strings.Contains(out, "https://"+addr) {
		t.Fatalf("get members with --tls-*: %v\n%s", err, out)
	}
	// The environment variables stand in for the flags, as GANTRY_AGENT
	// and GANTRY_TOKEN do.
	t.Setenv("GANTRY_TLS_CERT", op.Cert)
	t.Setenv("GANTRY_TLS_KEY", op.Key)
	t.Setenv("GANTRY_TLS_CA", op.CA)
	if out, err := run("keys", "create", "over-tls", "--team", "a"); err != nil || !strings.Contains(out, "gk_") {
		t.Fatalf("keys create with GANTRY_TLS_*: %v\n%s", err, out)
	}
	t.Setenv("GANTRY_TLS_KEY", "")
	if _, err := run("get", "keys"); err == nil || !strings.Contains(err.Error(), "needs --tls-key") {
		t.Fatalf("a certificate without its key: %v; want an error naming --tls-key", err)
	}
	t.Setenv("GANTRY_TLS_CERT", "")
	// Without a certificate the agent refuses the connection.
	if _, err := run("get", "keys"); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("no client certificate: %v; want the connection refused", err)
	}
}
