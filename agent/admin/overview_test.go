package admin

import (
	"math"
	"strings"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
	"gantry/pipeline/trace"
)

// sum is a trace summary started ago before now.
func sum(now time.Time, ago time.Duration, release, status string, ms float64, cost float64) trace.Summary {
	feature, _, _ := strings.Cut(release, "@")
	return trace.Summary{ID: release + ago.String(), Start: now.Add(-ago), Duration: trace.Millis(ms),
		Feature: feature, Release: release, Status: status, CostUSD: cost, InputTokens: 10, OutputTokens: 5}
}

func TestComputeOverview(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC)
	labels := map[string]string{"a@v1": config.LabelProduction, "a@v2": config.LabelCanary}
	// Newest first, as the store returns them.
	withFeedback := func(s trace.Summary, fb string, val int) trace.Summary { s.Feedback, s.Validation = fb, val; return s }
	sums := []trace.Summary{
		withFeedback(sum(now, 10*time.Second, "a@v2", "error", 400, 0.02), "down", 1),
		withFeedback(sum(now, 20*time.Second, "a@v1", "ok", 100, 0.01), "up", 0),
		withFeedback(sum(now, 30*time.Second, "a@v1", "ok", 200, 0.01), "0.9", 0),
		sum(now, 40*time.Second, "b@v1", "ok", 300, 0.03),
		sum(now, 10*time.Minute, "a@v1", "ok", 9000, 1), // outside the 5 minute window, inside the series
		sum(now, time.Hour, "a@v1", "ok", 9000, 5),      // outside both
	}
	tests := []struct {
		name     string
		complete bool
		wantRPS  float64
		wantCPM  float64
	}{
		// The agent has older traces than the window: rates over 300 s.
		{"busy agent", false, 4.0 / 300, 0.07 / 5},
		// The store's oldest trace is an hour old: still the whole window.
		{"complete store older than window", true, 4.0 / 300, 0.07 / 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := computeOverview("n1", now, 5*time.Minute, sums, tc.complete, labels)
			if o.Node != "n1" || o.WindowSeconds != 300 {
				t.Fatalf("node %q window %d", o.Node, o.WindowSeconds)
			}
			if !near(o.RequestsPerSec, tc.wantRPS) || !near(o.CostPerMinute, tc.wantCPM) {
				t.Fatalf("rps %v cost/min %v, want %v and %v", o.RequestsPerSec, o.CostPerMinute, tc.wantRPS, tc.wantCPM)
			}
			if !near(o.ErrorRate, 0.25) || o.P50 != 200 || o.P95 != 400 {
				t.Fatalf("error rate %v p50 %v p95 %v, want 0.25, 200, 400", o.ErrorRate, o.P50, o.P95)
			}
			if len(o.CostSeries) != CostSeriesMinutes {
				t.Fatalf("series has %d minutes", len(o.CostSeries))
			}
			last, tenAgo := o.CostSeries[CostSeriesMinutes-1], o.CostSeries[CostSeriesMinutes-10]
			if !near(last, 0.07) || !near(tenAgo, 1) {
				t.Fatalf("series: last minute %v (want 0.07), ten minutes ago %v (want 1): %v", last, tenAgo, o.CostSeries)
			}
			if len(o.Features) != 2 || o.Features[0].Feature != "a" || o.Features[0].Requests != 3 || o.Features[1].Requests != 1 {
				t.Fatalf("features: %+v", o.Features)
			}
			rel := map[string]api.ReleaseStats{}
			for _, r := range o.Releases {
				rel[r.Release] = r
			}
			v1, v2 := rel["a@v1"], rel["a@v2"]
			switch {
			case len(o.Releases) != 3:
				t.Fatalf("releases: %+v", o.Releases)
			case v1.Version != 1 || v1.Label != config.LabelProduction || v1.Requests != 2 || v1.FeedbackUp != 2 || v1.Errors != 0:
				t.Fatalf("a@v1: %+v", v1)
			case v2.Version != 2 || v2.Label != config.LabelCanary || v2.Errors != 1 || v2.FeedbackDown != 1 || v2.ValidationFailures != 1 || v2.P95 != 400:
				t.Fatalf("a@v2: %+v", v2)
			case v1.InputTokens != 20 || v1.OutputTokens != 10 || !near(v1.CostUSD, 0.02):
				t.Fatalf("a@v1 tokens and cost: %+v", v1)
			}
		})
	}
}

