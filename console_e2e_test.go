package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"gantry/api"
	"gantry/config"
)

// tmuxConsole is a terminal in a private tmux server: the console runs in
// it as an operator would run it, and the test reads the screen.
type tmuxConsole struct {
	t      *testing.T
	sock   string
	stderr string // where the command's stderr goes
}

// startTmux runs command (a shell command line) in a 120x40 tmux session.
func startTmux(t *testing.T, command string) *tmuxConsole {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed; .ci/run installs it")
	}
	dir := t.TempDir()
	c := &tmuxConsole{t: t, sock: filepath.Join(dir, "tmux.sock"), stderr: filepath.Join(dir, "stderr.log")}
	c.run("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", command+" 2>"+c.stderr)
	t.Cleanup(func() { exec.Command("tmux", "-S", c.sock, "kill-server").Run() })
	return c
}

func (c *tmuxConsole) run(args ...string) string {
	c.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", c.sock}, args...)...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("tmux %s: %v: %s%s", strings.Join(args, " "), err, out, c.stderrText())
	}
	return string(out)
}

func (c *tmuxConsole) stderrText() string {
	b, _ := os.ReadFile(c.stderr)
	if len(b) == 0 {
		return ""
	}
	return "\nconsole stderr:\n" + string(b)
}

// screen is what the terminal shows now.
func (c *tmuxConsole) screen() string {
	c.t.Helper()
	return c.run("capture-pane", "-p", "-t", "console")
}

// press sends keys one at a time, as a person types: esc followed at once
// by another key would read as alt+key.
func (c *tmuxConsole) press(keys ...string) {
	c.t.Helper()
	for _, k := range keys {
		c.run("send-keys", "-t", "console", k)
		time.Sleep(150 * time.Millisecond)
	}
}

