package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	demoAgentLine = regexp.MustCompile(`^\s*agent-\d\s+(http://127\.0\.0\.1:\d+)$`)
	stoppedIn     = regexp.MustCompile(`demo: stopped in (\S+);`)
)

// A newcomer runs `gantry demo --headless`: within 15 s three agents serve
// the simulated users' traffic, and Ctrl-C stops everything and removes
// the demo's data within 2 s.
func TestDemoHeadless(t *testing.T) {
	tmp := t.TempDir()
	began := time.Now()
	cmd, out, logs, done := startNewcomer(t, tmp, "demo", "--headless")

	var agents, banner []string
	var dataDir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		banner = append(banner, line)
		if m := demoAgentLine.FindStringSubmatch(line); m != nil {
			agents = append(agents, m[1])
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "data"); ok {
			dataDir = strings.Fields(rest)[0]
		}
		if strings.HasPrefix(line, "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, out)
	text := strings.Join(banner, "\n")
	if len(agents) != 3 || dataDir == "" || !strings.HasPrefix(dataDir, tmp) {
		t.Fatalf("want three agent URLs and a data directory under TMPDIR in:\n%s\n%s", text, logs.String())
	}
	for _, v := range []string{"export GANTRY_AGENT=", "export GANTRY_TOKEN=", "export GANTRY_KEY=", " console "} {
		if !strings.Contains(text, v) {
			t.Errorf("the demo's banner lacks %q:\n%s", v, text)
		}
	}

	// Each agent counts the calls it answered; every one must have some.
	deadline := began.Add(15 * time.Second)
	for _, a := range agents {
		for {
			n := answered(t, a)
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s answered no call within 15s of the demo's start:\n%s", a, logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The demo reports how long its stop took, from the signal to its data
	// removed: that is the 2 s it promises. The process itself must be
	// gone soon after; the bound on that is looser because this binary
	// may run under the race detector on a loaded machine.
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("demo exit after SIGINT: %v\n%s", err, logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("demo still running 5s after SIGINT:\n%s", logs.String())
	}
	m := stoppedIn.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("the demo did not say how long its stop took:\n%s", logs.String())
	}
	if took, err := time.ParseDuration(m[1]); err != nil || took >= 2*time.Second {
		t.Errorf("the demo took %s to stop, want under 2s:\n%s", m[1], logs.String())
	}
	if strings.Contains(logs.String(), "killed") {
		t.Logf("an agent was killed (allowed: the demo's data is discarded):\n%s", logs.String())
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the demo's data %s is still there (%v)", dataDir, err)
	}
	for _, a := range agents {
		if resp, err := http.Get(a + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after the demo stopped", a)
		}
	}
}

// answered sums an agent's gantry_requests_total over answered calls.
func answered(t *testing.T, agent string) float64 {
	t.Helper()
	resp, err := http.Get(agent + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", agent, err)
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "gantry_requests_total{") && strings.Contains(line, `code="2xx"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += v
		}
	}
	return n
}
