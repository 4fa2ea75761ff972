package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"gantry/agent"
	"gantry/api"
	"gantry/config"
)

const adminToken = "gat_cli-test-admin"

// startAgent runs a dev agent with its own one-node cluster and waits until
// the cluster holds its configuration and admin token.
func startAgent(t *testing.T) string {
	t.Helper()
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The example's simulators fail a few calls on purpose; these tests
	// assert what single calls and evaluation runs do, so they serve it
	// without those failures (validation failures stay: they are data).
	cfg := config.Example()
	for i, p := range cfg.Providers {
		if p.Sim != nil {
			sim := *p.Sim
			sim.ErrorRate, sim.RateLimitRate, sim.TimeoutRate, sim.CutRate = 0, 0, 0, 0
			cfg.Providers[i].Sim = &sim
		}
	}
	quiet, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "gantry.yaml")
	if err := os.WriteFile(file, quiet, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- agent.Run(ctx, agent.Options{Dev: true, DevKey: "gk_cli-test-key-0001", DevAdminToken: adminToken, HTTPAddr: "127.0.0.1:0",
			DataDir: t.TempDir(), NodeID: "cli", ConfigFile: file, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard,
			Ready: func(addr string) { ready <- addr }})
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
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not start within 30s")
	}
	c, err := newClient(base, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var toks api.TokenList
		var st api.Status
		if c.call(context.Background(), "GET", api.PathTokens, nil, &toks) == nil && len(toks.Tokens) > 0 &&
			c.call(context.Background(), "GET", api.PathStatus, nil, &st) == nil && st.ServingIndex > 0 {
			return base
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster was not seeded within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCommands(t *testing.T) {
	base := startAgent(t)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		all := append(append([]string{}, args[1:]...), "--agent", base, "--token", adminToken)
		err := Run(context.Background(), args[0], all, &out)
		return out.String(), err
	}
	cmd := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("gantry %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	contains := func(out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
	}

	contains(cmd("get", "members"), "ID", "ROLE", "cli", "leader", "true")
	// Keys and tokens for files, made without an agent.
	kn := cmd("keys", "new")
	contains(kn, "key   gk_", "hash  sha256:")
	key := strings.Fields(strings.Split(kn, "\n")[0])[1]
	contains(cmd("keys", "hash", key), config.HashKey(key))
	if tok := strings.TrimSpace(cmd("tokens", "generate")); !strings.HasPrefix(tok, config.TokenPrefix) || len(tok) < config.MinTokenLen {
		t.Fatalf("tokens generate printed %q", tok)
	}
	contains(cmd("get", "features"), "support-answer", "v1", "v2@10%", "ticket-triage")
	contains(cmd("get", "releases", "support-answer"), "v1", "production", "v2", "canary@10%")
	contains(cmd("get", "routes"), "default", "sim-large:90", "cheap")
	contains(cmd("get", "budgets"), "NAME", "SCOPE", "SPENT_USD", "HELD_USD", "GRANTS")
	contains(cmd("release", "diff", "support-answer", "1", "v2"), "3 fields changed", "system", "- You are a concise", "+ You are a concise")

	contains(cmd("release", "promote", "support-answer", "2", "--from", "1", "--reason", "canary healthy"), "production v1 -> v2")
	contains(cmd("release", "rollback", "support-answer"), "production v2 -> v1")
	contains(cmd("release", "canary", "support-answer", "2", "--weight", "35"), "v2", "35%")
	contains(cmd("get", "features", "--consistent"), "v2@35%")
	// The sequence that once promoted a canary: a rollback during a canary
	// ends the canary and leaves production.
	contains(cmd("release", "rollback", "support-answer"), "rollback: canary v2 ended, production unchanged")
	contains(cmd("release", "canary", "support-answer", "2", "--weight", "20"), "canary v0 -> v2 at 20%")
	contains(cmd("release", "canary", "support-answer", "--abort", "--from", "2"), "abort: canary v2 ended")
	if _, err := run("release", "canary", "support-answer", "--abort"); err == nil || !strings.Contains(err.Error(), "no live canary") {
		t.Fatalf("abort without a canary: %v, want a refusal naming the missing canary", err)
	}
	if _, err := run("release", "rollback", "support-answer"); err == nil || !strings.Contains(err.Error(), "no earlier production release") {
		t.Fatalf("rollback with nothing to undo: %v, want a refusal saying so", err)
	}

	out := cmd("keys", "create", "team-b", "--team", "b", "--features", "ticket-triage")
	contains(out, "shown only this once", "gk_")
	contains(cmd("keys", "rotate", "team-b"), "gk_")
	contains(cmd("keys", "revoke", "team-b"), "team-b revoked")
	var keys api.KeyList
	if err := json.Unmarshal([]byte(cmd("get", "keys", "-o", "json")), &keys); err != nil {
		t.Fatalf("get keys -o json: %v", err)
	}
	if len(keys.Keys) != 2 || keys.Keys[1].Name != "team-b" || !keys.Keys[1].Revoked || keys.Keys[1].Features[0] != "ticket-triage" {
		t.Fatalf("keys %+v", keys.Keys)
	}

	contains(cmd("tokens", "create", "alice", "--role", "operator"), "alice (operator)", "gat_")
	contains(cmd("tokens", "list"), "alice", "operator", "dev", "admin")

	audit := cmd("audit", "--limit", "5")
	contains(audit, "SEQ", "token:dev", "put_token", "token/alice")
	if n := strings.Count(strings.TrimSpace(audit), "\n"); n != 5 {
		t.Fatalf("audit --limit 5 printed %d entries:\n%s", n, audit)
	}

	// apply prints the diff and applies it as one change; applying it
	// again changes nothing.
	var cfg config.Config
	c, err := newClient(base, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.call(context.Background(), "GET", api.PathConfig, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[1]
	r.Name = "cheap2"
	cfg.Routes = append(cfg.Routes, r)
	cfg.Budgets = append(cfg.Budgets, config.Budget{Name: "daily", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 25})
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "gantry.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	contains(cmd("apply", "-f", file, "--dry-run"), "+ routes/cheap2", "+ budgets/daily", "dry run: nothing applied")
	contains(cmd("get", "routes"), "cheap")
	if strings.Contains(cmd("get", "routes"), "cheap2") {
		t.Fatal("a dry run applied the route")
	}
	contains(cmd("apply", "-f", file), "+ routes/cheap2", "+ budgets/daily", "applied as one change at index")
	contains(cmd("get", "routes"), "cheap2")
	contains(cmd("get", "budgets"), "daily", "global", "25.00", "block")
	contains(cmd("apply", "-f", file), "no changes")
}

func TestCommandErrors(t *testing.T) {
	base := startAgent(t)
	runWith := func(token string, args ...string) (string, error) {
		var out bytes.Buffer
		all := append(append([]string{}, args[1:]...), "--agent", base, "--token", token)
		err := Run(context.Background(), args[0], all, &out)
		return out.String(), err
	}
	usage := [][]string{
		{"get"},
		{"get", "releases"},
		{"release", "promote", "support-answer"},
		{"release", "canary", "support-answer", "2"},
		{"release", "diff", "support-answer", "1", "x"},
		{"apply"},
		{"keys", "create"},
		{"members", "kick", "a"},
		{"get", "features", "-o", "xml"},
	}
	for _, args := range usage {
		if _, err := runWith(adminToken, args...); !errors.Is(err, ErrUsage) {
			t.Fatalf("gantry %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	apiCases := []struct {
		token string
		args  []string
		code  string
	}{
		{"gat_wrong", []string{"get", "features"}, api.CodeUnauthorized},
		{adminToken, []string{"release", "promote", "support-answer", "2", "--from", "7"}, api.CodeConflict},
		{adminToken, []string{"get", "releases", "nope"}, api.CodeNotFound},
		{adminToken, []string{"keys", "rotate", "nope"}, api.CodeNotFound},
		{adminToken, []string{"members", "remove", "nope"}, api.CodeNotFound},
	}
	for _, tc := range apiCases {
		_, err := runWith(tc.token, tc.args...)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tc.code {
			t.Fatalf("gantry %s: %v, want the agent's %s error", strings.Join(tc.args, " "), err, tc.code)
		}
	}
	file := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(file, []byte("models:\n  - name: m\n    provider: nope\n"), 0o600)
	if _, err := runWith(adminToken, "apply", "-f", file); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Fatalf("apply of an invalid file: %v, want an error naming the file", err)
	}
}

func TestGetModelsFlagsUnknownPrices(t *testing.T) {
	base := startAgent(t)
	c, err := newClient(base, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	var cfg config.Config
	if err := c.call(context.Background(), "GET", api.PathConfig, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	// A model from the price table, a self-hosted one, and one priced
	// nowhere.
	cfg.Providers = append(cfg.Providers, config.Provider{Name: "openai", Kind: config.KindOpenAI}, config.Provider{Name: "local", Kind: config.KindOllama})
	cfg.Models = append(cfg.Models, config.Model{Name: "mini", Provider: "openai", Upstream: "gpt-4o-mini-2024-07-18"},
		config.Model{Name: "llama", Provider: "local", Upstream: "llama3.1:8b"}, config.Model{Name: "mystery", Provider: "sim"})
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "gantry.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := RunWith(context.Background(), args[0], append(args[1:], "--agent", base, "--token", adminToken), &out, &errOut); err != nil {
			t.Fatalf("gantry %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String(), errOut.String()
	}
	run("apply", "-f", file)
	out, warn := run("get", "models")
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		rows[f[0]] = f
	}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"sim-large", []string{"sim-large", "sim", "sim", "sim-large", "$2.5", "$10", "$1.25", "-", "config"}},
		{"mini", []string{"mini", "openai", "openai", "gpt-4o-mini-2024-07-18", "$0.15", "$0.6", "$0.075", "-", "table", "v1", "2025-10-01", "(gpt-4o-mini)"}},
		{"llama", []string{"llama", "local", "ollama", "llama3.1:8b", "$0", "$0", "-", "-", "self-hosted"}},
		{"mystery", []string{"mystery", "sim", "sim", "mystery", "UNKNOWN", "PRICE", "-", "-", "-", "unknown"}},
	} {
		if got := strings.Join(rows[tc.name], " "); got != strings.Join(tc.want, " ") {
			t.Fatalf("row %s:\n got %s\nwant %s\n%s", tc.name, got, strings.Join(tc.want, " "), out)
		}
	}
	if !strings.Contains(warn, "no known price for mystery:") {
		t.Fatalf("no warning about the unknown price: %q", warn)
	}
	var js api.Models
	out, _ = run("get", "models", "-o", "json")
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatal(err)
	}
	for _, m := range js.Models {
		if m.Name == "mystery" && (m.PriceKnown() || m.PriceSource != "unknown") || m.Name == "mini" && (m.PriceSource != "table" || m.PriceEntry != "gpt-4o-mini") {
			t.Fatalf("json: %+v", m)
		}
	}
}
