package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
)

// drillConfig serves support-answer from a healthy simulated model in
// production, and half of its traffic to a canary release on sim-flaky,
// whose provider fails every call: the model is down, its circuit opens
// after three failures, and the canary regresses against production.
func drillConfig() string {
	release := func(v int, route string) string {
		return fmt.Sprintf(`      - version: %d
        system: Answer the customer.
        template: [{role: user, content: "{{q}}"}]
        variables: [{name: q, required: true}]
        route: %s
`, v, route)
	}
	return `providers:
  - {name: sim, kind: sim, sim: {latency_p50: 5ms, latency_p99: 20ms, output_tokens: 20}}
  - {name: sim-down, kind: sim, sim: {latency_p50: 5ms, latency_p99: 20ms, output_tokens: 20, error_rate: 1}}
models:
  - {name: sim-good, provider: sim, price: {input: 0.15, output: 0.60}}
  - {name: sim-flaky, provider: sim-down, price: {input: 1.00, output: 4.00}}
routes:
  - name: flaky
    targets: [{model: sim-flaky, weight: 1}]
    breaker: {failures: 3, cooldown: 60s}
features:
  - name: support-answer
    releases:
` + release(1, "sim-good") + release(2, "flaky") + `    labels: {production: 1, canary: 2, canary_weight: 50}
    canary: {on_regression: alert, min_samples: 10, max_duration: 10m}
keys:
  - {name: app, hash: "` + config.HashKey(e2eKey) + `"}
`
}

// driveDrillTraffic sends about 30 calls a second to support-answer over
// the three agents until the test ends; it returns how many it sent.
func driveDrillTraffic(t *testing.T, addrs []string) *atomic.Int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var sent atomic.Int64
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 10 * time.Second}
	for i, addr := range addrs {
		wg.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				body := fmt.Sprintf(`{"vars":{"q":"Where is my order?"},"user":"u-%d"}`, (n*len(addrs)+i)%40)
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/features/support-answer/invoke", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e2eKey)
				if resp, err := hc.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					sent.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &sent
}

