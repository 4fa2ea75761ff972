package tui

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"gantry/api"
	"gantry/config"
	"gantry/pipeline/trace"
)

// clock is the fixed time every test renders at.
var clock = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

// newTestApp is an App with the ASCII profile (what NO_COLOR users get),
// a fixed clock and UTC times.
func newTestApp(t testing.TB, readOnly bool) *App {
	t.Helper()
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	r.SetHasDarkBackground(true)
	return New(Options{
		ReadOnly: readOnly,
		Renderer: r,
		Now:      func() time.Time { return clock },
		Location: time.UTC,
		Context:  "http://127.0.0.1:7400",
		// Apply feed rows as they come, so tests see them at once.
		FeedBatch: -1,
	})
}

// keyMsg turns a key name as the key map spells it into the message the
// terminal would send.
func keyMsg(t testing.TB, name string) tea.KeyMsg {
	t.Helper()
	switch name {
	case " ":
		return tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}
	}
	for k := tea.KeyType(-200); k < 200; k++ {
		if k != tea.KeyRunes && k.String() == name {
			return tea.KeyMsg{Type: k}
		}
	}
	if r := []rune(name); len(r) == 1 {
		return tea.KeyMsg{Type: tea.KeyRunes, Runes: r}
	}
	t.Fatalf("no key named %q", name)
	return tea.KeyMsg{}
}

// press presses the first key of a binding and runs what follows,
// returning the messages that leave the TUI.
func press(t testing.TB, a *App, b key.Binding) []tea.Msg {
	t.Helper()
	if len(b.Keys()) == 0 {
		t.Fatalf("binding %q has no keys", b.Help().Desc)
	}
	return send(t, a, keyMsg(t, b.Keys()[0]))
}

