package console

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/tui"
)

// recorder collects what a fleet sends to the program.
type recorder struct {
	mu   sync.Mutex
	msgs []tea.Msg
}

func (r *recorder) send(m tea.Msg) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// waitFor waits until ok holds for the messages so far.
func (r *recorder) waitFor(t *testing.T, what string, ok func([]tea.Msg) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		done := ok(r.msgs)
		r.mu.Unlock()
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("timed out waiting for %s; got %d messages, last: %s", what, len(r.msgs), lastMsgs(r.msgs, 5))
}

func lastMsgs(ms []tea.Msg, n int) string {
	s := ""
	for _, m := range ms[max(0, len(ms)-n):] {
		s += fmt.Sprintf("\n  %T %.200v", m, m)
	}
	return s
}

// traceIDs are the ids of every TracesMsg row, in arrival order.
func traceIDs(ms []tea.Msg) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		if b, ok := m.(tui.TracesMsg); ok {
			for _, s := range b {
				out[s.ID] = s.Node
			}
		}
	}
	return out
}

func statuses(ms []tea.Msg) []tui.AgentStatusMsg {
	var out []tui.AgentStatusMsg
	for _, m := range ms {
		if s, ok := m.(tui.AgentStatusMsg); ok {
			out = append(out, s)
		}
	}
	return out
}

// runFleet runs a fleet until the test ends.
func runFleet(t *testing.T, o FleetOptions) (*Fleet, *recorder) {
	t.Helper()
	o.Token = testToken
	if o.FeedTick == 0 {
		o.FeedTick = 20 * time.Millisecond
	}
	if o.PollEvery == 0 {
		o.PollEvery = 100 * time.Millisecond
	}
	f, err := NewFleet(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, rec.send)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("fleet did not stop within 10s")
		}
	})
	return f, rec
}

// TestFleetReconnect: a feed that breaks marks the agent stale, the fleet
// retries with backoff, and once back it clears the mark and backfills
// the traces served meanwhile.
func TestFleetReconnect(t *testing.T) {
	a := newFakeAgent(t, "n1")
	a.serve(summary("before", "", time.Now().Add(-time.Minute)))
	_, rec := runFleet(t, FleetOptions{Agents: []string{a.srv.URL}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond})
	rec.waitFor(t, "backfill of the trace served before the console started", func(ms []tea.Msg) bool { return traceIDs(ms)["before"] == "n1" })
	waitOpenFeeds(t, a, 1)
	a.serve(summary("live", "", time.Now()))
	rec.waitFor(t, "a live trace", func(ms []tea.Msg) bool { return traceIDs(ms)["live"] == "n1" })

	a.setFeedDown(true)
	a.dropFeeds()
	rec.waitFor(t, "the agent marked stale", func(ms []tea.Msg) bool {
		st := statuses(ms)
		return len(st) > 0 && st[len(st)-1].Stale && st[len(st)-1].Agent == "n1" && st[len(st)-1].Err != nil
	})
	a.serve(summary("while-away", "", time.Now()))
	time.Sleep(300 * time.Millisecond) // several failed retries
	a.mu.Lock()
	conns := a.feedConns
	a.mu.Unlock()
	a.setFeedDown(false)
	rec.waitFor(t, "the agent back and the missed trace backfilled", func(ms []tea.Msg) bool {
		st := statuses(ms)
		return len(st) > 0 && !st[len(st)-1].Stale && traceIDs(ms)["while-away"] == "n1"
	})
	if conns != 1 {
		t.Fatalf("%d feed connections before the agent came back, want 1", conns)
	}
	for _, s := range statuses(rec.msgs) {
		if s.Agent != "n1" {
			t.Fatalf("status for %q, want the node id n1", s.Agent)
		}
	}
}

