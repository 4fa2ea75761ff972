package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runCLI runs this binary as the gantry command against a dev agent.
func runCLI(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append(args, "--agent", "http://"+addr, "--token", "gat_e2e")...)
	cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("gantry %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// A user calls a feature, marks one answer as bad, and reads what a call
// and a good answer cost, grouped by release and by model, as a table and
// as JSON, and finds the same spend in Prometheus.
func TestGetCosts(t *testing.T) {
	addr := startDevAgent(t)
	hc := &http.Client{Timeout: 30 * time.Second}
	post := func(path, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e2eKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	const calls = 6
	var ids []string
	served := 0
	// One user: the example's canary is sticky per user, so every call is
	// served by one release and lands in one row.
	for i := range calls {
		resp, body := post("/v1/chat/completions", fmt.Sprintf(`{"model":"feature/support-answer","user":"ana","messages":[{"role":"user","content":"Where is order %d?"}],"metadata":{"customer":"Ana","question":"Where is my order?"}}`, i))
		ids = append(ids, resp.Header.Get("X-Request-Id"))
		if resp.StatusCode == 200 {
			served++
		} else {
			t.Logf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if served == 0 {
		t.Fatal("no call was served")
	}
	if resp, body := post("/v1/feedback", `{"trace_id":"`+ids[0]+`","thumbs":"down"}`); resp.StatusCode >= 300 {
		t.Fatalf("feedback: %d %s", resp.StatusCode, body)
	}

	type row struct {
		Group               string   `json:"group"`
		Calls               int64    `json:"calls"`
		CostUSD             float64  `json:"cost_usd"`
		CostPerCallUSD      *float64 `json:"cost_per_call_usd"`
		CostPerValidatedUSD *float64 `json:"cost_per_validated_usd"`
		CostPerGoodUSD      *float64 `json:"cost_per_good_usd"`
		Validated           int64    `json:"validated"`
		NegativeFeedback    int64    `json:"negative_feedback"`
	}
	var rows []row
	// Traces reach the cost table through the asynchronous recorder.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := runCLI(t, addr, "get", "costs", "--by", "release", "--window", "1h", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		rows = nil
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("-o json is not a list of rows: %v\n%s", err, out)
		}
		if len(rows) == 1 && rows[0].Calls == calls && rows[0].NegativeFeedback == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(rows) != 1 || !strings.HasPrefix(rows[0].Group, "support-answer@v") {
		t.Fatalf("rows %+v, want one for the release that served", rows)
	}
	r := rows[0]
	if r.Calls != calls || r.NegativeFeedback != 1 || r.CostUSD <= 0 || r.Validated == 0 || r.Validated > int64(served) {
		t.Fatalf("row %+v: want %d calls, %d served, one marked bad", r, calls, served)
	}
	if r.CostPerCallUSD == nil || math.Abs(*r.CostPerCallUSD-r.CostUSD/calls) > 1e-12 {
		t.Fatalf("cost per call %v, cost %v over %d calls", r.CostPerCallUSD, r.CostUSD, calls)
	}
	if r.CostPerValidatedUSD == nil || math.Abs(*r.CostPerValidatedUSD-r.CostUSD/float64(r.Validated)) > 1e-12 {
		t.Fatalf("cost per validated answer %v", r.CostPerValidatedUSD)
	}
	if r.CostPerGoodUSD == nil || *r.CostPerGoodUSD <= *r.CostPerValidatedUSD && served == calls {
		t.Fatalf("cost per answer without negative feedback %v, per validated %v: one bad answer should raise it", r.CostPerGoodUSD, r.CostPerValidatedUSD)
	}

	table, err := runCLI(t, addr, "get", "costs", "--by", "model")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(table, "MODEL") || !strings.Contains(table, "PER_VALIDATED") {
		t.Fatalf("table:\n%s", table)
	}
	if _, err := runCLI(t, addr, "get", "costs", "--by", "region"); err == nil || !strings.Contains(err.Error(), "--by \"region\"") {
		t.Fatalf("unknown dimension: %v", err)
	}

	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{"gantry_release_cost_usd_total{feature=\"support-answer\"", "gantry_validated_answers_total{feature=\"support-answer\""} {
		if !bytes.Contains(metrics, []byte(series)) {
			t.Fatalf("/metrics lacks %s", series)
		}
	}
}

// Each agent counts its own calls; gantry get costs asks every member of
// the cluster and adds them up.
func TestGetCostsAcrossTheCluster(t *testing.T) {
	c := startCluster(t)
	c.waitConverged(60 * time.Second)
	perAgent := []int{2, 3, 4}
	for i, a := range c.agents {
		for range perAgent[i] {
			if err := c.chat(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := int64(2 + 3 + 4)
	var rows []struct {
		Group   string  `json:"group"`
		Calls   int64   `json:"calls"`
		CostUSD float64 `json:"cost_usd"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := gantry(t, c.agents[1], "", "get", "costs", "--by", "feature", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		rows = nil
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if len(rows) == 1 && rows[0].Calls == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if len(rows) != 1 || rows[0].Group != "answer" || rows[0].Calls != want || rows[0].CostUSD <= 0 {
		t.Fatalf("rows %+v, want feature answer with the %d calls of all three agents", rows, want)
	}
}
