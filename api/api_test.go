package api

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/trace"
)

func TestErrorShape(t *testing.T) {
	var r ErrorResponse
	r.Error = Error{Code: CodeConflict, Message: "production moved to v4"}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"error":{"code":"conflict","message":"production moved to v4"}}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	var back ErrorResponse
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var e error = &back.Error
	var target *Error
	if !errors.As(e, &target) || target.Code != CodeConflict {
		t.Fatalf("errors.As: %v", e)
	}
	if e.Error() != "conflict: production moved to v4" {
		t.Fatalf("Error() = %q", e.Error())
	}
}

func TestTraceQueryRoundTrip(t *testing.T) {
	since := time.Date(2026, 11, 27, 2, 0, 0, 500, time.UTC)
	cases := []TraceQuery{
		{},
		{Feature: "support-answer", Status: "error", Limit: 50},
		{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{Release: "support-answer@v3", Model: "gpt-4o-mini", Node: "agent-2", Text: "rate limit", Since: since, Until: since.Add(time.Hour), Cursor: "abc"},
		{User: "u-17", KeyFP: "1a2b3c4d", ErrorKind: "http_500", Sort: SortDuration, MinDuration: 1500 * time.Millisecond, MaxDuration: 3 * time.Second},
		{Sort: SortCost, MinCost: 0.0125, MaxCost: 2},
	}
	for _, q := range cases {
		got, err := ParseTraceQuery(q.Values())
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if got != q {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, q)
		}
	}
}

func TestParseTraceQueryErrors(t *testing.T) {
	cases := []struct{ query, want string }{
		{"limit=0", "limit"},
		{"limit=5000", "limit"},
		{"limit=x", "limit"},
		{"since=yesterday", "since"},
		{"until=2026-13-01", "until"},
		{"status=maybe", "status"},
		{"trace_id=4BF92F3577B34DA6A3CE929D0E0E4736", "trace_id"},
		{"trace_id=123", "trace_id"},
		{"q=" + strings.Repeat("x", 257), "q"},
		{"feature=" + strings.Repeat("f", 257), "feature"},
		{"user=" + strings.Repeat("u", 257), "user"},
		{"sort=size", "sort"},
		{"min_duration=fast", "min_duration"},
		{"max_duration=-1s", "max_duration"},
		{"min_cost=-1", "min_cost"},
		{"max_cost=NaN", "max_cost"},
		{"max_cost=1e9", "max_cost"},
		{"min_duration=2s&max_duration=1s", "min_duration 2s is above"},
		{"min_cost=2&max_cost=1", "min_cost 2 is above"},
	}
	for _, c := range cases {
		v, _ := url.ParseQuery(c.query)
		_, err := ParseTraceQuery(v)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Fatalf("%s: error %v, want one about %s", c.query, err, c.want)
		}
	}
}

func TestPaths(t *testing.T) {
	cases := []struct{ got, want string }{
		{TracePath("4bf9"), "/admin/v1/traces/4bf9"},
		{ReleasesPath("support-answer"), "/admin/v1/features/support-answer/releases"},
		{DiffPath("support-answer", 2, 3), "/admin/v1/features/support-answer/diff?a=2&b=3"},
		{LabelsPath("a b"), "/admin/v1/features/a%20b/labels"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Fatalf("got %s, want %s", c.got, c.want)
		}
	}
}

