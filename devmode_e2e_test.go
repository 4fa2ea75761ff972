package main

import (
	"bufio"
	"bytes"
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
)

var exportLine = regexp.MustCompile(`^\s*export (GANTRY_[A-Z]+)=(\S+)$`)

// A newcomer runs `gantry agent --dev`, pastes the export lines it prints,
// calls it, and presses Ctrl-C: the agent says what it waits for, ends
// promptly, and leaves no state behind for the next run.
func TestDevAgentFirstContact(t *testing.T) {
	tmp := t.TempDir()
	cmd, out, logs, done := startNewcomer(t, tmp, "agent", "--dev", "--http-addr", "127.0.0.1:0")

	env := map[string]string{}
	var banner []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		banner = append(banner, line)
		if m := exportLine.FindStringSubmatch(line); m != nil {
			env[m[1]] = m[2]
		}
		if strings.HasPrefix(line, "Ctrl-C") {
			break
		}
	}
	if len(banner) > 24 {
		t.Errorf("the banner takes %d lines, more than one 80x24 screen:\n%s", len(banner), strings.Join(banner, "\n"))
	}
	if env["GANTRY_AGENT"] == "" || env["GANTRY_KEY"] == "" || env["GANTRY_TOKEN"] == "" {
		t.Fatalf("banner lacks export lines for the agent, key and token:\n%s", strings.Join(banner, "\n"))
	}
	if !strings.Contains(strings.Join(banner, "\n"), " console ") {
		t.Errorf("banner does not say how to open the console:\n%s", strings.Join(banner, "\n"))
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a healthy start logged a warning:\n%s", logs.String())
	}

	req, _ := http.NewRequest("POST", env["GANTRY_AGENT"]+"/v1/features/ticket-triage/invoke",
		strings.NewReader(`{"vars":{"ticket":"My parcel never arrived"}}`))
	req.Header.Set("Authorization", "Bearer "+env["GANTRY_KEY"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke with the exported key: %s", resp.Status)
	}
	dirs, _ := filepath.Glob(filepath.Join(tmp, "gantry-dev-*"))
	if len(dirs) != 1 {
		t.Fatalf("want one fresh data directory under TMPDIR, found %v", dirs)
	}

	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("agent exit after SIGINT: %v\n%s", err, logs.String())
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("agent still running 2s after SIGINT:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "stopping: calls in flight finish") {
		t.Errorf("Ctrl-C did not say what the agent waits for:\n%s", logs.String())
	}
	if _, err := os.Stat(dirs[0]); !os.IsNotExist(err) {
		t.Errorf("the run's data directory %s is still there after the agent stopped (%v)", dirs[0], err)
	}
}

// syncBuffer is a bytes.Buffer a process writes into while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNewcomer runs gantry with args the way a newcomer does from a shell,
// its temporary files under tmp: stdout to read as it comes, stderr kept,
// and its exit on done (put back by whoever takes it). It is killed when
// the test ends.
func startNewcomer(t *testing.T, tmp string, args ...string) (cmd *exec.Cmd, out io.Reader, logs *syncBuffer, done chan error) {
	t.Helper()
	cmd = exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1", "TMPDIR="+tmp)
	logs = &syncBuffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	// Wait closes the pipe; readers of out have stopped by then.
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd, out, logs, done
}
