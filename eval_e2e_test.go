package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
	"gantry/eval/compare"
	"gantry/eval/run"
)

const evalKey = "gk_eval-e2e-key-0001"

// evalConfig serves feature triage: v1 answers category billing and
// priority 1; v2 answers category shipping (it breaks the critical case);
// v3 answers priority 2, which every other case asks for (it fixes them).
// The simulator answers with JSON that satisfies each release's schema,
// so the releases differ exactly as their schemas say.
func evalConfig() string {
	rel := func(v int, category string, priority int) string {
		return fmt.Sprintf(`      - version: %d
        system: Classify the ticket.
        template: [{role: user, content: "{{ticket}}"}]
        variables: [{name: ticket, required: true}]
        route: cheap
        schema:
          type: object
          required: [category, priority]
          properties:
            category: {enum: [%s]}
            priority: {enum: [%d]}
`, v, category, priority)
	}
	return `providers:
  - name: sim
    kind: sim
    sim: {latency_p50: 2ms, latency_p99: 10ms, seed: 5}
models:
  - name: sim-small
    provider: sim
    price: {input: 0.15, output: 0.60}
routes:
  - name: cheap
    targets: [{model: sim-small, weight: 1}]
features:
  - name: triage
    releases:
` + rel(1, "billing", 1) + rel(2, "shipping", 1) + rel(3, "billing", 2) + `    labels: {production: 1}
    eval: {dataset: triage-cases, gate: true}
keys:
  - name: evaluator
    hash: ` + config.HashKey(evalKey) + `
    eval: true
`
}

// evalDataset: the critical case wants category billing, the ten others
// priority 2.
func evalDataset() string {
	var b strings.Builder
	b.WriteString("name: triage-cases\nassert: [{type: is-json}]\ncases:\n")
	b.WriteString("  - id: critical-billing\n    critical: true\n    vars: {ticket: \"charged twice\"}\n    assert: [{type: json-path, path: $.category, value: billing}]\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  - id: urgent-%d\n    vars: {ticket: \"ticket %d\"}\n    assert: [{type: json-path, path: $.priority, value: 2}]\n", i, i)
	}
	return b.String()
}

