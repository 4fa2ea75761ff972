package tui

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// The -update flag rewrites the golden files under testdata/. teatest's
// golden package defines a flag of that name already; share it.
var _ = func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
	return true
}()

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// golden compares got with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if updating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the golden file; got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// checkScreen asserts what every screen must satisfy: exactly h lines, none
// wider than w, no escape codes under the ASCII profile.
func checkScreen(t *testing.T, s string, w, h int) {
	t.Helper()
	lines := strings.Split(s, "\n")
	if len(lines) != h {
		t.Fatalf("screen has %d lines, want %d:\n%s", len(lines), h, s)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Fatalf("line %d is %d wide, want <= %d: %q", i+1, n, w, l)
		}
	}
	if strings.Contains(s, "\x1b") {
		t.Fatalf("screen has escape codes under the ASCII profile: %q", s)
	}
}

func TestGoldenViews(t *testing.T) {
	keys := DefaultKeyMap()
	cases := []struct {
		name     string
		readOnly bool
		setup    func(t *testing.T, a *App)
	}{
		{"overview", false, func(t *testing.T, a *App) {}},
		{"traces", false, func(t *testing.T, a *App) { press(t, a, keys.Traces) }},
		{"traces-filtered-paused", false, func(t *testing.T, a *App) {
			press(t, a, keys.Traces)
			press(t, a, keys.Filter)
			typeText(t, a, "feature:support status:error")
			press(t, a, keys.Open) // enter leaves the filter line
			press(t, a, keys.Pause)
			send(t, a, TracesMsg(summaries(60, clock)[40:]))
		}},
		{"trace", false, func(t *testing.T, a *App) {
			press(t, a, keys.Traces)
			press(t, a, keys.Open)
			send(t, a, TraceMsg{Trace: fixtureTrace()})
		}},
		{"trace-unknown-price", false, func(t *testing.T, a *App) {
			press(t, a, keys.Traces)
			press(t, a, keys.Open)
			tr := fixtureTrace()
			tr.Model, tr.CostUSD, tr.PriceSource, tr.PriceUnknown = "llama-local", 0, "unknown", true
			send(t, a, TraceMsg{Trace: tr})
		}},
		{"costs", false, func(t *testing.T, a *App) { press(t, a, keys.Costs) }},
		{"costs-good-answer", false, func(t *testing.T, a *App) {
			press(t, a, keys.Costs)
			for range spendDims {
				press(t, a, keys.NextTab)
			}
			per := func(v float64) *float64 { return &v }
			send(t, a, CostsMsg{
				{Group: "support-answer@v3", Calls: 1204, CostUSD: 1.806, CostPerCallUSD: per(0.0015), CostPerValidatedUSD: per(0.00156),
					CostPerGoodUSD: per(0.00161), CostPerPassingCaseUSD: per(0.0021), Answered: 1204, Validated: 1158, CascadeCalls: 1204, Escalated: 301, EscalationRate: per(0.25)},
				{Group: "support-answer@v2", Calls: 3890, CostUSD: 11.67, CostPerCallUSD: per(0.003), CostPerValidatedUSD: per(0.00312), CostPerGoodUSD: per(0.0033), Answered: 3890, Validated: 3740},
				{Group: "ticket-triage@v1", Calls: 812, CostUSD: 0.08, CostPerCallUSD: per(0.0001)},
			})
		}},
		{"releases", false, func(t *testing.T, a *App) { press(t, a, keys.Releases) }},
		{"releases-diff", false, func(t *testing.T, a *App) {
			press(t, a, keys.Releases)
			press(t, a, keys.Down)
			press(t, a, keys.Diff) // selected v3 against production v2
			send(t, a, DiffMsg{Request: DiffRequest{Feature: "support-answer", A: 2, B: 3}, Diff: fixtureDiff()})
		}},
		{"confirm-promote", false, func(t *testing.T, a *App) {
			press(t, a, keys.Releases)
			press(t, a, keys.Down)
			press(t, a, keys.Promote)
			send(t, a, DiffMsg{Request: DiffRequest{Feature: "support-answer", A: 2, B: 3}, Diff: fixtureDiff()})
		}},
		{"confirm-canary", false, func(t *testing.T, a *App) {
			press(t, a, keys.Releases)
			press(t, a, keys.Down)
			press(t, a, keys.Weight)
		}},
		{"cluster", false, func(t *testing.T, a *App) { press(t, a, keys.Cluster) }},
		{"log", false, func(t *testing.T, a *App) {
			send(t, a, ActionResultMsg{Request: ActionRequest{Kind: KindRollback, Feature: "support-answer", From: 3, To: 2}, Result: "production -> v2 at index 1043"})
			press(t, a, keys.Log)
		}},
		{"help-releases-readonly", true, func(t *testing.T, a *App) {
			press(t, a, keys.Releases)
			press(t, a, keys.Help)
		}},
		{"command-completion", false, func(t *testing.T, a *App) {
			press(t, a, keys.Command)
			typeText(t, a, "c")
		}},
	}
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		for _, c := range cases {
			name := c.name + "-" + itoa(size.w) + "x" + itoa(size.h)
			t.Run(name, func(t *testing.T) {
				a := loaded(t, c.readOnly, size.w, size.h)
				c.setup(t, a)
				got := a.View()
				checkScreen(t, got, size.w, size.h)
				golden(t, name, got)
			})
		}
	}
}

func TestGoldenTooSmall(t *testing.T) {
	a := loaded(t, false, 50, 10)
	got := a.View()
	if !strings.Contains(got, "too small") {
		t.Fatalf("a 50x10 screen does not say it is too small:\n%s", got)
	}
	golden(t, "too-small-50x10", got)
}

func itoa(n int) string { return strconv.Itoa(n) }
