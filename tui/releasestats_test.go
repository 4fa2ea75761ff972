package tui

import (
	"strings"
	"testing"

	"gantry/api"
	"gantry/config"
)

func TestClusterReleaseStatsReplaceTheOverviews(t *testing.T) {
	a := loaded(t, false, 120, 24)
	before := a.releases.View()
	if !strings.Contains(before, "8300") {
		t.Fatalf("the overview's 8,300 requests of support-answer@v2 are not shown:\n%s", before)
	}
	cs := api.ClusterStats{Node: "agent-2", WindowSeconds: 300, Releases: []api.ClusterReleaseStats{
		{Feature: "support-answer", Release: "support-answer@v2", Version: 2, Label: config.LabelProduction,
			Total: api.Stats{Requests: 90000}, Window: api.Stats{Requests: 24600, Errors: 246, P95: 1234}},
		// Traffic long ago and none in the window: no numbers in the row.
		{Feature: "summarize", Release: "summarize@v1", Version: 1, Total: api.Stats{Requests: 50}},
	}}
	send(t, a, ReleaseStatsMsg(cs))
	v := a.releases.View()
	for _, want := range []string{"24.6k", "1.23s"} {
		if !strings.Contains(v, want) {
			t.Fatalf("cluster-wide numbers %q not shown:\n%s", want, v)
		}
	}
	if strings.Contains(v, "8300") || strings.Contains(v, "3100") {
		t.Fatalf("the overview's numbers are still shown:\n%s", v)
	}
	// A later overview does not bring the per-agent numbers back.
	send(t, a, OverviewMsg(fixtureOverview()))
	if v := a.releases.View(); !strings.Contains(v, "24.6k") || strings.Contains(v, "8300") {
		t.Fatalf("an overview replaced the cluster-wide numbers:\n%s", v)
	}
	if _, ok := a.releases.stats["summarize@v1"]; ok {
		t.Fatal("a release without traffic in the window has numbers")
	}
}
