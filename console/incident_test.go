package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/tui"
)

// TestMergeAlerts: an alert two agents raise is listed once, since the
// first saw it, at its worst severity, naming both; worst first.
func TestMergeAlerts(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	down := api.Alert{ID: "member_down/member/n3", Kind: api.AlertMemberDown, Severity: api.SeverityWarning, Since: t0.Add(time.Minute), Node: "n1"}
	down2 := down
	down2.Since, down2.Node = t0, "n2"
	brk := api.Alert{ID: "breaker_open/model/m", Kind: api.AlertBreakerOpen, Severity: api.SeverityWarning, Since: t0.Add(2 * time.Minute), Node: "n1"}
	brk2 := brk
	brk2.Severity, brk2.Node, brk2.Since = api.SeverityCritical, "n2", t0.Add(3*time.Minute)
	got := MergeAlerts([]api.Alerts{
		{Node: "n1", Time: t0, Alerts: []api.Alert{down, brk}},
		{Node: "n2", Time: t0.Add(time.Second), Alerts: []api.Alert{down2, brk2}},
	})
	if len(got.Alerts) != 2 || got.Node != "cluster" || !got.Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("merged %+v", got)
	}
	b, d := got.Alerts[0], got.Alerts[1]
	if b.ID != brk.ID || b.Severity != api.SeverityCritical || b.Node != "n1,n2" || !b.Since.Equal(brk.Since) {
		t.Fatalf("breaker %+v, want critical first, raised by n2 and n1", b)
	}
	if d.ID != down.ID || !d.Since.Equal(t0) || d.Node != "n1,n2" {
		t.Fatalf("member down %+v, want since the earliest, by n1 and n2", d)
	}
}

// TestMergeHealth: counts add up, rates come from the sums, percentiles
// are the slowest agent's, and an open breaker on one agent shows.
func TestMergeHealth(t *testing.T) {
	a := api.Health{Node: "n1", WindowSeconds: 300,
		Totals: api.HealthStats{Calls: 100, Errors: 10, ErrorRate: 0.1, ErrorsByKind: map[string]int64{"invalid_api_key": 10}, P95: 900},
		Models: []api.ModelHealth{{Model: "m", Provider: "p", Breaker: api.BreakerClosed,
			HealthStats: api.HealthStats{Calls: 90, Attempts: 100, Errors: 10, ErrorRate: 0.1, ErrorsByKind: map[string]int64{"http_500": 10}, P95: 900, Retries: 10}}}}
	b := api.Health{Node: "n2", WindowSeconds: 300,
		Totals: api.HealthStats{Calls: 100, Errors: 30, ErrorRate: 0.3, P95: 1200},
		Models: []api.ModelHealth{{Model: "m", Provider: "p", Breaker: api.BreakerOpen,
			HealthStats: api.HealthStats{Calls: 50, Attempts: 100, Errors: 70, ErrorRate: 0.7, ErrorsByKind: map[string]int64{"http_500": 60, "circuit_open": 10}, P95: 300, Fallbacks: 5}}}}
	got := MergeHealth([]api.Health{a, b})
	m := got.Models[0]
	if m.Breaker != api.BreakerOpen || m.Attempts != 200 || m.Errors != 80 || m.ErrorRate != 0.4 || m.P95 != 900 ||
		m.ErrorsByKind["http_500"] != 70 || m.ErrorsByKind["circuit_open"] != 10 || m.Retries != 10 || m.Fallbacks != 5 {
		t.Fatalf("merged model %+v", m)
	}
	if got.Totals.Calls != 200 || got.Totals.ErrorRate != 0.2 || got.Totals.P95 != 1200 {
		t.Fatalf("merged totals %+v: the rate is per call", got.Totals)
	}
	if a.Models[0].ErrorsByKind["http_500"] != 10 {
		t.Fatal("merging changed an agent's own counts")
	}
}

