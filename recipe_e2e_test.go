package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/api"
)

// readmeRecipe returns the shell block that follows the README's marker
// <!-- recipe: NAME -->.
func readmeRecipe(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- recipe: " + regexp.QuoteMeta(name) + " -->\\s*```sh\\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("the README has no recipe %q", name)
	}
	return string(m[1])
}

// TestREADMEClusterRecipe runs the README's three-agent recipe as written,
// in bash, with only its ports moved to free ones and `gantry` being this
// binary: the cluster forms, the bootstrap token lets the operator in, the
// operator's own token replaces it. Then every agent gets SIGTERM at once
// and each must stop within a few seconds.
func TestREADMEClusterRecipe(t *testing.T) {
	script := readmeRecipe(t, "cluster")
	ports := freePorts(t, 6)
	for i, p := range []string{"74${n}0", "74${n}1"} {
		// The loop builds each agent's ports from its number n.
		script = strings.ReplaceAll(script, "127.0.0.1:"+p, "127.0.0.1:${ports_"+strconv.Itoa(i)+"[$n]}")
	}
	for n := 1; n <= 3; n++ {
		script = strings.ReplaceAll(script, "127.0.0.1:74"+strconv.Itoa(n)+"0", "127.0.0.1:"+strconv.Itoa(ports[n-1]))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gantry.yaml"), []byte(clusterConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	prelude := `set -eu
gantry() { GANTRY_RUN_MAIN=1 "$GANTRY_TEST_BIN" "$@"; }
declare -a ports_0=(x ` + strconv.Itoa(ports[0]) + ` ` + strconv.Itoa(ports[1]) + ` ` + strconv.Itoa(ports[2]) + `)
declare -a ports_1=(x ` + strconv.Itoa(ports[3]) + ` ` + strconv.Itoa(ports[4]) + ` ` + strconv.Itoa(ports[5]) + `)
`
	logf, err := os.Create(filepath.Join(dir, "agents.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", prelude+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GANTRY_TEST_BIN="+os.Args[0])
	// Files, not pipes: the agents the script leaves running hold them,
	// and Wait would wait for them to close a pipe.
	outf, err := os.Create(filepath.Join(dir, "script.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer outf.Close()
	cmd.Stdout = outf
	cmd.Stderr = logf
	var out bytes.Buffer
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pgid := 0
	t.Cleanup(func() {
		if pgid != 0 {
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("script output:\n%s\nagents' log:\n%s", out.String(), tail(string(b), 6000))
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid = cmd.Process.Pid
	err = cmd.Wait()
	b, _ := os.ReadFile(outf.Name())
	out.Write(b)
	if err != nil {
		t.Fatalf("the recipe failed: %v", err)
	}
	for _, want := range []string{"n1", "n2", "n3", "leader"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("gantry get members printed no %q:\n%s", want, out.String())
		}
	}
	// The bootstrap token is revoked; the operator's own one works.
	ops, err := os.ReadFile(filepath.Join(dir, "ops.json"))
	if err != nil || !bytes.Contains(ops, []byte(`"secret"`)) {
		t.Fatalf("ops.json: %s %v", ops, err)
	}
	var secret struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(ops, &secret); err != nil {
		t.Fatal(err)
	}
	boot, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	tokens := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(ports[0])+api.PathTokens, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := tokens(string(boot)); code != http.StatusUnauthorized {
		t.Fatalf("the revoked bootstrap token: %d, want 401", code)
	}
	if code, body := tokens(secret.Secret); code != http.StatusOK || !strings.Contains(body, `"name":"bootstrap","role":"admin","revoked":true`) {
		t.Fatalf("the operator's token: %d %s, want the bootstrap token listed as revoked", code, body)
	}

	// Every agent stops within a few seconds of one SIGTERM to them all.
	start := time.Now()
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(-pgid, 0) == nil {
		if time.Since(start) > 8*time.Second {
			t.Fatalf("agents still running %s after SIGTERM", time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("after the stop: %v", err)
	}
	pgid = 0
	t.Logf("whole cluster stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}
