// Package proctest runs programs for integration tests: each runs until the
// test ends, and its output goes to the test log when the test fails.
package proctest

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
	"time"

	"gantry/internal/freeport"
)

// Proc is a program Start runs.
type Proc struct {
	// Exited is closed once the program has exited.
	Exited <-chan struct{}
	out    *bytes.Buffer
}

// Output is what the program wrote; call it once Exited is closed.
func (p Proc) Output() string { return p.out.String() }

// Start runs bin with args until the test ends; name labels its output.
func Start(t testing.TB, name, bin string, args ...string) Proc {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, Tail(out.String(), 4000))
		}
	})
	return Proc{Exited: done, out: &out}
}

// Tail is the last n bytes of s, marked as cut when it is.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// FreeAddr is a loopback address free now, for a program to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addrs, err := freeport.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}