// typeText types runes one by one.
func typeText(t testing.TB, a *App, s string) {
	t.Helper()
	for _, r := range s {
		if r == ' ' {
			send(t, a, tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
			continue
		}
		send(t, a, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

// send delivers msg and runs the commands it returns the way a program
// would: internal messages go back into the App, requests for the console
// program are returned.
func send(t testing.TB, a *App, msg tea.Msg) []tea.Msg {
	t.Helper()
	_, cmd := a.Update(msg)
	return run(t, a, cmd)
}

func run(t testing.TB, a *App, cmd tea.Cmd) []tea.Msg {
	t.Helper()
	if cmd == nil {
		return nil
	}
	var out []tea.Msg
	switch m := cmd().(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range m {
			out = append(out, run(t, a, c)...)
		}
	case openTraceMsg, statusMsg, confirmMsg, filterTracesMsg, dialogClosedMsg, linkMsg, rollbackFeatureMsg:
		out = append(out, send(t, a, m)...)
	default:
		out = append(out, m)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func summaries(n int, start time.Time) []trace.Summary {
	features := []string{"support-answer", "summarize", "classify-ticket"}
	models := []string{"gpt-4o-mini", "claude-haiku", "sim-small"}
	out := make([]trace.Summary, n)
	for i := range out {
		f := features[i%len(features)]
		s := trace.Summary{
			ID:           fmt.Sprintf("%032x", 0xabc000+i),
			Start:        start.Add(time.Duration(i) * 700 * time.Millisecond),
			Duration:     trace.Millis(200 + (i*137)%2400),
			Node:         fmt.Sprintf("agent-%d", 1+i%3),
			Feature:      f,
			Release:      config.ReleaseID(f, 1+i%3),
			Model:        models[i%len(models)],
			Status:       "ok",
			HTTPStatus:   200,
			InputTokens:  300 + i*7,
			OutputTokens: 80 + i*3,
			CostUSD:      0.0004 * float64(1+i%5),
		}
		if i%7 == 3 {
			s.Status, s.HTTPStatus, s.ErrorCode = "error", 429, "rate_limited"
		}
		if i%5 == 1 {
			s.Validation = 1
		}
		if i%11 == 6 { // a model with no price anywhere
			s.Model, s.CostUSD, s.PriceUnknown = "llama-local", 0, true
		}
		switch i % 4 {
		case 1:
			s.Feedback = "down"
		case 2:
			s.Feedback = "up"
		}
		out[i] = s
	}
	return out
}

func fixtureTrace() *trace.Trace {
	t0 := clock.Add(-90 * time.Second)
	span := func(name string, from, d time.Duration, err string) trace.Span {
		return trace.Span{Name: name, Offset: trace.Ms(from), Duration: trace.Ms(d), Error: err}
	}
	return &trace.Trace{
		ID: "4bf92f3577b34da6a3ce929d0e0e4736", RequestID: "req-1", Start: t0, Duration: trace.Ms(2300 * time.Millisecond),
		Node: "agent-2", Entry: "invoke", Feature: "support-answer", Release: "support-answer@v3",
		ReleaseHash: "sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0",
		Label:       "canary", User: "u-42", Key: "web", Team: "support",
		Requested: "feature/support-answer", Route: "default", Model: "claude-haiku", Provider: "anthropic",
		Status: "ok", HTTPStatus: 200, InputTokens: 812, OutputTokens: 164, CostUSD: 0.0031, PriceSource: "table v1 2025-10-01 (claude-3-5-haiku)",
		Upstream: trace.Ms(2100 * time.Millisecond), Fallbacks: 1,
		Attempts: []trace.Attempt{
			{Model: "gpt-4o-mini", Provider: "openai", Offset: trace.Ms(150 * time.Millisecond), Duration: trace.Ms(1200 * time.Millisecond), Status: "timeout", Error: "upstream timed out after 1.2s", Backoff: trace.Ms(100 * time.Millisecond)},
			{Model: "claude-haiku", Provider: "anthropic", Offset: trace.Ms(1450 * time.Millisecond), Duration: trace.Ms(800 * time.Millisecond), Status: "ok"},
		},
		Spans: []trace.Span{
			span("authenticate", 0, 2*time.Millisecond, ""),
			span("resolve", 2*time.Millisecond, time.Millisecond, ""),
			span("policy", 3*time.Millisecond, 20*time.Millisecond, ""),
			span("context", 23*time.Millisecond, 110*time.Millisecond, ""),
			span("prompt", 133*time.Millisecond, 15*time.Millisecond, ""),
			span("route", 148*time.Millisecond, 2102*time.Millisecond, ""),
			span("validate", 2250*time.Millisecond, 40*time.Millisecond, "$.answer: too long"),
			span("record", 2290*time.Millisecond, 10*time.Millisecond, ""),
		},
		Validation: []string{"$.answer: string longer than 600 characters"},
		Policy:     []trace.Decision{{Rule: "pii.email", Field: "messages[1].content", Start: 12, End: 30, Action: "redact"}},
		Sources: []trace.Source{
			{Document: "kb/refunds.md", Chunk: "3", Score: 0.82, Index: "support-kb"},
			{Document: "kb/shipping.md", Chunk: "11", Score: 0.61, Index: "support-kb"},
		},
		Input:    "Customer: I want a refund for order [REDACTED:order] sent to [REDACTED:email]\x1b[31m.",
		Output:   `{"answer":"Refunds are possible within 30 days of delivery. I have opened a request for you."}`,
		Feedback: []trace.Feedback{{Time: t0.Add(40 * time.Second), Thumbs: "down", Comment: "refund window is 14 days"}},
	}
}

func fixtureFeatures() []api.Feature {
	rel := func(f string, v int, by, note string, age time.Duration, system string) api.Release {
		spec := config.Release{Version: v, System: system, Route: "default"}
		return api.Release{Version: v, ID: config.ReleaseID(f, v), Hash: spec.Hash(), Created: clock.Add(-age), CreatedBy: by, Note: note, Spec: &spec}
	}
	fs := []api.Feature{
		{
			Name:   "support-answer",
			Labels: config.Labels{Production: 2, Canary: 3, CanaryWeight: 10},
			Releases: []api.Release{
				rel("support-answer", 1, "alice", "first", 30*24*time.Hour, "Answer support questions."),
				rel("support-answer", 2, "alice", "shorter answers", 6*24*time.Hour, "Answer briefly."),
				rel("support-answer", 3, "bob", "new model", 3*time.Hour, "Answer briefly and cite."),
			},
			History: []api.LabelChange{
				{Time: clock.Add(-6 * 24 * time.Hour), Actor: "alice", Action: "promote", Label: "production", From: 1, To: 2, Reason: "eval +4%"},
				{Time: clock.Add(-2 * time.Hour), Actor: "bob", Action: "canary", Label: "canary", From: 0, To: 3, Weight: 10, Reason: "try haiku"},
			},
		},
		{
			Name:     "summarize",
			Labels:   config.Labels{Production: 1},
			Releases: []api.Release{rel("summarize", 1, "carol", "", 12*24*time.Hour, "Summarize.")},
		},
	}
	for i := range fs {
		withRollback(&fs[i])
	}
	return fs
}

// withRollback fills in what a rollback would do, as the agent does.
func withRollback(f *api.Feature) {
	cf := config.Feature{Name: f.Name, Labels: f.Labels}
	for _, r := range f.Releases {
		cf.Releases = append(cf.Releases, config.Release{Version: r.Version})
	}
	f.Rollback, f.RollbackRefused = nil, ""
	if s, err := config.PlanMove(cf, f.History, config.LabelMove{Action: config.MoveRollback}); err == nil {
		f.Rollback = &api.LabelStep{Label: s.Label, From: s.From, To: s.To}
	} else {
		f.RollbackRefused = err.Error()
	}
}

func fixtureOverview() api.Overview {
	st := func(req, errs, val, up, down int64, p50, p95 float64, cost float64) api.Stats {
		return api.Stats{Requests: req, Errors: errs, ValidationFailures: val, FeedbackUp: up, FeedbackDown: down,
			P50: trace.Millis(p50), P95: trace.Millis(p95), CostUSD: cost, InputTokens: req * 400, OutputTokens: req * 90}
	}
	return api.Overview{
		Node: "agent-1", Time: clock.Add(-2 * time.Second), WindowSeconds: 300,
		RequestsPerSec: 41.7, ErrorRate: 0.021, P50: 410, P95: 1920, CostPerMinute: 0.42,
		CostSeries: []float64{0.2, 0.25, 0.3, 0.28, 0.35, 0.4, 0.38, 0.45, 0.5, 0.42, 0.61, 0.42},
		Features: []api.FeatureStats{
			{Feature: "summarize", Stats: st(3100, 12, 0, 40, 3, 380, 900, 1.24)},
			{Feature: "support-answer", Stats: st(9200, 230, 310, 120, 95, 520, 2400, 3.9)},
		},
		Releases: []api.ReleaseStats{
			{Feature: "support-answer", Release: "support-answer@v2", Version: 2, Label: "production", Stats: st(8300, 120, 40, 115, 20, 500, 1900, 3.3)},
			{Feature: "support-answer", Release: "support-answer@v3", Version: 3, Label: "canary", Stats: st(900, 110, 270, 5, 75, 700, 4100, 0.6)},
			{Feature: "summarize", Release: "summarize@v1", Version: 1, Label: "production", Stats: st(3100, 12, 0, 40, 3, 380, 900, 1.24)},
		},
	}
}

func fixtureMembers() api.Members {
	return api.Members{Leader: "agent-1", Term: 7, Members: []api.Member{
		{ID: "agent-2", RaftAddr: "10.0.0.2:7401", HTTPAddr: "10.0.0.2:7400", Role: "follower", Voter: true, Healthy: true, LastContact: clock.Add(-40 * time.Millisecond), LastIndex: 1042, AppliedIndex: 1042},
		{ID: "agent-1", RaftAddr: "10.0.0.1:7401", HTTPAddr: "10.0.0.1:7400", Role: "leader", Voter: true, Healthy: true, LastIndex: 1042, AppliedIndex: 1042},
		{ID: "agent-3", RaftAddr: "10.0.0.3:7401", HTTPAddr: "10.0.0.3:7400", Role: "follower", Voter: true, Healthy: false, LastContact: clock.Add(-95 * time.Second), LastIndex: 1017, AppliedIndex: 1017, Error: "heartbeat timeout"},
		{ID: "agent-4", RaftAddr: "10.0.0.4:7401", HTTPAddr: "10.0.0.4:7400", Role: "follower", Voter: false, Healthy: true, LastContact: clock.Add(-120 * time.Millisecond), LastIndex: 1042, AppliedIndex: 1041},
	}}
}

func fixtureBudgets() api.Budgets {
	return api.Budgets{Time: clock.Add(-5 * time.Second), WindowSeconds: 3600,
		Budgets: []api.Budget{
			{Name: "global-month", Scope: "global", Period: "month", LimitUSD: 5000, SpentUSD: 2150, ReservedUSD: 3.2, BurnPerHour: 18.5, PeriodEnd: clock.Add(4 * 24 * time.Hour), CostSeries: []float64{0.3, 0.3, 0.35, 0.4, 0.3, 0.32, 0.31, 0.3}},
			{Name: "support-day", Scope: "team", Match: "support", Period: "day", LimitUSD: 100, SpentUSD: 87.5, ReservedUSD: 0.4, BurnPerHour: 9.2, PeriodEnd: clock.Add(21 * time.Hour), Exhausts: ptr(clock.Add(73 * time.Minute)), CostSeries: []float64{0.1, 0.12, 0.15, 0.2, 0.18, 0.22, 0.25, 0.3}},
			{Name: "web-key", Scope: "key", Match: "web", Period: "total", LimitUSD: 50, SpentUSD: 12, BurnPerHour: 0.5},
		},
		Spend: []api.Spend{
			{Dimension: "feature", Name: "support-answer", Requests: 9200, Tokens: 4_500_000, CostUSD: 46.8},
			{Dimension: "feature", Name: "summarize", Requests: 3100, Tokens: 1_500_000, CostUSD: 14.9},
			{Dimension: "feature", Name: "classify-ticket", Requests: 400, Tokens: 120_000, CostUSD: 0.9, Unpriced: 150},
			{Dimension: "team", Name: "support", Requests: 9200, Tokens: 4_500_000, CostUSD: 46.8},
			{Dimension: "model", Name: "claude-haiku", Requests: 900, Tokens: 400_000, CostUSD: 7.2},
		},
	}
}

func fixtureDiff() api.Diff {
	return api.Diff{Feature: "support-answer", A: 2, B: 3, AHash: "sha256:1a2b3c4d00", BHash: "sha256:9f8e7d6c00",
		Fields: []api.FieldDiff{
			{Field: "system", Lines: []api.DiffLine{{Op: "-", Text: "Answer briefly."}, {Op: "+", Text: "Answer briefly and cite."}}},
			{Field: "route", Lines: []api.DiffLine{{Op: "-", Text: "default"}, {Op: "+", Text: "haiku-first"}}},
		}}
}

// loaded is an App with every kind of data in.
func loaded(t testing.TB, readOnly bool, w, h int) *App {
	t.Helper()
	a := newTestApp(t, readOnly)
	send(t, a, tea.WindowSizeMsg{Width: w, Height: h})
	send(t, a, TracesMsg(summaries(40, clock.Add(-40*time.Second))))
	send(t, a, OverviewMsg(fixtureOverview()))
	send(t, a, MembersMsg(fixtureMembers()))
	send(t, a, FeaturesMsg(fixtureFeatures()))
	send(t, a, BudgetsMsg(fixtureBudgets()))
	send(t, a, AgentStatusMsg{Agent: "agent-3", Stale: true, Err: errors.New("dial tcp 10.0.0.3:7400: connection refused")})
	return a
}
