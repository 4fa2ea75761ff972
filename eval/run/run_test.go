package run_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/eval/assert"
	"gantry/eval/dataset"
	"gantry/eval/gateway"
	"gantry/eval/run"
)

// gatewayServer is a real HTTP server that speaks the gateway's invoke
// and chat APIs the way an agent does for evaluation calls: it checks the
// key and the evaluation headers, answers from the variables, reports
// cost and sources, fails with OpenAI-shaped errors, and grades with a
// judge model.
type gatewayServer struct {
	t        testing.TB
	srv      *httptest.Server
	mu       sync.Mutex
	calls    map[string]int // case id -> invocations
	inFlight atomic.Int64
	peak     atomic.Int64
	// hold, when set, delays every invocation, so that concurrency shows.
	hold time.Duration
	// answer overrides the answer to a question.
	answer map[string]string
}

const key = "gk-eval-test"

func newGateway(t testing.TB) *gatewayServer {
	t.Helper()
	g := &gatewayServer{t: t, calls: map[string]int{}, answer: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/features/{name}/invoke", g.invoke)
	mux.HandleFunc("POST /v1/chat/completions", g.chat)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": code}})
}

func (g *gatewayServer) enter(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+key {
		writeErr(w, 401, "invalid_api_key", "unknown key")
		return false
	}
	n := g.inFlight.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return true
}

func (g *gatewayServer) invoke(w http.ResponseWriter, r *http.Request) {
	if !g.enter(w, r) {
		return
	}
	defer g.inFlight.Add(-1)
	if r.PathValue("name") != "support-answer" || r.Header.Get(gateway.HeaderRelease) != "3" || r.Header.Get(gateway.HeaderEvalRun) == "" {
		writeErr(w, 400, "bad_eval_call", fmt.Sprintf("feature %s release %q run %q", r.PathValue("name"), r.Header.Get(gateway.HeaderRelease), r.Header.Get(gateway.HeaderEvalRun)))
		return
	}
	caseID := r.Header.Get(gateway.HeaderEvalCase)
	g.mu.Lock()
	g.calls[caseID]++
	g.mu.Unlock()
	if g.hold > 0 {
		time.Sleep(g.hold)
	}
	var in struct {
		Vars map[string]any `json:"vars"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, 400, "bad_json", err.Error())
		return
	}
	q, _ := in.Vars["question"].(string)
	if strings.Contains(q, "outage") {
		writeErr(w, 503, "upstream_unavailable", "every provider of route default failed")
		return
	}
	answer := "Your order A-17 ships on Tuesday."
	if a, ok := g.answer[q]; ok {
		answer = a
	}
	out, _ := json.Marshal(answer)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"output": json.RawMessage(out), "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "release": "support-answer@v3",
		"model": "sim-large", "cost_usd": 0.002,
		"sources": []map[string]any{{"document": "shipping", "chunk": "shipping#0", "score": 0.9}, {"document": "returns", "chunk": "returns#1", "score": 0.5}},
		"context": "Orders ship within two days.",
	})
}

func (g *gatewayServer) chat(w http.ResponseWriter, r *http.Request) {
	if !g.enter(w, r) {
		return
	}
	defer g.inFlight.Add(-1)
	var in struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, 400, "bad_json", err.Error())
		return
	}
	text := "Hello! How can I help?"
	if in.Model == "judge" {
		// The judge gives 0.9 to answers that name a day, 0.2 otherwise.
		text = `{"score": 0.2, "reason": "no delivery day"}`
		if strings.Contains(in.Messages[len(in.Messages)-1].Content, "Tuesday") {
			text = "```json\n{\"score\": 0.9, \"reason\": \"names the day\"}\n```"
		}
	} else {
		g.mu.Lock()
		g.calls[r.Header.Get(gateway.HeaderEvalCase)]++
		g.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(gateway.HeaderCost, "0.0005")
	json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "model": "sim-small",
		"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop"}},
	})
}

