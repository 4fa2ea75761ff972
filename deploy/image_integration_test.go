//go:build integration

package deploy

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/proctest"
)

// No Docker engine runs where Gantry is tested, so the image is checked
// as far as it can be without one: the Dockerfile's own build line makes
// a static binary (distroless/static has no libc for it to load) that
// prints its stamped version and serves with the image's command line,
// moved to loopback and temporary paths.
func TestImageBinary(t *testing.T) {
	bin := buildGantry(t)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the image's binary is not ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the image's binary is dynamically linked (%v); distroless/static cannot run it", p.Type)
		}
	}
	if f.Section(".debug_info") != nil {
		t.Fatal("the image's binary keeps debug information; the build line lost -s -w")
	}

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "gantry "+testVersion {
		t.Fatalf("gantry version: %q, %v; want the version the build stamped", out, err)
	}

	args := imageCommand(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gantry.yaml")
	example, err := os.ReadFile(filepath.Join("..", "config", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, example, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := proctest.FreeAddr(t)
	args = strings.Fields(strings.NewReplacer("/etc/gantry/gantry.yaml", cfg, "/var/lib/gantry", filepath.Join(dir, "data"),
		"0.0.0.0:7400", addr).Replace(strings.Join(args, " ")))
	args = append(args, "--raft-addr", proctest.FreeAddr(t))
	proctest.Start(t, "agent", bin, args...)
	waitOK(t, "http://"+addr+"/readyz", 30*time.Second)
}

// imageCommand is the Dockerfile's CMD as arguments.
func imageCommand(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "CMD "); ok {
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil {
				t.Fatalf("Dockerfile CMD is not the exec (JSON) form: %v", err)
			}
			return args
		}
	}
	t.Fatal("Dockerfile has no CMD")
	return nil
}