// TestComputeOverviewYoungAgent: an agent up for 40 s reports its rate over
// those 40 s, not as if it had been idle for the rest of the window.
func TestComputeOverviewYoungAgent(t *testing.T) {
	now := time.Now()
	var sums []trace.Summary
	for i := range 40 {
		sums = append(sums, sum(now, time.Duration(i)*time.Second+500*time.Millisecond, "a@v1", "ok", 10, 0.001))
	}
	o := computeOverview("n1", now, 5*time.Minute, sums, true, nil)
	if o.RequestsPerSec < 0.95 || o.RequestsPerSec > 1.05 {
		t.Fatalf("rps %v, want about 1", o.RequestsPerSec)
	}
	empty := computeOverview("n1", now, 5*time.Minute, nil, true, nil)
	if empty.RequestsPerSec != 0 || empty.P95 != 0 || len(empty.Features) != 0 {
		t.Fatalf("empty overview: %+v", empty)
	}
}

func TestPercentileAndVersion(t *testing.T) {
	for _, tc := range []struct {
		vals []float64
		p    float64
		want float64
	}{{nil, 0.5, 0}, {[]float64{7}, 0.95, 7}, {[]float64{1, 2, 3, 4}, 0.5, 2}, {[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.95, 10}} {
		if got := percentile(tc.vals, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.vals, tc.p, got, tc.want)
		}
	}
	for id, want := range map[string]int{"a@v2": 2, "x@y@v13": 13, "a": 0, "a@2": 0, "a@v": 0} {
		if got := config.ReleaseVersion(id); got != want {
			t.Errorf("ReleaseVersion(%q) = %d, want %d", id, got, want)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestOperatorNameIsKeptPrintableAndShort(t *testing.T) {
	cases := map[string]string{
		"ssh:alice SHA256:abc":   "ssh:alice SHA256:abc",
		"local:root\x1b[31m":     "local:root[31m",
		"x (fake) y":             "x fake y",
		strings.Repeat("a", 300): strings.Repeat("a", 128),
		"\n\t":                   "",
	}
	for in, want := range cases {
		if got := operatorName(in); got != want {
			t.Fatalf("operatorName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOverviewTotalsIncludeCallsWithoutFeature is the "errors 56%" next to
// feature rows of 0 %: refused calls carry no feature, and the overview
// must show where the errors are.
func TestOverviewTotalsIncludeCallsWithoutFeature(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC)
	refused := func(ago time.Duration) trace.Summary {
		return trace.Summary{ID: "r" + ago.String(), Start: now.Add(-ago), Status: "error", HTTPStatus: 401, ErrorCode: "invalid_api_key", Duration: 1}
	}
	sums := []trace.Summary{
		refused(5 * time.Second), refused(6 * time.Second), refused(7 * time.Second),
		sum(now, 10*time.Second, "a@v1", "ok", 100, 0.01),
		sum(now, 20*time.Second, "a@v1", "ok", 100, 0.02),
	}
	o := computeOverview("n1", now, 5*time.Minute, sums, false, nil)
	if o.Totals.Requests != 5 || o.Totals.Errors != 3 || !near(o.ErrorRate, 0.6) {
		t.Fatalf("totals %+v error rate %v, want 5 requests, 3 errors, 0.6", o.Totals, o.ErrorRate)
	}
	if o.NoFeature.Requests != 3 || o.NoFeature.Errors != 3 {
		t.Fatalf("no-feature row %+v, want the 3 refused calls", o.NoFeature)
	}
	var rows int64
	var cost float64
	for _, f := range o.Features {
		rows += f.Requests
		cost += f.CostUSD
	}
	if rows+o.NoFeature.Requests != o.Totals.Requests || !near(cost+o.NoFeature.CostUSD, o.Totals.CostUSD) {
		t.Fatalf("feature rows (%d, $%v) and no-feature (%d, $%v) do not add up to the totals (%d, $%v)",
			rows, cost, o.NoFeature.Requests, o.NoFeature.CostUSD, o.Totals.Requests, o.Totals.CostUSD)
	}
}

// TestSpendByAddsUpToTheWindow is "spend by feature total $0.01" next to a
// global $0.03: calls without a feature have their row.
func TestSpendByAddsUpToTheWindow(t *testing.T) {
	recent := []trace.Summary{
		{Feature: "a", Key: "k", Model: "m", CostUSD: 0.01},
		{Key: "k", Model: "m", CostUSD: 0.02},          // a plain model call
		{Status: "error", HTTPStatus: 401, CostUSD: 0}, // refused
	}
	for _, dim := range []string{api.DimFeature, api.DimKey, api.DimModel, api.DimTeam} {
		var total float64
		var calls int64
		for _, s := range spendBy(recent) {
			if s.Dimension == dim {
				total += s.CostUSD
				calls += s.Requests
			}
		}
		if !near(total, 0.03) || calls != 3 {
			t.Errorf("spend by %s adds up to $%v over %d calls, want $0.03 over 3", dim, total, calls)
		}
	}
}
