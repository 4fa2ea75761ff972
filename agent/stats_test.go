package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"gantry/agent/gateway"
	"gantry/api"
	"gantry/config"
	"gantry/internal/freeport"
	"gantry/pipeline/trace"
)

// statsKey and statsAdmin are the credentials of statsConfig's agents.
const (
	statsKey   = "gk_stats-test-key"
	statsAdmin = "gat_stats-test-admin"
)

// statsConfig is a fast simulator behind a feature with a production and a
// canary release.
func statsConfig() string {
	return `providers:
  - name: sim
    kind: sim
    sim: {latency_p50: 3ms, latency_p99: 30ms, output_tokens: 12, seed: 5}
models:
  - name: sim-small
    provider: sim
    price: {input: 0.15, output: 0.60}
routes:
  - name: cheap
    targets: [{model: sim-small, weight: 1}]
features:
  - name: answer
    releases:
      - version: 1
        system: Answer briefly.
        template: [{role: user, content: "{{question}}"}]
        variables: [{name: question, required: true}]
        route: cheap
      - version: 2
        system: Answer in one sentence.
        template: [{role: user, content: "{{question}}"}]
        variables: [{name: question, required: true}]
        route: cheap
    labels: {production: 1, canary: 2, canary_weight: 50}
keys:
  - name: stats
    hash: ` + config.HashKey(statsKey) + `
`
}

// fastStatsSync makes agents commit their counts every 50ms for the test.
func fastStatsSync(t *testing.T) {
	t.Helper()
	old := statsSyncInterval
	statsSyncInterval = 50 * time.Millisecond
	t.Cleanup(func() { statsSyncInterval = old })
}

func writeStatsConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gantry.yaml")
	if err := os.WriteFile(p, []byte(statsConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// served is what the test saw of its own calls, per release.
type served struct {
	requests  int64
	cost      float64
	latencies []float64
}

// invokeAnswer makes n calls of the feature answer on a, as n users, and
// records each call's release, cost and latency from its trace.
func invokeAnswer(t *testing.T, a *clusterAgent, key, admin string, n int, prefix string, seen map[string]*served) []string {
	t.Helper()
	var ids []string
	for i := range n {
		var out gateway.InvokeResponse
		body := fmt.Sprintf(`{"vars":{"question":"q%d"},"user":"%s-%d"}`, i, prefix, i)
		a.must(200, "POST", "/v1/features/answer/invoke", key, body, &out)
		var tr trace.Trace
		eventually(t, "trace "+out.TraceID+" stored", func() bool {
			var raw string
			return a.do("GET", api.TracePath(out.TraceID), admin, nil, &raw) == 200 && json.Unmarshal([]byte(raw), &tr) == nil
		})
		sv := seen[out.Release]
		if sv == nil {
			sv = &served{}
			seen[out.Release] = sv
		}
		sv.requests++
		sv.cost += tr.CostUSD
		sv.latencies = append(sv.latencies, float64(tr.Duration))
		ids = append(ids, out.TraceID)
	}
	return ids
}

// releaseStats reads the stats endpoint of a and returns them by release.
func releaseStats(a *clusterAgent, token, query string) map[string]api.ClusterReleaseStats {
	a.t.Helper()
	var cs api.ClusterStats
	a.must(200, "GET", api.PathReleaseStats+query, token, nil, &cs)
	out := map[string]api.ClusterReleaseStats{}
	for _, r := range cs.Releases {
		out[r.Release] = r
	}
	return out
}

// checkStats compares the agent's counters with what the test served.
func checkStats(t *testing.T, got map[string]api.ClusterReleaseStats, seen map[string]*served) {
	t.Helper()
	for id, sv := range seen {
		r, ok := got[id]
		if !ok {
			t.Fatalf("no stats for %s", id)
		}
		for name, s := range map[string]api.Stats{"total": r.Total, "window": r.Window} {
			if s.Requests != sv.requests || math.Abs(s.CostUSD-sv.cost) > 1e-12 {
				t.Fatalf("%s %s: %d requests, %.9f USD; served %d, %.9f USD", id, name, s.Requests, s.CostUSD, sv.requests, sv.cost)
			}
		}
		lat := slices.Sorted(slices.Values(sv.latencies))
		for _, p := range []struct {
			q   float64
			got trace.Millis
		}{{0.5, r.Total.P50}, {0.95, r.Total.P95}} {
			want := lat[int(p.q*float64(len(lat)-1))]
			if math.Abs(float64(p.got)-want) > 0.01*want+1e-9 {
				t.Errorf("%s p%.0f %.3f ms, true %.3f ms: more than 1%% off", id, p.q*100, p.got, want)
			}
		}
	}
}

func TestReleaseStatsOfOneAgent(t *testing.T) {
	fastStatsSync(t)
	cfgFile := writeStatsConfig(t)
	a := startClusterAgent(t, func(o *Options) { o.ConfigFile = cfgFile })
	a.waitSeeded()
	seen := map[string]*served{}
	ids := invokeAnswer(t, a, devKey, devAdmin, 12, "u", seen)
	if len(seen) != 2 {
		t.Fatalf("calls served by %d releases, want production and canary both", len(seen))
	}
	// Feedback on the first trace twice (a change of mind counts once, by
	// the latest signal) and a low score on the second.
	var tr trace.Trace
	a.must(200, "GET", api.TracePath(ids[0]), devAdmin, nil, &tr)
	first := tr.Release
	a.must(200, "GET", api.TracePath(ids[1]), devAdmin, nil, &tr)
	second := tr.Release
	a.must(200, "POST", "/v1/feedback", devKey, `{"trace_id":"`+ids[0]+`","thumbs":"up"}`, nil)
	a.must(200, "POST", "/v1/feedback", devKey, `{"trace_id":"`+ids[0]+`","thumbs":"down"}`, nil)
	a.must(200, "POST", "/v1/feedback", devKey, `{"trace_id":"`+ids[1]+`","score":0.2}`, nil)
	wantDown := map[string]int64{first: 1}
	wantDown[second]++

	var got map[string]api.ClusterReleaseStats
	eventually(t, "the agent's counts committed", func() bool {
		got = releaseStats(a, devAdmin, "?consistent=1")
		var n, down int64
		for _, r := range got {
			n += r.Total.Requests
			down += r.Total.FeedbackDown
		}
		return n == 12 && down == 2
	})
	checkStats(t, got, seen)
	for id, r := range got {
		if r.Total.FeedbackUp != 0 || r.Total.FeedbackDown != wantDown[id] {
			t.Fatalf("%s feedback +%d/-%d, want +0/-%d", id, r.Total.FeedbackUp, r.Total.FeedbackDown, wantDown[id])
		}
	}
	if got["answer@v1"].Label != config.LabelProduction || got["answer@v2"].Label != config.LabelCanary || got["answer@v1"].Version != 1 {
		t.Fatalf("labels: v1 %q, v2 %q", got["answer@v1"].Label, got["answer@v2"].Label)
	}

	// A viewer may read; the query is checked.
	var ts api.TokenSecret
	a.must(201, "POST", api.PathTokens, devAdmin, api.TokenCreate{Name: "watcher", Role: string(config.RoleViewer)}, &ts)
	if only := releaseStats(a, ts.Secret, "?feature=answer&window=60"); len(only) != 2 {
		t.Fatalf("viewer read %d releases of answer, want 2", len(only))
	}
	for q, want := range map[string]int{"?window=5": 400, "?window=3600": 400, "?window=x": 400, "?feature=nope": 404} {
		var e api.ErrorResponse
		if code := a.do("GET", api.PathReleaseStats+q, ts.Secret, nil, &e); code != want || e.Error.Code == "" {
			t.Fatalf("%s: status %d (%+v), want %d", q, code, e, want)
		}
	}
	if code := a.do("GET", api.PathReleaseStats, "", nil, nil); code != 401 {
		t.Fatalf("without a token: status %d, want 401", code)
	}
}

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs, err := freeport.Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// TestReleaseStatsAcrossAgents runs three agents as one cluster, calls two
// of them, and reads the whole cluster's counts on the third, which served
// nothing itself.
func TestReleaseStatsAcrossAgents(t *testing.T) {
	fastStatsSync(t)
	cfgFile := writeStatsConfig(t)
	addrs := freeAddrs(t, 6)
	var agents []*clusterAgent
	for i := range 3 {
		id := "n" + strconv.Itoa(i+1)
		agents = append(agents, startClusterAgent(t, func(o *Options) {
			o.Dev, o.DevKey, o.DevAdminToken = false, "", ""
			o.NodeID, o.ConfigFile, o.AdminTokens = id, cfgFile, []string{statsAdmin}
			o.HTTPAddr = addrs[i]
			o.Cluster = ClusterOptions{RaftAddr: addrs[3+i], BootstrapExpect: 3, Join: addrs[:3], Secret: "stats-test-secret"}
			o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
		}))
	}
	for _, a := range agents {
		eventually(t, a.base+" serves the replicated configuration", func() bool {
			var st api.Status
			return a.do("GET", api.PathStatus, statsAdmin, nil, &st) == 200 && st.ServingIndex > 0 && st.Leader != ""
		})
	}
	seen := map[string]*served{}
	invokeAnswer(t, agents[0], statsKey, statsAdmin, 15, "a", seen)
	invokeAnswer(t, agents[1], statsKey, statsAdmin, 25, "b", seen)
	third := agents[2]
	var got map[string]api.ClusterReleaseStats
	eventually(t, "the third agent sees both agents' calls", func() bool {
		got = releaseStats(third, statsAdmin, "")
		var n int64
		for _, r := range got {
			n += r.Total.Requests
		}
		return n == 40
	})
	checkStats(t, got, seen)
	// Its own overview knows of no call: the counts came through the cluster.
	var ov api.Overview
	third.must(200, "GET", api.PathOverview, statsAdmin, nil, &ov)
	if len(ov.Releases) != 0 {
		t.Fatalf("the third agent served %v itself", ov.Releases)
	}
}

// TestFeedbackClass follows the overview: thumbs as given, a score of at
// least one half is up.
func TestFeedbackClass(t *testing.T) {
	for in, want := range map[string]string{"": "", "up": "up", "down": "down", "0.5": "up", "0.49": "down", "1": "up", "x": ""} {
		if got := feedbackClass(in); got != want {
			t.Errorf("feedbackClass(%q) = %q, want %q", in, got, want)
		}
	}
}