func (g *gatewayServer) client() *gateway.Client {
	return &gateway.Client{Base: g.srv.URL, Key: key, JudgeModel: "judge", HTTP: g.srv.Client()}
}

func (g *gatewayServer) callsOf(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[id]
}

func (g *gatewayServer) total() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.calls {
		n += c
	}
	return n
}

const smoke = `name: support-smoke
assert:
  - {type: latency, max_ms: 10000}
cases:
  - id: where-is-order
    vars: {question: "Where is my order?"}
    critical: true
    assert:
      - {type: icontains, value: "order"}
      - {type: llm-rubric, value: "Names the delivery day", threshold: 0.5}
  - id: ships-when
    vars: {question: "When does it ship?"}
    sources: [shipping]
    assert:
      - {type: contains, value: "Tuesday"}
      - {type: retrieval, k: 1}
  - id: refund
    vars: {question: "Can I get a refund?"}
    critical: true
    assert:
      - {type: icontains, value: "refund"}
  - id: outage
    vars: {question: "outage please"}
    assert:
      - {type: contains, value: "x"}
  - id: greeting
    messages: [{role: user, content: "hi"}]
    assert:
      - {type: starts-with, value: "Hello"}
  - id: returns-source
    vars: {question: "How do returns work?"}
    sources: [returns]
    assert:
      - {type: retrieval, k: 1}
`