func TestLabelMoveCheck(t *testing.T) {
	ok := LabelMove{Feature: "f", Action: config.MovePromote, From: 2, To: 3}
	cases := []struct {
		name string
		edit func(m *LabelMove)
		want string // empty: valid
	}{
		{"promote", func(m *LabelMove) {}, ""},
		{"rollback", func(m *LabelMove) { m.Action, m.To = config.MoveRollback, 0 }, ""},
		{"canary", func(m *LabelMove) { m.Action, m.Weight = config.MoveCanary, 10 }, ""},
		{"abort", func(m *LabelMove) { m.Action, m.To = config.MoveAbort, 0 }, ""},
		{"no feature", func(m *LabelMove) { m.Feature = "" }, "feature"},
		{"bad action", func(m *LabelMove) { m.Action = "delete" }, "action"},
		{"rollback to a version", func(m *LabelMove) { m.Action = config.MoveRollback }, "rollback takes no version"},
		{"abort with a version", func(m *LabelMove) { m.Action = config.MoveAbort }, "abort takes no version"},
		{"canary without weight", func(m *LabelMove) { m.Action = config.MoveCanary }, "canary takes"},
		{"canary of weight 0", func(m *LabelMove) { m.Action, m.To = config.MoveCanary, 0 }, "canary takes"},
		{"weight too high", func(m *LabelMove) { m.Action, m.Weight = config.MoveCanary, 101 }, "canary takes"},
		{"weight on promote", func(m *LabelMove) { m.Weight = 5 }, "promote takes"},
		{"negative version", func(m *LabelMove) { m.To = -1 }, "versions"},
	}
	for _, c := range cases {
		m := ok
		c.edit(&m)
		err := m.Check()
		switch {
		case c.want == "" && err != nil:
			t.Fatalf("%s: unexpected error %v", c.name, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Fatalf("%s: error %v, want one starting %q", c.name, err, c.want)
		}
	}
}

func TestDiffSummary(t *testing.T) {
	cases := []struct {
		d    Diff
		want string
	}{
		{Diff{}, "no changes"},
		{Diff{Fields: []FieldDiff{{Field: "route", Lines: []DiffLine{{DiffRemove, "a"}, {DiffAdd, "b"}}}}}, "1 field changed: route +1 -1"},
		{Diff{Fields: []FieldDiff{
			{Field: "system", Lines: []DiffLine{{DiffSame, "x"}, {DiffAdd, "y"}, {DiffAdd, "z"}}},
			{Field: "params.temperature", Lines: []DiffLine{{DiffRemove, "0.2"}}},
		}}, "2 fields changed: system +2 -0, params.temperature +0 -1"},
	}
	for _, c := range cases {
		if got := c.d.Summary(); got != c.want {
			t.Fatalf("got %q, want %q", got, c.want)
		}
	}
}

// TestWireNames pins the JSON names the agent and console agree on: a
// rename here breaks every console in the field.
func TestWireNames(t *testing.T) {
	exhausts := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	cases := []struct {
		v    any
		keys []string
	}{
		{TraceList{Traces: []trace.Summary{{ID: "a"}}, Next: "n"}, []string{`"traces":[`, `"next":"n"`}},
		{Overview{RequestsPerSec: 1, ErrorRate: 0.5, P50: 1, P95: 2, CostPerMinute: 3, Features: []FeatureStats{{Feature: "f", Stats: Stats{Requests: 4, FeedbackDown: 1}}}},
			[]string{`"requests_per_s":1`, `"error_rate":0.5`, `"p50_ms":1`, `"p95_ms":2`, `"cost_per_minute_usd":3`, `"feature":"f","requests":4`, `"feedback_down":1`}},
		{Member{ID: "a", Role: RoleLeader, Voter: true, Healthy: true, LastIndex: 3, AppliedIndex: 2},
			[]string{`"role":"leader"`, `"voter":true`, `"healthy":true`, `"last_index":3`, `"applied_index":2`}},
		{Budget{Name: "b", LimitUSD: 10, SpentUSD: 5, ReservedUSD: 1, BurnPerHour: 2, Exhausts: &exhausts},
			[]string{`"limit_usd":10`, `"spent_usd":5`, `"reserved_usd":1`, `"burn_per_hour_usd":2`, `"exhausts":"2026-11-27T04:00:00Z"`}},
		{LabelMove{Feature: "f", Action: "canary", To: 3, Weight: 10, Reason: "r"},
			[]string{`"action":"canary"`, `"to":3`, `"weight":10`, `"reason":"r"`}},
		{Release{Version: 2, ID: "f@v2", Hash: "sha256:x", CreatedBy: "alice", Note: "n"},
			[]string{`"version":2`, `"id":"f@v2"`, `"hash":"sha256:x"`, `"created_by":"alice"`, `"note":"n"`}},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range c.keys {
			if !strings.Contains(string(b), k) {
				t.Fatalf("%T encodes as %s, without %s", c.v, b, k)
			}
		}
	}
	// Zero times are left out, not sent as year 1.
	b, _ := json.Marshal(Member{ID: "a"})
	if strings.Contains(string(b), "last_contact") {
		t.Fatalf("zero last_contact encoded: %s", b)
	}
}

func TestBudgetUsedAndStatsErrorRate(t *testing.T) {
	if got := (Budget{LimitUSD: 100, SpentUSD: 40, ReservedUSD: 10}).Used(); got != 0.5 {
		t.Fatalf("Used = %v, want 0.5", got)
	}
	if got := (Budget{}).Used(); got != 0 {
		t.Fatalf("Used of no limit = %v, want 0", got)
	}
	if got := (Stats{Requests: 200, Errors: 5}).ErrorRate(); got != 0.025 {
		t.Fatalf("ErrorRate = %v", got)
	}
	f := Feature{Labels: config.Labels{Production: 2, Canary: 3, CanaryWeight: 5}}
	if got := strings.Join(f.LabelsOf(2), ","); got != "production" {
		t.Fatalf("LabelsOf(2) = %s", got)
	}
	if got := strings.Join(f.LabelsOf(3), ","); got != "canary" {
		t.Fatalf("LabelsOf(3) = %s", got)
	}
	if got := f.LabelsOf(1); len(got) != 0 {
		t.Fatalf("LabelsOf(1) = %v", got)
	}
}