func waitOpenFeeds(t *testing.T, a *fakeAgent, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for a.openFeeds() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d open feeds, want %d", a.node, a.openFeeds(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFleetBackoffDoubles: while an agent is down, retries space out up
// to the maximum.
func TestFleetBackoffDoubles(t *testing.T) {
	a := newFakeAgent(t, "n1")
	a.setFeedDown(true)
	runFleet(t, FleetOptions{Agents: []string{a.srv.URL}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 160 * time.Millisecond})
	time.Sleep(time.Second)
	// Waits of 10, 20, 40, 80, 160, 160, … ms: about 9 tries in a
	// second; without backoff it would be a hundred.
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.feedTries < 5 || a.feedTries > 14 || a.feedConns != 0 {
		t.Fatalf("%d tries (%d accepted) in a second, want 5 to 14 with none accepted", a.feedTries, a.feedConns)
	}
}

// TestFleetLearnsMembers: the members endpoint names a second agent; the
// fleet opens its feed and merges its traces with the first's.
func TestFleetLearnsMembers(t *testing.T) {
	a, b := newFakeAgent(t, "n1"), newFakeAgent(t, "n2")
	a.members = &api.Members{Leader: "n1", Term: 3, Members: []api.Member{
		{ID: "n1", HTTPAddr: a.srv.Listener.Addr().String(), Role: api.RoleLeader, Voter: true, Healthy: true},
		// Addresses come with or without a scheme.
		{ID: "n2", HTTPAddr: b.srv.URL, Role: api.RoleFollower, Voter: true, Healthy: true},
	}}
	f, rec := runFleet(t, FleetOptions{Agents: []string{a.srv.URL}})
	waitOpenFeeds(t, b, 1)
	waitOpenFeeds(t, a, 1)
	now := time.Now()
	a.serve(summary("from-a", "", now))
	b.serve(summary("from-b", "", now))
	rec.waitFor(t, "traces of both agents", func(ms []tea.Msg) bool {
		ids := traceIDs(ms)
		return ids["from-a"] == "n1" && ids["from-b"] == "n2"
	})
	rec.waitFor(t, "the members", func(ms []tea.Msg) bool {
		for _, m := range ms {
			if mm, ok := m.(tui.MembersMsg); ok && mm.Leader == "n1" && len(mm.Members) == 2 {
				return true
			}
		}
		return false
	})
	if got := f.Agents(); !reflect.DeepEqual(got, []string{"n1", "n2"}) {
		t.Fatalf("agents %v, want [n1 n2]: one connection per member", got)
	}
	// A trace is fetched from the agent that served it.
	tr, err := f.Trace(testCtx(t), "from-b", "n2")
	if err != nil || tr.Node != "n2" {
		t.Fatalf("Trace from n2: %v %+v", err, tr)
	}
	tr, err = f.Trace(testCtx(t), "from-b", "")
	if err != nil || tr.Node != "n2" {
		t.Fatalf("Trace from any agent: %v %+v", err, tr)
	}
}

// TestFleetWithoutMembers: an agent without the members endpoint leaves
// the console with that one agent, shown as the only member.
func TestFleetWithoutMembers(t *testing.T) {
	a := newFakeAgent(t, "n1")
	_, rec := runFleet(t, FleetOptions{Agents: []string{a.srv.URL}})
	rec.waitFor(t, "overview, features and a one-agent member list", func(ms []tea.Msg) bool {
		var ov, fs, mem bool
		for _, m := range ms {
			switch m := m.(type) {
			case tui.OverviewMsg:
				ov = ov || m.Node == "n1"
			case tui.FeaturesMsg:
				fs = fs || len(m) == 1
			case tui.MembersMsg:
				mem = mem || len(m.Members) == 1 && m.Members[0].ID == "n1" && m.Members[0].Role == api.RoleUnknown
			}
		}
		return ov && fs && mem
	})
	for _, m := range rec.msgs {
		if _, ok := m.(tui.BudgetsMsg); ok {
			t.Fatal("budgets sent although the agent has no budgets endpoint")
		}
		if _, ok := m.(tui.ReleaseStatsMsg); ok {
			t.Fatal("release stats sent although the agent has no such endpoint")
		}
	}
}

// TestFleetSendsClusterReleaseStats: the cluster-wide counters come from
// one agent, for the whole cluster, and are sent as they are.
func TestFleetSendsClusterReleaseStats(t *testing.T) {
	a, b := newFakeAgent(t, "n1"), newFakeAgent(t, "n2")
	want := api.ClusterStats{Node: "n1", WindowSeconds: 300, Releases: []api.ClusterReleaseStats{
		{Feature: "support-answer", Release: "support-answer@v2", Version: 2, Window: api.Stats{Requests: 40, P95: 812}}}}
	a.mu.Lock()
	a.relStats = &want
	a.mu.Unlock()
	_, rec := runFleet(t, FleetOptions{Agents: []string{a.srv.URL, b.srv.URL}})
	rec.waitFor(t, "the cluster's release stats", func(ms []tea.Msg) bool {
		for _, m := range ms {
			if rs, ok := m.(tui.ReleaseStatsMsg); ok && reflect.DeepEqual(api.ClusterStats(rs), want) {
				return true
			}
		}
		return false
	})
}

func TestMergeOverviews(t *testing.T) {
	a := api.Overview{Node: "n1", WindowSeconds: 300, RequestsPerSec: 3, ErrorRate: 0.1, P50: 100, P95: 300, CostPerMinute: 1,
		CostSeries: []float64{1, 2, 3},
		Releases:   []api.ReleaseStats{{Feature: "f", Release: "f@v1", Version: 1, Label: "production", Stats: api.Stats{Requests: 10, Errors: 1, P95: 300, CostUSD: 1}}}}
	b := api.Overview{Node: "n2", WindowSeconds: 300, RequestsPerSec: 1, ErrorRate: 0.5, P50: 50, P95: 900, CostPerMinute: 2,
		CostSeries: []float64{10, 20},
		Releases: []api.ReleaseStats{{Feature: "f", Release: "f@v1", Version: 1, Stats: api.Stats{Requests: 5, Errors: 2, P95: 200, CostUSD: 2}},
			{Feature: "f", Release: "f@v2", Version: 2, Stats: api.Stats{Requests: 1}}}}
	m := MergeOverviews([]api.Overview{a, b})
	switch {
	case m.Node != "cluster" || m.RequestsPerSec != 4 || m.CostPerMinute != 3:
		t.Fatalf("totals: %+v", m)
	case m.ErrorRate != (0.3+0.5)/4:
		t.Fatalf("error rate %v, want the request-weighted 0.2", m.ErrorRate)
	case m.P50 != 100 || m.P95 != 900:
		t.Fatalf("percentiles %v/%v, want the slowest agent's", m.P50, m.P95)
	case !reflect.DeepEqual(m.CostSeries, []float64{1, 12, 23}):
		t.Fatalf("series %v, want right-aligned sums [1 12 23]", m.CostSeries)
	case len(m.Releases) != 2 || m.Releases[0].Requests != 15 || m.Releases[0].Errors != 3 || m.Releases[0].Label != "production" || m.Releases[0].P95 != 300:
		t.Fatalf("releases: %+v", m.Releases)
	}
	if one := MergeOverviews([]api.Overview{b}); one.Node != "n2" {
		t.Fatalf("one overview changed: %+v", one)
	}
}