// waitFor waits until the screen shows every one of want.
func (c *tmuxConsole) waitFor(want ...string) string {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var s string
	for time.Now().Before(deadline) {
		s = c.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("the screen never showed %q; it shows:\n%s%s", want, s, c.stderrText())
	return ""
}

// waitMatch waits until the screen matches the regular expression re.
func (c *tmuxConsole) waitMatch(re string) string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(20 * time.Second)
	var s string
	for time.Now().Before(deadline) {
		if s = c.screen(); rx.MatchString(s) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("the screen never matched %s; it shows:\n%s%s", re, s, c.stderrText())
	return ""
}

// waitGone waits for the console to quit and tmux with it.
func (c *tmuxConsole) waitGone() {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if exec.Command("tmux", "-S", c.sock, "has-session", "-t", "console").Run() != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("the console did not quit; it shows:\n%s", c.screen())
}

// selfCommand is the shell command line that runs this binary as gantry.
func selfCommand(args ...string) string {
	q := []string{"env", "GANTRY_RUN_MAIN=1", shellWord(os.Args[0])}
	for _, a := range args {
		q = append(q, shellWord(a))
	}
	return strings.Join(q, " ")
}

func shellWord(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// driveConsoleTraffic calls both features of the dev example until the test
// ends, so the console has live traces to show.
func driveConsoleTraffic(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		bodies := map[string]string{
			"ticket-triage":  `{"vars":{"ticket":"My parcel never arrived"},"user":"u-1"}`,
			"support-answer": `{"vars":{"customer":"Ana","question":"Where is my order?"},"user":"u-2"}`,
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for name, body := range bodies {
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/features/"+name+"/invoke", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e2eKey)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// consoleAdminGet reads an admin endpoint of the agent.
func consoleAdminGet[T any](t *testing.T, addr, path string) T {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+clusterAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
	return v
}

// checkServedRelease checks the label as the admin API shows it and that
// the gateway of every agent serves the release.
func checkServedRelease(t *testing.T, addrs []string, version int) {
	t.Helper()
	f := consoleAdminGet[api.Feature](t, addrs[0], api.ReleasesPath("support-answer"))
	if f.Labels.Production != version {
		t.Fatalf("production is v%d, want v%d: %+v", f.Labels.Production, version, f.Labels)
	}
	for _, addr := range addrs {
		waitServes(t, addr, version)
	}
}

// checkConsoleAudit checks that the newest audit entry is the console's
// label move by its token, naming the operator, to after.
func checkConsoleAudit(t *testing.T, addr, after string) {
	t.Helper()
	audit := consoleAdminGet[api.AuditList](t, addr, api.PathAudit+"?limit=5")
	if len(audit.Entries) == 0 || audit.Entries[0].Command != "move_label" || !strings.HasPrefix(audit.Entries[0].Actor, "token:") ||
		!strings.Contains(audit.Entries[0].Actor, " (") || audit.Entries[0].After != after {
		t.Fatalf("newest audit entry %+v, want the console's move_label by its token, naming its operator, to %s", audit.Entries, after)
	}
}

// waitServes waits until the agent's gateway serves the release from
// production.
func waitServes(t *testing.T, addr string, version int) {
	t.Helper()
	want := fmt.Sprintf("support-answer@v%d", version)
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/features/support-answer/invoke",
			strings.NewReader(`{"vars":{"customer":"Ana","question":"Where is my order?"},"user":"u-check"}`))
		req.Header.Set("Authorization", "Bearer "+e2eKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Release string `json:"release"`
			Label   string `json:"label"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out.Release == want && out.Label == config.LabelProduction {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway at %s serves %q (%s), want %s from production", addr, out.Release, out.Label, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConsoleEndToEnd runs `gantry console` in a terminal against a real
// dev agent with traffic: traces, a trace's waterfall, the releases, and a
// promotion through the confirmation dialog; then the same console over
// SSH with the OpenSSH client rolls it back.
func TestConsoleEndToEnd(t *testing.T) {
	addrs := startConsoleCluster(t)
	addr := addrs[0]
	for _, a := range addrs {
		driveConsoleTraffic(t, a)
	}

	t.Run("terminal", func(t *testing.T) {
		c := startTmux(t, selfCommand("console", "--agent", "http://"+addr, "--token", clusterAdmin))
		openReleases(t, c)
		// The example's support-answer: production v1, canary v2 at 10%.
		// Each dialog's "same as" line is a command that does what the
		// dialog would: some are run instead of confirming.
		runSameAs(t, addr, dialog(t, c, "p", "Promote support-answer v2 to production?"))
		c.press("Escape")
		checkServedRelease(t, addrs, 2)
		checkLabels(t, addr, config.Labels{Production: 2})
		c.waitMatch(`support-answer +v2 +PROD `) // the console saw it too
		dialog(t, c, "r", "Roll back support-answer production to v1?")
		confirm(t, c, "done: rollback support-answer production v2 -> v1")
		checkServedRelease(t, addrs, 1)
		checkConsoleAudit(t, addr, "production=v1")
		dialog(t, c, "w", "Send 10% of support-answer traffic to canary v2?")
		confirm(t, c, "done: canary support-answer v2 at 10%")
		checkLabels(t, addr, config.Labels{Production: 1, Canary: 2, CanaryWeight: 10})
		// A rollback during a canary ends the canary; production stays.
		dialog(t, c, "r", "End the canary v2 of support-answer? Production stays.")
		confirm(t, c, "done: rollback support-answer: end canary v2")
		checkLabels(t, addr, config.Labels{Production: 1})
		checkConsoleAudit(t, addr, "production=v1")
		checkServedRelease(t, addrs, 1)
		dialog(t, c, "w", "Send 10% of support-answer traffic to canary v2?")
		confirm(t, c, "done: canary support-answer v2 at 10%")
		runSameAs(t, addr, dialog(t, c, "a", "End the canary v2 of support-answer? Production stays."))
		c.press("Escape")
		checkLabels(t, addr, config.Labels{Production: 1})
		c.waitMatch(`support-answer +v2 +[0-9a-f]{8} `)
		c.press("q")
		c.waitGone()
	})

	t.Run("ssh", func(t *testing.T) {
		if _, err := exec.LookPath("ssh"); err != nil {
			t.Fatal("ssh is not installed; .ci/run installs openssh-client")
		}
		dir := t.TempDir()
		key := writeSSHClientKey(t, dir)
		port := startSSHConsole(t, addr, filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "host_key"))
		c := startTmux(t, strings.Join([]string{"ssh", "-tt", "-i", shellWord(key), "-p", port,
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
			"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "localhost"}, " "))
		c.run("set-option", "-s", "set-clipboard", "on")
		openReleases(t, c)
		dialog(t, c, "p", "Promote support-answer v2 to production?")
		confirm(t, c, "done: promote support-answer production v1 -> v2")
		checkServedRelease(t, addrs, 2)
		checkConsoleAudit(t, addr, "production=v2")
		// A trace id copied at the far end of SSH lands on this terminal's
		// clipboard (OSC 52).
		c.press("2", "Space")
		c.waitFor("PAUSED")
		c.press("y")
		m := regexp.MustCompile(`copied trace id (\S+) to the clipboard`).FindStringSubmatch(c.waitFor("copied trace id "))
		if buf := strings.TrimSpace(c.run("show-buffer")); m == nil || buf != m[1] {
			t.Fatalf("the clipboard holds %q after copying %v", buf, m)
		}
		c.press("q")
		c.waitGone()
	})
}

// startConsoleCluster starts three agents serving the example configuration
// (the one dev mode serves) with the e2e key, and waits until every one
// serves it. It returns their HTTP addresses.
func startConsoleCluster(t *testing.T) []string {
	t.Helper()
	example, err := os.ReadFile("config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(example) + "\nkeys:\n  - {name: dev, team: dev, hash: \"" + config.HashKey(e2eKey) + "\"}\n"
	c := startClusterWith(t, cfg)
	var addrs []string
	for _, a := range c.agents {
		addrs = append(addrs, a.http)
	}
	c.waitFor("every agent serving", 60*time.Second, func() bool {
		for _, a := range addrs {
			resp, err := c.hc.Get("http://" + a + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return false
			}
		}
		return true
	})
	return addrs
}

// openReleases walks the console: live traces, a trace, the cluster's
// members, then the releases with the cursor on support-answer v2.
func openReleases(t *testing.T, c *tmuxConsole) {
	t.Helper()
	c.waitFor("Gantry console", "Overview", "ticket-triage")
	c.press("2")
	c.waitFor("[2 traces]", "LIVE", "support-answer", "sim-")
	c.press("Enter")
	c.waitFor("> trace", "Waterfall", "route")
	c.press("Escape")
	c.press("5")                                         // the members, as GET /admin/v1/members gives them
	c.waitFor("[5 cluster]", "leader", "n1", "n2", "n3") // learned from the member list
	c.press("4")
	s := c.waitFor("[4 releases]", "History of support-answer")
	if !regexp.MustCompile(`(?m)^> support-answer +v2 `).MatchString(s) {
		t.Fatalf("the cursor is not on support-answer v2:\n%s", s)
	}
}

// dialog presses key and waits for the confirmation titled title, with
// Cancel focused; it returns the screen.
func dialog(t *testing.T, c *tmuxConsole, key, title string) string {
	t.Helper()
	c.press(key)
	return c.waitFor(title, "> Cancel <", "  Confirm  ")
}

// confirm moves to Confirm and chooses it.
func confirm(t *testing.T, c *tmuxConsole, done string) {
	t.Helper()
	c.press("Tab")
	c.waitFor("> Confirm <")
	c.press("Enter")
	c.waitFor(done)
}

var sameAsLine = regexp.MustCompile(`same as +(gantry [^│]*?) *│`)

// runSameAs runs the command a dialog says it is the same as, through the
// gantry binary against addr.
func runSameAs(t *testing.T, addr, screen string) {
	t.Helper()
	m := sameAsLine.FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("the dialog shows no command:\n%s", screen)
	}
	args := append(strings.Fields(m[1])[1:], "--agent", "http://"+addr, "--token", clusterAdmin)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", m[1], err, out)
	}
}

// checkLabels waits until addr reports the labels of support-answer.
func checkLabels(t *testing.T, addr string, want config.Labels) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f := consoleAdminGet[api.Feature](t, addr, api.ReleasesPath("support-answer"))
		if f.Labels == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("support-answer labels %+v, want %+v", f.Labels, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeSSHClientKey writes an ed25519 key for ssh -i and an authorized_keys
// file admitting it; it returns the key's path.
func writeSSHClientKey(t *testing.T, dir string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "e2e operator")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), gossh.MarshalAuthorizedKey(sp), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var sshListenLine = regexp.MustCompile(`serving over SSH on 127\.0\.0\.1:(\d+)`)

// startSSHConsole runs `gantry console --ssh-listen` as a process and
// returns its port.
func startSSHConsole(t *testing.T, addr, authorizedKeys, hostKey string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "console", "--agent", "http://"+addr, "--token", clusterAdmin,
		"--ssh-listen", "127.0.0.1:0", "--authorized-keys", authorizedKeys, "--host-key", hostKey)
	cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1")
	errOut, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	port := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errOut)
		for sc.Scan() {
			if m := sshListenLine.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
			} else {
				t.Logf("console: %s", sc.Text())
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { wg.Wait(); done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("SSH console did not exit cleanly on SIGTERM: %v", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("SSH console did not stop within 15s of SIGTERM")
		}
	})
	select {
	case p := <-port:
		return p
	case <-time.After(15 * time.Second):
		t.Fatal("the SSH console printed no address within 15s")
		return ""
	}
}
