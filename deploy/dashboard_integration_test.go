//go:build integration

// Package deploy holds Gantry's operations files: the container image,
// the systemd unit, Prometheus rules, the Grafana dashboard and the
// operator docs. Its tests run the real programs: a Gantry agent built
// from this checkout, scraped by a real Prometheus.
//
// They build only with -tags integration (.ci/run passes it): they need
// the Debian prometheus package, and fail with a message saying so when
// it is missing.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"gantry/internal/proctest"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	devKey   = "gk_dashboard-test-key"
	devToken = "gat_dashboard-test-token"
)

// TestDashboardQueriesReturnData starts a Gantry agent from the built
// binary with simulated traffic and a Prometheus scraping it, then runs
// every query of the Grafana dashboard through Prometheus' HTTP API: each
// must return data. It also checks that Prometheus loads and evaluates the
// alerting rules without error.
func TestDashboardQueriesReturnData(t *testing.T) {
	promBin := needBinary(t, "prometheus", "apt-get install prometheus")
	built := time.Now()
	bin := buildGantry(t)
	t.Logf("built the static binary in %v", time.Since(built).Round(time.Second))
	dir := t.TempDir()

	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, exampleWithFailingFeature(t), 0o600); err != nil {
		t.Fatal(err)
	}
	agentAddr := proctest.FreeAddr(t)
	proctest.Start(t, "agent", bin, "agent", "--dev", "--config", cfg, "--http-addr", agentAddr,
		"--data-dir", filepath.Join(dir, "agent"), "--dev-key", devKey, "--dev-admin-token", devToken, "--log-level", "warn")
	agent := "http://" + agentAddr
	waitOK(t, agent+"/readyz", 30*time.Second)

	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { traffic(ctx, agent) })
	defer func() {
		stop()
		wg.Wait()
	}()

	rules, err := filepath.Abs(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	promAddr := proctest.FreeAddr(t)
	promCfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promCfg, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: gantry
    static_configs:
      - targets: [%q]
`, rules, agentAddr))
	proctest.Start(t, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	prom := "http://" + promAddr
	waitOK(t, prom+"/-/ready", 30*time.Second)

	queries := dashboardQueries(t, filepath.Join("grafana", "gantry.json"))
	if len(queries) < 20 {
		t.Fatalf("found %d panel queries in the dashboard; the file lost its panels?", len(queries))
	}
	// Rates need two scrapes of a series; the traffic needs a few rounds to
	// produce every kind of event. Poll until all queries have data.
	began := time.Now()
	deadline := began.Add(90 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		for _, q := range queries {
			n, err := promQuery(t, prom, q.expr)
			if err != nil {
				t.Fatalf("panel %q: Prometheus refused %s: %v", q.panel, q.expr, err)
			}
			if n == 0 {
				missing = append(missing, fmt.Sprintf("panel %q: %s", q.panel, q.expr))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d dashboard queries returned no data:\n%s", len(missing), len(queries), strings.Join(missing, "\n"))
	}
	t.Logf("all %d dashboard queries returned data after %v of scraping", len(queries), time.Since(began).Round(time.Second))
	checkRules(t, prom)
}

// exampleWithFailingFeature is the dev example configuration plus a
// feature whose schema the simulator cannot meet (it does not honour
// uniqueItems), so validation failures happen on every call.
func exampleWithFailingFeature(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "config", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const extra = `  - name: tagger
    description: Tags a ticket; its schema asks for what the simulator does not honour.
    releases:
      - version: 1
        system: Tag the ticket.
        template:
          - role: user
            content: "{{ticket}}"
        variables:
          - {name: ticket, type: string, required: true}
        route: cheap
        schema:
          type: object
          required: [tags]
          properties:
            tags: {type: array, items: {enum: [urgent]}, minItems: 2, uniqueItems: true}
        repair: 0
    labels: {production: 1}

`
	i := bytes.Index(b, []byte("\nbudgets:"))
	if i < 0 {
		t.Fatal("config/example.yaml has no budgets section to insert a feature before")
	}
	return append(append(append([]byte{}, b[:i+1]...), extra...), b[i+1:]...)
}

// traffic sends a mix of calls until ctx ends: plain and streamed model
// calls, feature calls on the canaried feature, cached and failing
// features, a name the gateway does not serve, and feedback.
func traffic(ctx context.Context, agent string) {
	c := &http.Client{Timeout: 30 * time.Second}
	send := func(path, body string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, agent+path, strings.NewReader(body))
		if err != nil {
			return nil
		}
		req.Header.Set("Authorization", "Bearer "+devKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return nil
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	var traces []string
	for round := 0; ctx.Err() == nil; round++ {
		send("/v1/chat/completions", `{"model":"default","messages":[{"role":"user","content":"Where is my order?"}]}`)
		if r := send("/v1/chat/completions", `{"model":"feature/support-answer","stream":true,"metadata":{"customer":"Ana","question":"Where is my order?"},"messages":[{"role":"user","content":"It was due Monday."}]}`); r != nil {
			if tp := r.Header.Get("Traceparent"); len(tp) == 55 {
				traces = append(traces, tp[3:35])
			}
		}
		send("/v1/chat/completions", `{"model":"sim-unreliable","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		send("/v1/features/ticket-triage/invoke", fmt.Sprintf(`{"vars":{"ticket":"parcel %d never arrived"}}`, round%3))
		send("/v1/features/tagger/invoke", `{"vars":{"ticket":"refund please"}}`)
		send("/v1/chat/completions", `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`)
		// Feedback on a call from an earlier round: its trace is stored by now.
		if len(traces) > 1 {
			thumbs := [...]string{"up", "down"}[round%2]
			send("/v1/feedback", fmt.Sprintf(`{"trace_id":%q,"thumbs":%q}`, traces[len(traces)-2], thumbs))
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type panelQuery struct{ panel, expr string }

// dashboardQueries reads every target of every panel, rows included, with
// Grafana's variables replaced as Grafana would for "All" over a short
// range.
func dashboardQueries(t *testing.T, path string) []panelQuery {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string                  `json:"title"`
		Targets []struct{ Expr string } `json:"targets"`
		Panels  []json.RawMessage       `json:"panels"`
	}
	var dash struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	vars := strings.NewReplacer("$__rate_interval", "30s", "$__range", "5m", "$feature", ".*")
	var out []panelQuery
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: panel: %v", path, err)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Fatalf("panel %q has a target without a query", p.Title)
				}
				out = append(out, panelQuery{p.Title, vars.Replace(tg.Expr)})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	return out
}

// promQuery runs an instant query and returns how many series it gave.
func promQuery(t *testing.T, prom, expr string) (int, error) {
	t.Helper()
	resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	return len(r.Data.Result), nil
}

// checkRules waits until Prometheus has evaluated every alerting rule and
// fails on any that errs.
func checkRules(t *testing.T, prom string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(prom + "/api/v1/rules")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Data struct {
				Groups []struct {
					Name  string `json:"name"`
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		n, pending := 0, 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				n++
				switch rule.Health {
				case "ok":
				case "err":
					t.Fatalf("rule %s in %s: %s", rule.Name, g.Name, rule.LastError)
				default:
					pending++
				}
			}
		}
		if n == 0 {
			t.Fatal("Prometheus loaded no alerting rules")
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rules not evaluated after 30s", pending, n)
		}
		time.Sleep(time.Second)
	}
}

// needBinary finds a program the test runs, or fails saying how to get it.
func needBinary(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not on PATH: %s (.ci/run installs it)", name, install)
	}
	return p
}

// buildGantry builds the gantry binary from this checkout with the
// Dockerfile's own build line, so the tests run what the image ships.
func buildGantry(t *testing.T) string {
	t.Helper()
	line := dockerBuildLine(t)
	bin := filepath.Join(t.TempDir(), "gantry")
	line = strings.NewReplacer("${VERSION}", testVersion, "/out/gantry", bin).Replace(line)
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return bin
}

const testVersion = "v0.0.0-test"

// dockerBuildLine is the command of the Dockerfile's RUN line that builds
// the binary.
func dockerBuildLine(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, l := range strings.Split(string(b), "\n") {
		if cmd, ok := strings.CutPrefix(l, "RUN "); ok && strings.Contains(cmd, "go build") {
			found = append(found, cmd)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Dockerfile: %d RUN lines with go build, want 1", len(found))
	}
	return found[0]
}

func waitOK(t *testing.T, u string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v (last error %v)", u, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