// TestIncidentDrill is an on-call engineer's first minutes, in a terminal,
// against three agents: a model goes down (its circuit opens) and the
// canary that uses it regresses. Both alerts must be on the overview
// within 10 s of the first failing call; from there the operator reaches
// the failing model's traces, rolls the canary back in at most five
// keystrokes, and finds the rollback in the audit log under their name.
// Keystrokes and seconds are counted and logged.
func TestIncidentDrill(t *testing.T) {
	c := startClusterWith(t, drillConfig())
	c.waitConverged(60 * time.Second)
	var addrs []string
	for _, a := range c.agents {
		addrs = append(addrs, a.http)
	}

	// The operator at the keyboard is oncall-ana; the console tells the
	// agents so with each change it sends.
	con := startTmux(t, "USER=oncall-ana "+selfCommand("console", "--agent", "http://"+addrs[0], "--token", clusterAdmin, "--bell"))
	// tmux keeps what a program copies with OSC 52 as a paste buffer, and
	// runs a hook when the program rings the bell.
	con.run("set-option", "-s", "set-clipboard", "on")
	rang := filepath.Join(t.TempDir(), "bell")
	con.run("set-hook", "-g", "alert-bell", "run-shell 'touch "+rang+"'")
	con.waitFor("Gantry console", "Overview", "support-answer")
	time.Sleep(3 * time.Second) // a poll or two of alerts: nothing is wrong yet
	if _, err := os.Stat(rang); err == nil {
		t.Fatal("the bell rang before anything went wrong")
	}
	keys := 0
	press := func(k ...string) {
		t.Helper()
		con.press(k...)
		keys += len(k)
	}

	// The incident: traffic reaches the canary's model, which fails.
	start := time.Now()
	sent := driveDrillTraffic(t, addrs)
	breaker := regexp.MustCompile(`CRIT +\S+ +sim-flaky: circuit open`)
	canary := regexp.MustCompile(`CRIT +\S+ +canary support-answer@v2 regressed`)
	var screen string
	for {
		screen = con.screen()
		if breaker.MatchString(screen) && canary.MatchString(screen) {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("after %s the overview does not show both alerts (%d calls sent); it shows:\n%s%s",
				time.Since(start).Round(time.Second), sent.Load(), screen, con.stderrText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := time.Since(start)
	t.Logf("both alerts on the overview %.1fs after the first failing call (%d calls sent)", seen.Seconds(), sent.Load())
	if seen > 10*time.Second {
		t.Errorf("the overview showed both alerts after %.1fs, want within 10s:\n%s", seen.Seconds(), screen)
	}
	// The operator asked for the bell: the new critical alerts rang it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(rang); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bell did not ring for the new critical alerts")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// From the overview to the failing model's traces: the alerts view,
	// down to the open circuit, and enter follows its link.
	mark := keys
	press("7")
	screen = con.waitFor("[7 alerts]", "breaker_open")
	down := alertIndex(t, screen, "breaker_open")
	for range down {
		press("j")
	}
	press("Enter")
	screen = con.waitMatch(`(?s)\[2 traces\].*ERR.*/model:sim-flaky `)
	rows := regexp.MustCompile(`(?m)^[> ] \d\d:\d\d:\d\d .*sim-flaky +ERR \d+`).FindAllString(screen, -1)
	if len(rows) == 0 {
		t.Fatalf("no failed call of sim-flaky in the traces view:\n%s", screen)
	}
	if strings.Contains(screen, "sim-good") {
		t.Fatalf("the traces view shows calls of another model under the alert's filter:\n%s", screen)
	}
	t.Logf("overview to the failing model's traces: %d keystrokes, %d failed calls on screen", keys-mark, len(rows))

	// The table paused, the selected trace's id goes to the clipboard, for
	// the ticket.
	press("Space")
	con.waitFor("PAUSED")
	press("y")
	screen = con.waitFor("copied trace id ")
	id := regexp.MustCompile(`copied trace id (\S+) to the clipboard`).FindStringSubmatch(screen)
	if id == nil || !strings.Contains(screen, "> ") {
		t.Fatalf("no copied id on screen:\n%s", screen)
	}
	if buf := strings.TrimSpace(con.run("show-buffer")); buf != id[1] {
		t.Fatalf("the terminal's clipboard holds %q, want the trace id %s", buf, id[1])
	}
	// The id is the selected row's, the top one.
	sel := regexp.MustCompile(`(?m)^> .*sim-flaky +ERR \d+ .* ([0-9a-f]{8})$`).FindStringSubmatch(screen)
	if sel == nil || !strings.HasPrefix(id[1], sel[1]) {
		t.Fatalf("copied %s, not the selected row's id:\n%s", id[1], screen)
	}

	// The health view says the same from the model's side: its circuit is
	// open, its errors are by kind, the healthy model's is closed.
	press("8")
	screen = con.waitMatch(`(?m)^> sim-flaky +sim-down +OPEN +\d+ +100% `)
	if !regexp.MustCompile(`(?m)^  sim-good +sim +closed +\d+ +0% `).MatchString(screen) || !strings.Contains(screen, "all calls ") {
		t.Fatalf("the health view does not show the healthy model and the totals:\n%s", screen)
	}

	// Back to the overview, and the canary rolled back from there.
	press("1")
	con.waitFor("[1 overview]")
	mark = keys
	press("r")
	con.waitFor("End the canary v2 of support-answer? Production stays.", "> Cancel <")
	press("Tab")
	con.waitFor("> Confirm <")
	press("Enter")
	con.waitFor("done: rollback support-answer: end canary v2")
	rollbackKeys := keys - mark
	t.Logf("canary rolled back from the overview in %d keystrokes", rollbackKeys)
	if rollbackKeys > 5 {
		t.Errorf("rolling the canary back took %d keystrokes, want at most 5", rollbackKeys)
	}
	checkLabels(t, addrs[1], config.Labels{Production: 1})

	// The audit view names who did it.
	press("9")
	screen = con.waitMatch(`(?m)^> \d\d:\d\d:\d\d token:\S+ \(local:oncall-ana\) +move_label +labels/support-answer`)
	if !regexp.MustCompile(`(?m)^  - \S*canary: v2@50%$`).MatchString(screen) {
		t.Fatalf("the audit view does not show what the rollback changed:\n%s", screen)
	}
	audit := consoleAdminGet[api.AuditList](t, addrs[2], api.PathAudit+"?kind=move_label&limit=1")
	if len(audit.Entries) != 1 || !strings.Contains(audit.Entries[0].Actor, "(local:oncall-ana)") {
		t.Fatalf("the cluster's audit log: %+v, want the rollback by oncall-ana", audit.Entries)
	}
	t.Logf("drill done in %.1fs and %d keystrokes", time.Since(start).Seconds(), keys)
	press("q")
	con.waitGone()
}

// alertIndex is the place of the first alert of kind in the alerts view.
func alertIndex(t *testing.T, screen, kind string) int {
	t.Helper()
	i := 0
	for _, l := range strings.Split(screen, "\n") {
		if !regexp.MustCompile(`^[> ] (CRIT|WARN|INFO) `).MatchString(l) {
			continue
		}
		if strings.Contains(l, " "+kind+" ") {
			return i
		}
		i++
	}
	t.Fatalf("no %s alert in the alerts view:\n%s", kind, screen)
	return 0
}

// TestConsoleFailsFast: `gantry console` with a wrong token, or pointed
// where no agent listens, exits at once with what to fix instead of
// waiting on an empty screen; the SSH server refuses to start the same way.
func TestConsoleFailsFast(t *testing.T) {
	addr := startDevAgent(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong token", []string{"console", "--agent", "http://" + addr, "--token", "gat_wrong"}, "refused the admin token (401"},
		{"nobody listens", []string{"console", "--agent", "http://" + nobody, "--token", "gat_e2e"}, "cannot reach agent http://" + nobody},
		{"ssh, wrong token", []string{"console", "--agent", "http://" + addr, "--token", "gat_wrong", "--ssh-listen", "127.0.0.1:0",
			"--authorized-keys", "/dev/null", "--host-key", filepath.Join(t.TempDir(), "host_key")}, "refused the admin token (401"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], c.args...)
			cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			t.Logf("exited after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(string(out)))
			if err == nil {
				t.Fatalf("exited 0, want a failure: %s", out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("output %q does not say %q", out, c.want)
			}
			if took > 10*time.Second {
				t.Fatalf("took %s to fail", took)
			}
		})
	}
}

// TestConsoleForgetsRemovedMember: an agent stops and the console marks it
// stale; once an operator removes it from the cluster the mark goes, as
// the agent did not fail: it left.
func TestConsoleForgetsRemovedMember(t *testing.T) {
	c := startClusterWith(t, drillConfig())
	c.waitConverged(60 * time.Second)
	con := startTmux(t, selfCommand("console", "--agent", "http://"+c.agents[0].http, "--token", clusterAdmin))
	con.waitFor("Gantry console", "Overview", "agents 3")
	con.press("5")
	con.waitFor("[5 cluster]", "n1", "n2", "n3")
	// An agent announces its admin address a moment after it joins; the
	// console follows an agent from then on, and only then can it mark
	// the agent stale.
	con.waitMatch(`(?m)^[> ] n3 .* http://`)

	c.agents[2].stop(t)
	con.waitFor("STALE: n3")
	cmd := exec.Command(os.Args[0], "members", "remove", "n3", "--agent", "http://"+c.agents[0].http, "--token", clusterAdmin)
	cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gantry members remove n3: %v\n%s", err, out)
	}
	screen := con.waitFor("agent n3 left the cluster")
	if strings.Contains(screen, "STALE") || regexp.MustCompile(`(?m)^[> ] n3 `).MatchString(screen) {
		t.Fatalf("n3 left the cluster but the console still shows it:\n%s", screen)
	}
	con.press("q")
	con.waitGone()
}