func load(t testing.TB, src string) dataset.Dataset {
	t.Helper()
	d, err := dataset.Parse("smoke.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func options(t *testing.T, d dataset.Dataset, g *gatewayServer) run.Options {
	t.Helper()
	return run.Options{
		Identity: run.Identity{RunID: "run-1", Feature: "support-answer", Release: 3, DatasetVersion: 4, Repeat: 2},
		Dataset:  d, Concurrency: 4, Env: assert.Env{Judge: g.client()},
	}
}

func TestRunAgainstAnHTTPGateway(t *testing.T) {
	g := newGateway(t)
	g.hold = 20 * time.Millisecond
	d := load(t, smoke)
	opts := options(t, d, g)
	var progress []run.Progress
	opts.Progress = func(p run.Progress) { progress = append(progress, p) }
	res, err := run.Run(context.Background(), g.client(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := run.Summary{RunID: "run-1", Feature: "support-answer", Release: 3, Dataset: "support-smoke", DatasetVersion: 4,
		Cases: 6, Passed: 3, Failed: 2, Errors: 1, CriticalFailed: 1, PassRate: 0.5}
	got := res.Summary
	// Cost: 4 invoke cases answered × 2 repeats × $0.002 plus chat
	// ($0.0005 × 2) plus the judge ($0.0005 × 2).
	if c := got.CostUSD; c < 0.0179999 || c > 0.0180001 {
		t.Fatalf("cost %v, want 0.018", c)
	}
	if got.P50Ms <= 0 || got.P95Ms < got.P50Ms {
		t.Fatalf("latency p50 %v p95 %v", got.P50Ms, got.P95Ms)
	}
	got.CostUSD, got.P50Ms, got.P95Ms = 0, 0, 0
	if got != want {
		t.Fatalf("summary\n got %+v\nwant %+v", got, want)
	}
	if err := res.Summary.Check(); err != nil {
		t.Fatalf("summary Check: %v", err)
	}
	if len(progress) != 12 || progress[11].Done != 12 || progress[11].Total != 12 {
		t.Fatalf("%d progress calls, last %+v", len(progress), progress[len(progress)-1])
	}
	if p := g.peak.Load(); p < 2 || p > 4 {
		t.Fatalf("peak concurrent calls %d, want 2..4 with concurrency 4", p)
	}
	byCase := map[string]run.CaseResult{}
	for _, r := range res.Results {
		byCase[r.Case] = r
	}
	if r := byCase["where-is-order"]; r.Status != run.Pass || r.JudgeCostUSD != 0.0005 || r.Assertions[2].Score == nil || *r.Assertions[2].Score != 0.9 {
		t.Fatalf("where-is-order: %+v", r)
	}
	if r := byCase["ships-when"]; r.Status != run.Pass || r.Retrieval == nil || r.Retrieval.Recall != 1 || r.Retrieval.RR != 1 {
		t.Fatalf("ships-when: %+v", r)
	}
	if r := byCase["returns-source"]; r.Status != run.Fail || r.Retrieval.Recall != 0 || r.Retrieval.K != 1 {
		t.Fatalf("returns-source: retrieval %+v, status %s", r.Retrieval, r.Status)
	}
	if r := byCase["refund"]; r.Status != run.Fail || !strings.Contains(r.Assertions[1].Reason, `"refund"`) {
		t.Fatalf("refund: %+v", r)
	}
	if r := byCase["outage"]; r.Status != run.Error || !strings.Contains(r.TargetError, "gateway 503 upstream_unavailable") {
		t.Fatalf("outage: %+v", r)
	}
	if r := byCase["greeting"]; r.Status != run.Pass || r.Output != "Hello! How can I help?" {
		t.Fatalf("greeting, a messages case through the chat API: %+v", r)
	}
	outcomes := run.Outcomes(res.Results)
	if len(outcomes) != 6 || outcomes[1].Recall == nil || *outcomes[1].Recall != 1 {
		t.Fatalf("outcomes %+v", outcomes)
	}
}

// The -o json summary has exactly the fields, in its order.
func TestSummaryJSONFields(t *testing.T) {
	b, _ := json.Marshal(run.Summary{})
	var m map[string]any
	json.Unmarshal(b, &m)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.Token()
	var keys []string
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v any
		dec.Decode(&v)
	}
	want := []string{"run_id", "feature", "release", "dataset", "dataset_version", "cases", "passed", "failed", "errors", "critical_failed", "pass_rate", "cost_usd", "p50_ms", "p95_ms"}
	if !slices.Equal(keys, want) {
		t.Fatalf("summary fields %v, want %v", keys, want)
	}
}

// A run stopped part way resumes from its directory: done repeats are not
// sent again, a line torn by the crash is dropped, repeats that got no
// answer are asked again, and the result equals an uninterrupted run's.
func TestRunResumes(t *testing.T) {
	g := newGateway(t)
	d := load(t, smoke)
	dir := filepath.Join(t.TempDir(), "run-1")
	opts := options(t, d, g)
	opts.Dir = dir
	opts.Concurrency = 1

	ctx, cancel := context.WithCancel(context.Background())
	opts.Progress = func(p run.Progress) {
		if p.Done == 7 {
			cancel()
		}
	}
	res, err := run.Run(ctx, g.client(), opts)
	if !errors.Is(err, run.ErrIncomplete) || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if len(res.Results) != 7 || g.total() != 7 {
		t.Fatalf("interrupted run: %d results, %d calls", len(res.Results), g.total())
	}
	if _, err := os.Stat(filepath.Join(dir, run.SummaryFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an incomplete run wrote a summary")
	}
	// A crash while writing leaves half a line.
	f, _ := os.OpenFile(filepath.Join(dir, run.ResultsFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"case":"refund","repeat":1,"sta`)
	f.Close()

	opts.Progress = nil
	var resumed int
	opts.Progress = func(p run.Progress) { resumed = p.Resumed }
	res, err = run.Run(context.Background(), g.client(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// 12 repeats: 7 before, of which the outage's first repeat got no
	// answer and is asked again; 6 after.
	if resumed != 6 || g.total() != 7+6 {
		t.Fatalf("resumed %d, total calls %d; want 6 and 13", resumed, g.total())
	}
	if g.callsOf("where-is-order") != 2 || g.callsOf("outage") != 3 {
		t.Fatalf("calls where-is-order %d outage %d, want 2 and 3", g.callsOf("where-is-order"), g.callsOf("outage"))
	}
	fresh, err := run.Run(context.Background(), newGateway(t).client(), options(t, d, g))
	if err != nil {
		t.Fatal(err)
	}
	a, b := res.Summary, fresh.Summary
	a.P50Ms, a.P95Ms, b.P50Ms, b.P95Ms = 0, 0, 0, 0
	if a != b {
		t.Fatalf("resumed summary %+v, uninterrupted %+v", a, b)
	}
	var onDisk run.Summary
	raw, err := os.ReadFile(filepath.Join(dir, run.SummaryFile))
	if err != nil || json.Unmarshal(raw, &onDisk) != nil || onDisk != res.Summary {
		t.Fatalf("summary file %s (%v), want %+v", raw, err, res.Summary)
	}
	id, results, err := run.ReadDir(dir, d)
	if err != nil || id.RunID != "run-1" || len(results) != 12 {
		t.Fatalf("ReadDir: %v, %+v, %d results", err, id, len(results))
	}
	// A third run finds nothing to do.
	before := g.total()
	if _, err := run.Run(context.Background(), g.client(), opts); err != nil || g.total() != before {
		t.Fatalf("a finished run called the gateway again: %v, %d calls", err, g.total()-before)
	}
}

func TestRunDirectoryOfAnotherRunIsRefused(t *testing.T) {
	g := newGateway(t)
	d := load(t, smoke)
	opts := options(t, d, g)
	opts.Dir = t.TempDir()
	opts.Repeat = 1
	if _, err := run.Run(context.Background(), g.client(), opts); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*run.Options){
		"release":  func(o *run.Options) { o.Release = 2 },
		"run id":   func(o *run.Options) { o.RunID = "run-2" },
		"repeat":   func(o *run.Options) { o.Repeat = 3 },
		"contents": func(o *run.Options) { o.Dataset = load(t, strings.Replace(smoke, "10000", "9000", 1)) },
	} {
		o := options(t, d, g)
		o.Dir, o.Repeat = opts.Dir, 1
		change(&o)
		if _, err := run.Run(context.Background(), g.client(), o); err == nil || !strings.Contains(err.Error(), "not this run") {
			t.Fatalf("%s changed: got %v", name, err)
		}
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	g := newGateway(t)
	d := load(t, smoke)
	for name, change := range map[string]func(*run.Options){
		"repeat":      func(o *run.Options) { o.Repeat = run.MaxRepeat + 1 },
		"concurrency": func(o *run.Options) { o.Concurrency = 1000 },
		"run id":      func(o *run.Options) { o.RunID = "../../etc" },
		"release":     func(o *run.Options) { o.Release = 0 },
	} {
		o := options(t, d, g)
		change(&o)
		if _, err := run.Run(context.Background(), g.client(), o); err == nil {
			t.Fatalf("%s: bad option accepted", name)
		}
	}
}

func TestSummaryCheck(t *testing.T) {
	ok := run.Summary{RunID: "r", Feature: "f", Release: 1, Dataset: "d", DatasetVersion: 1, Cases: 3, Passed: 1, Failed: 1, Errors: 1, CriticalFailed: 2, PassRate: 1.0 / 3}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]run.Summary{
		"counts":   {RunID: "r", Feature: "f", Release: 1, Dataset: "d", DatasetVersion: 1, Cases: 3, Passed: 3, Failed: 1},
		"critical": {RunID: "r", Feature: "f", Release: 1, Dataset: "d", DatasetVersion: 1, Cases: 1, Passed: 1, CriticalFailed: 1},
		"rate":     {RunID: "r", Feature: "f", Release: 1, Dataset: "d", DatasetVersion: 1, PassRate: 2},
		"run id":   {RunID: "", Feature: "f", Release: 1, Dataset: "d", DatasetVersion: 1},
	} {
		if err := s.Check(); err == nil {
			t.Fatalf("%s: bad summary passed Check", name)
		}
	}
}
