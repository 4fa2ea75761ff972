package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/api"
)

const devKey = "gk_cli-test-key-0001"

// cancelAfter cancels a run once it has written n progress lines.
type cancelAfter struct {
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return len(p), nil
}

func TestEvaluationCommands(t *testing.T) {
	base := startAgent(t)
	runsDir := t.TempDir()
	runWith := func(ctx context.Context, errOut io.Writer, args ...string) (string, error) {
		var out bytes.Buffer
		all := append(append([]string{}, args[1:]...), "--agent", base, "--token", adminToken, "--key", devKey, "--runs-dir", runsDir)
		err := RunWith(ctx, args[0], all, &out, errOut)
		return out.String(), err
	}
	cmd := func(args ...string) string {
		t.Helper()
		out, err := runWith(context.Background(), io.Discard, args...)
		if err != nil {
			t.Fatalf("gantry %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// The dev agent pushes the example's dataset.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(cmd("dataset", "list"), "ticket-triage-smoke") {
		if time.Now().After(deadline) {
			t.Fatal("the example dataset was not pushed within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// push: a new version when the content changes, none otherwise.
	file := filepath.Join(t.TempDir(), "mini.yaml")
	src := "name: mini\ncases:\n  - vars: {ticket: a}\n    assert: [{type: is-json}]\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cmd("dataset", "push", "-f", file); !strings.Contains(out, "dataset mini: version 1 with 1 cases") {
		t.Fatalf("first push: %s", out)
	}
	if out := cmd("dataset", "push", "-f", file); !strings.Contains(out, "unchanged, still version 1") {
		t.Fatalf("same content again: %s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: bad\ncases:\n  - vars: {x: 1}\n    assert: [{type: regex, value: '('}]\n"), 0o600)
	if _, err := runWith(context.Background(), io.Discard, "dataset", "push", "-f", bad); err == nil || !strings.Contains(err.Error(), "bad.yaml:4") {
		t.Fatalf("a bad regex: %v, want an error naming bad.yaml line 4", err)
	}
	if out := cmd("dataset", "show", "ticket-triage-smoke"); !strings.Contains(out, "lost-parcel") || !strings.Contains(out, "yes") {
		t.Fatalf("show: %s", out)
	}

	// run: interrupted, then resumed with the same command.
	ctx, cancel := context.WithCancel(context.Background())
	prog := &cancelAfter{n: 3, cancel: cancel}
	args := []string{"eval", "run", "--feature", "ticket-triage", "--release", "1", "--dataset", "ticket-triage-smoke", "--concurrency", "1", "-o", "json"}
	if _, err := runWith(ctx, prog, args...); err == nil || !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Fatalf("interrupted run: %v", err)
	}
	var resumed bytes.Buffer
	out, err := runWith(context.Background(), &resumed, args...)
	if err != nil {
		t.Fatalf("resumed run: %v\n%s", err, resumed.String())
	}
	if !strings.Contains(resumed.String(), "resuming run ") {
		t.Fatalf("the second run did not resume the first:\n%s", resumed.String())
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	want := []string{"run_id", "feature", "release", "dataset", "dataset_version", "cases", "passed", "failed", "errors", "critical_failed", "pass_rate", "cost_usd", "p50_ms", "p95_ms"}
	var got []string
	for k := range fields {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("-o json fields %v, want exactly %v", got, want)
	}
	if fields["cases"] != 8.0 || fields["passed"] != 8.0 || fields["cost_usd"].(float64) <= 0 {
		t.Fatalf("run of the production release: %s", out)
	}
	if !strings.Contains(prog.buf.String(), "1/8") {
		t.Fatalf("no progress lines off a terminal:\n%s", prog.buf.String())
	}

	// compare: the draft release breaks the critical cases.
	out, err = runWith(context.Background(), io.Discard, "eval", "compare", "--feature", "ticket-triage", "--candidate", "2", "--dataset", "ticket-triage-smoke", "-o", "json")
	if !errors.Is(err, ErrRegression) {
		t.Fatalf("compare of the draft: %v\n%s", err, out)
	}
	var v api.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Verdict.Verdict != "regression" || len(v.CriticalFailures) != 2 {
		t.Fatalf("verdict: %v %s", err, out)
	}
	if v.BaselineRun != fields["run_id"] {
		t.Fatalf("compare ran the baseline again (%s) instead of using run %s", v.BaselineRun, fields["run_id"])
	}

	// The gate refuses the promotion, unless forced with a reason.
	_, err = runWith(context.Background(), io.Discard, "release", "promote", "ticket-triage", "2")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeGated || !strings.Contains(ae.Message, "critical") {
		t.Fatalf("promotion of a regression: %v", err)
	}
	if _, err := runWith(context.Background(), io.Discard, "release", "promote", "ticket-triage", "2", "--force", "--reason", "x"); !errors.Is(err, ErrUsage) {
		t.Fatalf("forced without its reason as its value: %v", err)
	}
	if _, err := runWith(context.Background(), io.Discard, "release", "promote", "ticket-triage", "2", "--force", " "); err == nil {
		t.Fatal("forced with a blank reason")
	}
	cmd("release", "promote", "ticket-triage", "2", "--force", "the schema moves to the client")
	if out := cmd("audit"); !strings.Contains(out, "gate/ticket-triage@v2") || !strings.Contains(out, "the schema moves to the client") {
		t.Fatalf("forced promotion not audited:\n%s", out)
	}

	// add-trace: a production call with a correction becomes a case.
	trace := invokeWithCorrection(t, base, "Where is my refund?", `{"category":"billing","priority":2}`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, err = runWith(context.Background(), io.Discard, "dataset", "add-trace", "mini", trace, "--critical")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the trace is recorded after the call returns
	}
	if err != nil || !strings.Contains(out, "version 2 with 2 cases") || !strings.Contains(out, "expecting its correction") {
		t.Fatalf("add-trace: %v\n%s", err, out)
	}
}

// invokeWithCorrection calls ticket-triage and corrects its answer,
// returning the trace id.
func invokeWithCorrection(t *testing.T, base, ticket, correction string) string {
	t.Helper()
	post := func(path string, body any) map[string]any {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+devKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	inv := post("/v1/features/ticket-triage/invoke", map[string]any{"vars": map[string]any{"ticket": ticket}})
	id := inv["trace_id"].(string)
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := json.Marshal(map[string]any{"trace_id": id, "thumbs": "down", "correction": correction})
		req, _ := http.NewRequest("POST", base+"/v1/feedback", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+devKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("feedback: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