// TestFleetSendsIncidentData: alerts, health and cost tables come from
// every agent, merged; the audit log from one, filtered as the audit view
// asks.
func TestFleetSendsIncidentData(t *testing.T) {
	a, b := newFakeAgent(t, "n1"), newFakeAgent(t, "n2")
	both := &api.Members{Leader: "n1", Term: 3, Members: []api.Member{
		{ID: "n1", HTTPAddr: a.srv.Listener.Addr().String(), Role: api.RoleLeader, Voter: true, Healthy: true},
		{ID: "n2", HTTPAddr: b.srv.Listener.Addr().String(), Role: api.RoleFollower, Voter: true, Healthy: true},
	}}
	now := time.Now()
	a.mu.Lock()
	a.members = both
	a.alerts = &api.Alerts{Node: "n1", Time: now, Alerts: []api.Alert{}}
	a.health = &api.Health{Node: "n1", Models: []api.ModelHealth{{Model: "m", Breaker: api.BreakerClosed, HealthStats: api.HealthStats{Calls: 5}}}}
	a.costs = []api.CostRow{{Group: "support-answer@v2", Calls: 3, CostUSD: 0.03, Validated: 2}}
	a.audit = []api.AuditEntry{
		{Seq: 2, Actor: "token:ops (local:ana)", Command: "move_label", Target: "feature/support-answer"},
		{Seq: 1, Actor: "token:ci", Command: "apply_config", Target: "route/default"},
	}
	a.mu.Unlock()
	b.mu.Lock()
	b.members = both
	b.alerts = &api.Alerts{Node: "n2", Time: now, Alerts: []api.Alert{{ID: "breaker_open/model/m", Kind: api.AlertBreakerOpen, Severity: api.SeverityCritical, Node: "n2"}}}
	b.health = &api.Health{Node: "n2", Models: []api.ModelHealth{{Model: "m", Breaker: api.BreakerOpen, HealthStats: api.HealthStats{Calls: 7}}}}
	b.costs = []api.CostRow{{Group: "support-answer@v2", Calls: 1, CostUSD: 0.01, Validated: 2}}
	b.mu.Unlock()

	f, rec := runFleet(t, FleetOptions{Agents: []string{a.srv.URL}})
	rec.waitFor(t, "n2's alert", func(ms []tea.Msg) bool {
		for _, m := range ms {
			if al, ok := m.(tui.AlertsMsg); ok && len(al.Alerts) == 1 && al.Alerts[0].Node == "n2" {
				return true
			}
		}
		return false
	})
	rec.mu.Lock()
	for _, m := range rec.msgs {
		switch m.(type) {
		case tui.HealthMsg, tui.AuditMsg, tui.CostsMsg:
			t.Fatalf("%T sent before its view was opened", m)
		}
	}
	rec.mu.Unlock()
	f.WatchHealth()
	rec.waitFor(t, "n2's alert and the merged health", func(ms []tea.Msg) bool {
		var al, hl bool
		for _, m := range ms {
			switch m := m.(type) {
			case tui.AlertsMsg:
				al = al || len(m.Alerts) == 1 && m.Alerts[0].Node == "n2"
			case tui.HealthMsg:
				hl = hl || len(m.Models) == 1 && m.Models[0].Calls == 12 && m.Models[0].Breaker == api.BreakerOpen
			}
		}
		return al && hl
	})
	f.WatchCosts()
	rec.waitFor(t, "both agents' costs added up", func(ms []tea.Msg) bool {
		for _, m := range ms {
			if cm, ok := m.(tui.CostsMsg); ok && len(cm) == 1 && cm[0].Calls == 4 && cm[0].CostPerValidatedUSD != nil && *cm[0].CostPerValidatedUSD == 0.01 {
				return true
			}
		}
		return false
	})
	f.SetAuditQuery(api.AuditQuery{Kind: "move_label", Limit: 50})
	rec.waitFor(t, "the audit page for move_label", func(ms []tea.Msg) bool {
		for _, m := range ms {
			if am, ok := m.(tui.AuditMsg); ok && am.Err == nil && am.Query.Kind == "move_label" &&
				len(am.List.Entries) == 1 && am.List.Entries[0].Seq == 2 {
				return true
			}
		}
		return false
	})
}

// TestYankWritesOSC52: y in the traces view puts the trace id on the
// terminal's clipboard with OSC 52, between frames.
func TestYankWritesOSC52(t *testing.T) {
	a := newFakeAgent(t, "n1")
	f, err := NewFleet(FleetOptions{Agents: []string{a.srv.URL}, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	m := NewModel(context.Background(), f, Options{})
	m.term.output(&out)
	m.Update(tui.YankRequest{Text: "4bf92f3577b34da6a3ce929d0e0e4736"})
	m.Update(tui.BellRequest{})
	want := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte("4bf92f3577b34da6a3ce929d0e0e4736")) + "\a" + "\a"
	if got := out.String(); got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFleetSaysWhyNoAlerts: agents without the alerts endpoint are not a
// reason to wait: the alerts view is told why.
func TestFleetSaysWhyNoAlerts(t *testing.T) {
	a := newFakeAgent(t, "n1") // serves no alerts: 404
	_, rec := runFleet(t, FleetOptions{Agents: []string{a.srv.URL}})
	rec.waitFor(t, "why no alerts", func(ms []tea.Msg) bool {
		for _, m := range ms {
			if e, ok := m.(tui.FetchErrMsg); ok && e.What == "alerts" && strings.Contains(e.Err.Error(), "does not serve "+api.PathAlerts+" (404)") {
				return true
			}
		}
		return false
	})
}
