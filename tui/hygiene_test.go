package tui

import (
	"errors"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
)

// TestLeftAgentClearsStale: a stale agent that leaves the cluster loses
// its mark in the header, the overview and the cluster view.
func TestLeftAgentClearsStale(t *testing.T) {
	a := loaded(t, false, 120, 40)
	if !strings.Contains(a.View(), "STALE: agent-3") {
		t.Fatalf("agent-3 is not marked stale before it leaves:\n%s", a.View())
	}
	send(t, a, AgentStatusMsg{Agent: "agent-3", Left: true})
	s := a.View()
	if strings.Contains(s, "STALE") {
		t.Fatalf("agent-3 left but a stale mark stays:\n%s", s)
	}
	if !strings.Contains(a.Status(), "agent-3 left the cluster") {
		t.Fatalf("status %q does not say agent-3 left", a.Status())
	}
	press(t, a, a.Keys().Cluster)
	if s := a.View(); strings.Contains(s, "console lost contact") || strings.Contains(s, "STALE!") {
		t.Fatalf("the cluster view still shows agent-3 lost:\n%s", s)
	}
}

// TestFooterFits: at every width the footer keeps ? and q whole and never
// runs past the edge.
func TestFooterFits(t *testing.T) {
	for _, w := range []int{60, 80, 100, 120} {
		a := loaded(t, false, w, 24)
		for _, v := range []ViewID{ViewOverview, ViewTraces, ViewReleases, ViewCosts, ViewCluster, ViewLog} {
			a.show(v)
			lines := strings.Split(a.View(), "\n")
			f := lines[len(lines)-1]
			if !strings.HasPrefix(f, "? keys") || !strings.HasSuffix(f, "q quit") || len([]rune(f)) > w {
				t.Fatalf("%s at %d columns: footer %q, want ? keys … q quit within %d", v, w, f, w)
			}
		}
	}
}

func TestGoldenOverviewNoAgent(t *testing.T) {
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		a := newTestApp(t, false)
		send(t, a, tea.WindowSizeMsg{Width: size.w, Height: size.h})
		send(t, a, OverviewErrMsg{Err: errors.New("agent http://127.0.0.1:7400 refused the admin token (401: an admin token is required): check --token or GANTRY_TOKEN")})
		got := a.View()
		checkScreen(t, got, size.w, size.h)
		if strings.Contains(got, "Waiting") {
			t.Fatalf("the overview still waits although no agent answers:\n%s", got)
		}
		golden(t, "overview-no-agent-"+itoa(size.w)+"x"+itoa(size.h), got)
	}
}

// TestHeaderKeepsAlerts: on a narrow terminal the address gives way, the
// stale agents and the alert count stay.
func TestHeaderKeepsAlerts(t *testing.T) {
	a := incident(t, true, 80, 24)
	a.context = "https://gantry-agent-eu-west-1.internal.example:7400"
	head := strings.Split(a.View(), "\n")[0]
	for _, want := range []string{"[READ-ONLY]", "STALE: agent-3", "!4 alerts (2 critical)"} {
		if !strings.Contains(head, want) {
			t.Fatalf("header %q lost %q", head, want)
		}
	}
}
