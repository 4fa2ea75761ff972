package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/trace"
)

const plainKey = "gk_plain-key-0123456789"

// TestEvaluationCalls: only keys allowed to evaluate may pin a release and
// mark a run; such calls get their cost, tool calls and context back, are
// marked on their trace, take gen_ai.evaluation.result events, and stay
// out of the production metrics and per-release counters.
func TestEvaluationCalls(t *testing.T) {
	cfg := quietConfig()
	cfg.Keys = append(cfg.Keys, config.Key{Name: "plain", Hash: config.HashKey(plainKey)})
	a := startAgent(t, cfg)
	invoke := func(key string, hdr ...string) *http.Response {
		req, _ := http.NewRequest("POST", a.srv.URL+"/v1/features/ticket-triage/invoke", strings.NewReader(`{"vars":{"ticket":"My parcel never arrived"}}`))
		req.Header.Set("Authorization", "Bearer "+key)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	refusals := []struct {
		name   string
		key    string
		hdr    []string
		status int
		says   string
	}{
		{"plain key pins", plainKey, []string{"X-Gantry-Release", "2"}, 403, "may not run evaluations"},
		{"plain key marks a run", plainKey, []string{"X-Gantry-Eval-Run", "run-1"}, 403, "may not run evaluations"},
		{"not a version", devKey, []string{"X-Gantry-Release", "two"}, 400, "X-Gantry-Release"},
		{"not a run id", devKey, []string{"X-Gantry-Eval-Run", "run 1/../"}, 400, "X-Gantry-Eval-Run"},
		{"case without a run", devKey, []string{"X-Gantry-Eval-Case", "c1"}, 400, "X-Gantry-Eval-Run"},
		{"missing release", devKey, []string{"X-Gantry-Release", "9"}, 404, "no release v9"},
	}
	for _, r := range refusals {
		resp := invoke(r.key, r.hdr...)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.status || !strings.Contains(string(b), r.says) {
			t.Fatalf("%s: %d %s, want %d saying %q", r.name, resp.StatusCode, b, r.status, r.says)
		}
	}

	resp := invoke(devKey, "X-Gantry-Release", "2", "X-Gantry-Eval-Run", "run-1", "X-Gantry-Eval-Case", "lost-parcel")
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("evaluation call: %d %s", resp.StatusCode, b)
	}
	out := decode[map[string]any](t, resp)
	cost, _ := strconv.ParseFloat(resp.Header.Get("X-Gantry-Cost-Usd"), 64)
	if out["release"] != "ticket-triage@v2" || out["label"] != "pinned" || out["cost_usd"] == nil || cost <= 0 || out["cost_usd"].(float64) != cost {
		t.Fatalf("evaluation answer %v, cost header %q", out, resp.Header.Get("X-Gantry-Cost-Usd"))
	}
	tr := a.waitTrace(out["trace_id"].(string))
	if tr.EvalRun != "run-1" || tr.EvalCase != "lost-parcel" || !tr.Evaluation() {
		t.Fatalf("trace not marked: run %q case %q label %q", tr.EvalRun, tr.EvalCase, tr.Label)
	}
	// A production call, for contrast.
	prod := decode[map[string]any](t, invoke(devKey))
	if prod["cost_usd"] != nil || prod["label"] != "production" {
		t.Fatalf("production answer carries evaluation fields: %v", prod)
	}
	a.waitTrace(prod["trace_id"].(string))

	post := func(key, body string) (int, string) {
		req, _ := http.NewRequest("POST", a.srv.URL+"/v1/evaluations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ev := func(id, run string) string {
		b, _ := json.Marshal(map[string]any{"trace_id": id, "run": run, "evaluations": []trace.Evaluation{
			{Name: "is-json", ScoreLabel: trace.EvalFail, Explanation: "output is not JSON"}}})
		return string(b)
	}
	for _, c := range []struct {
		key, body string
		status    int
	}{
		{plainKey, ev(tr.ID, "run-1"), 403},
		{devKey, ev(tr.ID, "run-2"), 404},
		{devKey, ev(prod["trace_id"].(string), "run-1"), 404},
		{devKey, `{"trace_id":"` + tr.ID + `","run":"run-1","evaluations":[{"gen_ai.evaluation.name":"x","gen_ai.evaluation.score.label":"maybe"}]}`, 400},
		{devKey, ev(tr.ID, "run-1"), 200},
	} {
		if status, body := post(c.key, c.body); status != c.status {
			t.Fatalf("POST /v1/evaluations %s: %d %s, want %d", c.body, status, body, c.status)
		}
	}
	if got := a.waitTrace(tr.ID); len(got.Evaluations) != 1 || got.Evaluations[0].Name != "is-json" {
		t.Fatalf("trace evaluations %+v", got.Evaluations)
	}

	// Only the production call is counted as traffic of ticket-triage.
	b, _, _ := a.s.stats.acc.NextBatch(time.Now())
	counted := 0
	for _, it := range b.Items {
		if it.Feature == "ticket-triage" {
			if it.Version != 1 || it.Requests != 1 {
				t.Fatalf("per-release counters hold %+v; the evaluation call must not count", it)
			}
			counted++
		}
	}
	if counted != 1 {
		t.Fatalf("the production call is not in the per-release counters: %+v", b.Items)
	}
	m, _ := http.Get(a.srv.URL + "/metrics")
	text, _ := io.ReadAll(m.Body)
	m.Body.Close()
	for _, want := range []string{`gantry_eval_calls_total{feature="ticket-triage",release="ticket-triage@v2",status="ok"} 1`,
		`gantry_requests_total{code="2xx",feature="ticket-triage",model="sim-small",release="ticket-triage@v1"} 1`} {
		if !strings.Contains(string(text), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(text), `gantry_requests_total{code="2xx",feature="ticket-triage",model="sim-small",release="ticket-triage@v2"}`) {
		t.Fatal("the evaluation call is in the production request series")
	}
}