// gantry runs this binary as the gantry command against agent a and
// returns its standard output, and its error with standard error.
func gantry(t *testing.T, a *agentProc, runsDir string, args ...string) (string, error) {
	t.Helper()
	all := append(append([]string{}, args...), "--agent", "http://"+a.http, "--token", clusterAdmin)
	if args[0] == "eval" {
		all = append(all, "--key", evalKey, "--runs-dir", runsDir)
	}
	cmd := exec.Command(os.Args[0], all...)
	cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("gantry %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// TestEvaluationGatesPromotion runs `gantry eval` processes against three
// agent processes: a release that breaks a critical case is judged a
// regression and its promotion refused, one that fixes cases is judged
// improved and promotes.
func TestEvaluationGatesPromotion(t *testing.T) {
	c := startClusterWith(t, evalConfig())
	c.waitConverged(60 * time.Second)
	runs := t.TempDir()
	a := c.agents[1]
	file := filepath.Join(t.TempDir(), "triage-cases.yaml")
	if err := os.WriteFile(file, []byte(evalDataset()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := gantry(t, a, runs, "dataset", "push", "-f", file); err != nil || !strings.Contains(out, "version 1 with 11 cases") {
		t.Fatalf("push: %v\n%s", err, out)
	}

	// The production release on its own.
	out, err := gantry(t, a, runs, "eval", "run", "--feature", "triage", "--release", "1", "--dataset", "triage-cases", "--repeat", "2", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var sum run.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("run -o json: %v\n%s", err, out)
	}
	if sum.Cases != 11 || sum.Passed != 1 || sum.Failed != 10 || sum.CriticalFailed != 0 || sum.CostUSD <= 0 {
		t.Fatalf("run of v1: %+v", sum)
	}

	// v2 breaks the critical case: regression, and the gate refuses it.
	out, err = gantry(t, c.agents[2], runs, "eval", "compare", "--feature", "triage", "--candidate", "2", "--dataset", "triage-cases", "-o", "json")
	if err == nil {
		t.Fatalf("compare of a regression exited 0:\n%s", out)
	}
	var v compare.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("compare -o json: %v\n%s", err, out)
	}
	if v.Verdict != compare.Regression || len(v.CriticalFailures) != 1 || v.CriticalFailures[0] != "critical-billing" || v.BaselineRun != sum.RunID {
		t.Fatalf("verdict of v2: %+v", v)
	}
	if _, err := gantry(t, a, runs, "release", "promote", "triage", "2"); err == nil || !strings.Contains(err.Error(), "gated") {
		t.Fatalf("promotion of v2: %v", err)
	}
	if _, err := gantry(t, a, runs, "release", "promote", "triage", "3"); err == nil || !strings.Contains(err.Error(), "no comparison") {
		t.Fatalf("promotion of v3 before any comparison: %v", err)
	}

	// v3 fixes ten cases and breaks none: improved, and it promotes.
	out, err = gantry(t, c.agents[0], runs, "eval", "compare", "--feature", "triage", "--candidate", "3", "--dataset", "triage-cases", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Verdict != compare.Improved || v.McNemar.Fixed != 10 || v.McNemar.Broke != 0 {
		t.Fatalf("verdict of v3: %v %+v", err, v)
	}
	if _, err := gantry(t, a, runs, "release", "promote", "triage", "3"); err != nil {
		t.Fatal(err)
	}
	var f api.Feature
	if _, err := c.call(a, "GET", api.ReleasesPath("triage")+"?consistent=1", nil, &f); err != nil || f.Labels.Production != 3 {
		t.Fatalf("production after promoting v3: %v %+v", err, f.Labels)
	}
	// Evaluation calls (66 of them over three agents) stayed out of the
	// production counters: one production call later, once every agent
	// has committed its counts twice over, the cluster counts one call.
	invoke(t, a, "triage", `{"vars":{"ticket":"where is my parcel"}}`)
	total := func() int64 {
		var st api.ClusterStats
		if _, err := c.call(a, "GET", api.PathReleaseStats+"?consistent=1&feature=triage", nil, &st); err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, r := range st.Releases {
			n += r.Total.Requests
		}
		return n
	}
	c.waitFor("the production call is counted", 30*time.Second, func() bool { return total() > 0 })
	time.Sleep(11 * time.Second)
	if n := total(); n != 1 {
		t.Fatalf("the cluster counts %d calls of triage; the one production call only was expected", n)
	}
}

// invoke calls a feature with the evaluation key, as production traffic.
func invoke(t *testing.T, a *agentProc, feature, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+a.http+"/v1/features/"+feature+"/invoke", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+evalKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("invoke %s: %d", feature, resp.StatusCode)
	}
}

// canaryConfig serves, for each seed, a feature bad-N whose canary fails
// validation twice as often as its production (20% against 10%), and a
// feature equal-N whose canary fails as often (10%). Each release calls a
// simulator of its own with its own seed. A release repairs up to three
// times, so the calls still succeed: what differs is validation failures.
func canaryConfig(seeds []int) string {
	var providers, models, features strings.Builder
	release := func(v int, model string) string {
		return fmt.Sprintf(`      - version: %d
        system: Answer.
        template: [{role: user, content: "{{q}}"}]
        variables: [{name: q, required: true}]
        route: %s
        repair: 3
        schema: {type: object, required: [answer], properties: {answer: {type: string}}}
`, v, model)
	}
	for _, seed := range seeds {
		for _, kind := range []struct {
			name    string
			canary  float64
			seedOff int
		}{{"bad", 0.2, 0}, {"equal", 0.1, 1000}} {
			f := fmt.Sprintf("%s-%d", kind.name, seed)
			for _, side := range []struct {
				name string
				rate float64
				seed int
			}{{"p", 0.1, seed*10 + kind.seedOff}, {"c", kind.canary, seed*10 + kind.seedOff + 1}} {
				fmt.Fprintf(&providers, "  - {name: %s-%s, kind: sim, sim: {latency_p50: 2ms, latency_p99: 8ms, invalid_rate: %g, seed: %d}}\n", side.name, f, side.rate, side.seed)
				fmt.Fprintf(&models, "  - {name: m-%s-%s, provider: %s-%s, price: {input: 0.15, output: 0.60}}\n", side.name, f, side.name, f)
			}
			fmt.Fprintf(&features, "  - name: %s\n    releases:\n%s%s    labels: {production: 1, canary: 2, canary_weight: 50}\n    canary: {on_regression: rollback, min_samples: 100, max_duration: 10m, max_cost_increase: 2}\n",
				f, release(1, "m-p-"+f), release(2, "m-c-"+f))
		}
	}
	return "providers:\n" + providers.String() + "models:\n" + models.String() + "features:\n" + features.String() +
		"keys:\n  - name: app\n    hash: " + config.HashKey(evalKey) + "\n"
}

// TestCanaryRollsBackARegressionOnly drives 20 calls per second to each
// of six features over three agent processes, half of each feature's
// traffic to its canary, and checks that the leader rolls back every
// canary with twice production's validation failures, once each, audited
// with its numbers and counted in metrics, and none of the equal ones.
//
// At a 10% canary weight 20 calls per second give the canary 120 calls a
// minute, too few to be sure of a 10-point difference within one; this
// test uses a 50% weight (600 canary calls a minute) and allows two and
// a half minutes, and logs how long each detection took.
func TestCanaryRollsBackARegressionOnly(t *testing.T) {
	seeds := []int{1, 2, 3}
	c := startClusterWith(t, canaryConfig(seeds))
	c.waitConverged(60 * time.Second)
	var bad, equal []string
	for _, s := range seeds {
		bad = append(bad, fmt.Sprintf("bad-%d", s))
		equal = append(equal, fmt.Sprintf("equal-%d", s))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	hc := &http.Client{Timeout: 10 * time.Second}
	for i, f := range append(append([]string{}, bad...), equal...) {
		wg.Go(func() {
			tick := time.NewTicker(50 * time.Millisecond) // 20 calls per second
			defer tick.Stop()
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				a := c.agents[n%len(c.agents)]
				req, _ := http.NewRequest("POST", "http://"+a.http+"/v1/features/"+f+"/invoke", strings.NewReader(`{"vars":{"q":"where is my order?"}}`))
				req.Header.Set("Authorization", "Bearer "+evalKey)
				resp, err := hc.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	start := time.Now()
	canaryOf := func(f string) api.Canary {
		var out api.Canary
		if _, err := c.call(c.agents[0], "GET", api.CanaryPath(f)+"?consistent=1", nil, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	detected := map[string]time.Duration{}
	c.waitFor("every worse canary is rolled back", 150*time.Second, func() bool {
		for _, f := range bad {
			if _, ok := detected[f]; ok {
				continue
			}
			if cn := canaryOf(f); cn.Action == "rolled_back" {
				detected[f] = cn.Decided.Sub(cn.Began)
				t.Logf("%s rolled back %s after its analysis began (%s of traffic): %s", f, detected[f].Round(time.Second), time.Since(start).Round(time.Second), cn.Decision.Reason)
			}
		}
		return len(detected) == len(bad)
	})
	// The equal canaries keep going a while longer.
	time.Sleep(15 * time.Second)
	// A failed validation is repaired with a second model call, so the
	// worse canary is also slower: either shows first. It is dearer too
	// (repairs are paid for), about a fifth; the features allow three
	// times production's cost so that the sequential tests decide here.
	caused := map[string]bool{"validation_failure_rate": true, "latency_p95": true}
	for _, f := range bad {
		cn := canaryOf(f)
		if cn.Live || cn.Decision == nil || cn.Decision.Outcome != "regression" || !caused[cn.Decision.Metric] {
			t.Fatalf("%s: %+v %+v", f, cn, cn.Decision)
		}
		var feat api.Feature
		c.call(c.agents[1], "GET", api.ReleasesPath(f)+"?consistent=1", nil, &feat)
		if feat.Labels.Production != 1 || feat.Labels.Canary != 0 {
			t.Fatalf("%s labels after the rollback: %+v", f, feat.Labels)
		}
	}
	for _, f := range equal {
		if cn := canaryOf(f); !cn.Live || cn.Decision != nil {
			t.Fatalf("an equal canary was decided: %s %+v", f, cn)
		}
	}
	// One rollback each, audited with the numbers.
	var audit api.AuditList
	if _, err := c.call(c.agents[2], "GET", api.PathAudit+"?limit=1000", nil, &audit); err != nil {
		t.Fatal(err)
	}
	rollbacks := map[string]int{}
	for _, e := range audit.Entries {
		if strings.HasPrefix(e.Reason, "automatic rollback") {
			rollbacks[strings.TrimPrefix(e.Target, "labels/")]++
			if !strings.Contains(e.Reason, "always-valid p =") || !strings.Contains(e.Reason, "canary and") {
				t.Fatalf("rollback audited without its numbers: %q", e.Reason)
			}
		}
	}
	for _, f := range bad {
		if rollbacks[f] != 1 {
			t.Fatalf("%s rolled back %d times, want once (audit: %v)", f, rollbacks[f], rollbacks)
		}
	}
	if len(rollbacks) != len(bad) {
		t.Fatalf("rollbacks of %v, want only %v", rollbacks, bad)
	}
	counted := 0
	for _, a := range c.agents {
		resp, err := c.hc.Get("http://" + a.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		for line := range strings.Lines(b.String()) {
			if strings.HasPrefix(line, "gantry_canary_decisions_total{") && strings.Contains(line, `action="rolled_back"`) {
				counted += int(mustFloat(t, strings.Fields(line)[1]))
			}
		}
	}
	if counted != len(bad) {
		t.Fatalf("gantry_canary_decisions_total counts %d rollbacks over the agents, want %d", counted, len(bad))
	}
	within := 0
	for _, d := range detected {
		if d <= time.Minute {
			within++
		}
	}
	t.Logf("%d of %d worse canaries rolled back within a minute of their analysis; %d calls sent, %d failed", within, len(bad), sent.Load(), failed.Load())
	if failed.Load() > sent.Load()/100 {
		t.Fatalf("%d of %d calls failed", failed.Load(), sent.Load())
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}
