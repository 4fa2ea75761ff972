package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gantry/agent/gateway"
	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
)

const (
	devKey   = "gk_agent-test-key-0001"
	devAdmin = "gat_agent-test-admin"
)

// testAgent is an agent serving cfg (the dev example when nil) on an
// httptest server.
type testAgent struct {
	t   testing.TB
	s   *Server
	srv *httptest.Server
}

func startAgent(t *testing.T, cfg *config.Config) *testAgent { return startAgentB(t, cfg) }

func startAgentB(t testing.TB, cfg *config.Config) *testAgent { return startAgentWith(t, cfg, nil) }

// startAgentWith is startAgent with edit applied to the agent's options.
func startAgentWith(t testing.TB, cfg *config.Config, edit func(*Options)) *testAgent {
	t.Helper()
	opts := Options{Dev: true, DevKey: devKey, DevAdminToken: devAdmin, DataDir: t.TempDir(), NodeID: "test",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard}
	if edit != nil {
		edit(&opts)
	}
	s, seed, err := build(&opts)
	if err != nil {
		t.Fatalf("build agent: %v", err)
	}
	if cfg == nil {
		cfg = seed
	}
	cfg.Keys = append(cfg.Keys, config.Key{Name: "dev", Team: "dev", Hash: config.HashKey(devKey), Eval: true})
	if err := s.Reload(cfg); err != nil {
		t.Fatalf("load config: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		s.close()
	})
	return &testAgent{t: t, s: s, srv: srv}
}

// post sends a JSON body with the dev key.
func (a *testAgent) post(path, body string, hdr ...string) *http.Response {
	a.t.Helper()
	req, _ := http.NewRequest("POST", a.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+devKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("POST %s: %v", path, err)
	}
	return resp
}

func (a *testAgent) admin(path string) *http.Response {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+devAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

// waitTrace waits for the recorder to store a trace.
func (a *testAgent) waitTrace(id string) *trace.Trace {
	a.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if tr, ok := a.s.store.Get(id); ok {
			return tr
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.t.Fatalf("trace %s never reached the store", id)
	return nil
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	defer resp.Body.Close()
	var v T
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// quiet is a sim provider without faults, so tests are deterministic.
func quietConfig() *config.Config {
	cfg := config.Example()
	cfg.Providers[0].Sim = &config.SimSettings{OutputTokens: 20, Seed: 7}
	return cfg
}

func TestChatCompletion(t *testing.T) {
	a := startAgent(t, quietConfig())
	resp := a.post("/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"Hello there"}]}`,
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if tp := resp.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Fatalf("traceparent %q does not carry the caller's trace id", tp)
	}
	out := decode[chat.Response](t, resp)
	if out.Object != "chat.completion" || out.Model != "sim-small" || len(out.Choices) != 1 || out.Choices[0].Message.Content.Text == "" {
		t.Fatalf("unexpected response: %+v", out)
	}
	if out.Usage == nil || out.Usage.PromptTokens == 0 || out.Usage.CompletionTokens == 0 {
		t.Fatalf("usage missing: %+v", out.Usage)
	}
	tr := a.waitTrace("4bf92f3577b34da6a3ce929d0e0e4736")
	if tr.Model != "sim-small" || tr.Status != "ok" || tr.CostUSD <= 0 || tr.InputTokens != out.Usage.PromptTokens {
		t.Fatalf("trace does not match the call: %+v", tr)
	}
	if len(tr.Spans) < 7 {
		t.Fatalf("trace has %d spans, want one per stage", len(tr.Spans))
	}
}

// readSSE returns the data payloads of a stream in order.
func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestChatCompletionStream(t *testing.T) {
	a := startAgent(t, quietConfig())
	resp := a.post("/v1/chat/completions", `{"model":"default","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello"}]}`)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d content type %q", resp.StatusCode, ct)
	}
	events := readSSE(t, resp.Body)
	if len(events) < 3 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", events)
	}
	var text strings.Builder
	var usage *chat.Usage
	for _, e := range events[:len(events)-1] {
		var ch chat.Chunk
		if err := json.Unmarshal([]byte(e), &ch); err != nil {
			t.Fatalf("chunk %q: %v", e, err)
		}
		if ch.Object != "chat.completion.chunk" {
			t.Fatalf("chunk object %q", ch.Object)
		}
		for _, c := range ch.Choices {
			if c.Delta.Content != nil {
				text.WriteString(*c.Delta.Content)
			}
		}
		if ch.Usage != nil {
			usage = ch.Usage
		}
	}
	if text.Len() == 0 {
		t.Fatal("stream carried no text")
	}
	if usage == nil || usage.CompletionTokens == 0 {
		t.Fatal("include_usage asked for, no usage chunk sent")
	}
}

func TestGatewayRejectsBadInput(t *testing.T) {
	a := startAgent(t, quietConfig())
	big := `{"model":"sim-small","messages":[{"role":"user","content":"` + strings.Repeat("a", 5<<20) + `"}]}`
	cases := []struct {
		name, path, body string
		key              string
		status           int
		code, param      string
	}{
		{"malformed JSON", "/v1/chat/completions", `{"model":`, devKey, 400, "", ""},
		{"wrong type", "/v1/chat/completions", `{"model":"sim-small","messages":{}}`, devKey, 400, "", "messages"},
		{"empty messages", "/v1/chat/completions", `{"model":"sim-small","messages":[]}`, devKey, 400, "", "messages"},
		{"invalid UTF-8", "/v1/chat/completions", "{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}", devKey, 400, "", ""},
		{"body over the limit", "/v1/chat/completions", big, devKey, 413, "request_too_large", ""},
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-7","messages":[{"role":"user","content":"x"}]}`, devKey, 404, "model_not_found", ""},
		{"unknown feature", "/v1/chat/completions", `{"model":"feature/nope","messages":[{"role":"user","content":"x"}]}`, devKey, 404, "feature_not_found", ""},
		{"unknown feature invoke", "/v1/features/nope/invoke", `{"vars":{}}`, devKey, 404, "feature_not_found", ""},
		{"missing key", "/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"x"}]}`, "", 401, "missing_api_key", ""},
		{"wrong key", "/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"x"}]}`, "gk_wrong-key-0000000", 401, "invalid_api_key", ""},
		{"missing variable", "/v1/features/ticket-triage/invoke", `{"vars":{}}`, devKey, 400, "", "vars"},
		{"unknown URL", "/v1/batches", `{}`, devKey, 404, "unknown_url", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", a.srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			body := decode[chat.ErrorBody](t, resp)
			if body.Error.Message == "" || body.Error.Type == "" {
				t.Fatalf("error without message or type: %+v", body)
			}
			if tc.code != "" && body.Error.Code != tc.code {
				t.Fatalf("code %q, want %q (%s)", body.Error.Code, tc.code, body.Error.Message)
			}
			if tc.param != "" && body.Error.Param != tc.param {
				t.Fatalf("param %q, want %q (%s)", body.Error.Param, tc.param, body.Error.Message)
			}
		})
	}
	// The agent is still healthy and serving.
	resp := a.post("/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"still there?"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("after bad input the agent answers %d", resp.StatusCode)
	}
}

func TestInvokeFeatureAndFeedback(t *testing.T) {
	a := startAgent(t, quietConfig())
	resp := a.post("/v1/features/ticket-triage/invoke", `{"vars":{"ticket":"My parcel never arrived"},"user":"u-17","journey":"help-centre"}`)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	out := decode[gateway.InvokeResponse](t, resp)
	if out.Release != "ticket-triage@v1" || !strings.HasPrefix(out.ReleaseHash, "sha256:") || out.TraceID == "" {
		t.Fatalf("release or trace missing: %+v", out)
	}
	obj, ok := out.Output.(map[string]any)
	if !ok || obj["category"] == nil || obj["priority"] == nil {
		t.Fatalf("output is not the schema's object: %#v", out.Output)
	}
	tr := a.waitTrace(out.TraceID)
	if tr.Feature != "ticket-triage" || tr.Journey != "help-centre" || tr.User != "u-17" || tr.ReleaseHash != out.ReleaseHash {
		t.Fatalf("trace does not name the feature, journey, user and release: %+v", tr)
	}

	fb := a.post("/v1/feedback", `{"trace_id":"`+out.TraceID+`","thumbs":"down","comment":"wrong category"}`)
	if fb.StatusCode != 200 {
		b, _ := io.ReadAll(fb.Body)
		t.Fatalf("feedback status %d: %s", fb.StatusCode, b)
	}
	got := decode[trace.Trace](t, a.admin("/admin/v1/traces/"+out.TraceID))
	if len(got.Feedback) != 1 || got.Feedback[0].Thumbs != "down" || got.Feedback[0].Comment != "wrong category" {
		t.Fatalf("feedback not stored with the trace: %+v", got.Feedback)
	}
	bad := a.post("/v1/feedback", `{"trace_id":"`+out.TraceID+`","score":7}`)
	if bad.StatusCode != 400 {
		t.Fatalf("score 7 accepted with status %d", bad.StatusCode)
	}
	unknown := a.post("/v1/feedback", `{"trace_id":"0123","thumbs":"up"}`)
	if unknown.StatusCode != 404 {
		t.Fatalf("feedback on an unknown trace: status %d, want 404", unknown.StatusCode)
	}
}

func TestAdminNeedsToken(t *testing.T) {
	a := startAgent(t, quietConfig())
	for _, tok := range []string{"", "wrong", devKey} {
		req, _ := http.NewRequest("GET", a.srv.URL+"/admin/v1/traces", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("token %q: status %d, want 401", tok, resp.StatusCode)
		}
	}
}

func TestAdminSearchAndFeed(t *testing.T) {
	a := startAgent(t, quietConfig())
	req, _ := http.NewRequest("GET", a.srv.URL+"/admin/v1/feed", nil)
	req.Header.Set("Authorization", "Bearer "+devAdmin)
	feed, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Body.Close()
	br := bufio.NewReader(feed.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("feed did not open with a comment: %q", line)
	}
	resp := a.post("/v1/chat/completions", `{"model":"sim-large","messages":[{"role":"user","content":"hi"}]}`)
	id, traceID := resp.Header.Get("X-Request-Id"), resp.Header.Get("traceparent")[3:35]
	resp.Body.Close()
	var sum trace.Summary
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("feed ended: %v", err)
		}
		if d, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
			if err := json.Unmarshal([]byte(d), &sum); err != nil {
				t.Fatalf("feed event %q: %v", d, err)
			}
			break
		}
	}
	if sum.ID != id || sum.TraceID != traceID || sum.Model != "sim-large" {
		t.Fatalf("feed event %+v, want call %s of trace %s on sim-large", sum, id, traceID)
	}
	list := decode[struct{ Traces []trace.Summary }](t, a.admin("/admin/v1/traces?model=sim-large&status=ok"))
	if len(list.Traces) != 1 || list.Traces[0].ID != id {
		t.Fatalf("search by model: %+v", list.Traces)
	}
	none := decode[struct{ Traces []trace.Summary }](t, a.admin("/admin/v1/traces?model=sim-small"))
	if len(none.Traces) != 0 {
		t.Fatalf("search for another model found %d traces", len(none.Traces))
	}
}

func TestMetricsAndHealth(t *testing.T) {
	a := startAgent(t, quietConfig())
	a.post("/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}`).Body.Close()
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(a.srv.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(a.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Every store says how much it holds.
	stores := []string{"gantry_trace_store_traces", "gantry_trace_store_bytes", "gantry_trace_queue_length",
		"gantry_response_cache_entries", "gantry_response_cache_bytes", "gantry_embedding_cache_entries",
		"gantry_embedding_cache_bytes", "gantry_budget_ended_ids", "gantry_budget_ended_bytes", "gantry_budget_users"}
	for _, want := range append([]string{"gantry_requests_total", "gantry_request_duration_seconds", "gantry_tokens_total", "gantry_cost_usd_total"}, stores...) {
		if !bytes.Contains(b, []byte(want)) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
}

func mustRequest(t testing.TB, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func defaultClient() *http.Client { return http.DefaultClient }

// Requests a hostile or careless client sends at the HTTP layer: a body in
// an encoding the gateway does not read, a body that trickles in, an
// oversized journey header, and the same W3C trace id from two teams'
// keys, which must not let one team read or rate the other's call.
func TestHostileRequestsAtTheHTTPLayer(t *testing.T) {
	cfg := quietConfig()
	other := "gk_other-team-key-0001"
	cfg.Keys = append(cfg.Keys, config.Key{Name: "other", Team: "other", Hash: config.HashKey(other)})
	a := startAgent(t, cfg)
	chat := `{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}`

	gz := a.post("/v1/chat/completions", chat, "Content-Encoding", "gzip")
	if e := decode[struct{ Error chatErr }](t, gz); gz.StatusCode != http.StatusUnsupportedMediaType || e.Error.Code != "unsupported_content_encoding" {
		t.Fatalf("gzip body: %d %+v, want 415 unsupported_content_encoding", gz.StatusCode, e)
	}
	long := a.post("/v1/chat/completions", chat, "X-Gantry-Journey", strings.Repeat("j", 257))
	if e := decode[struct{ Error chatErr }](t, long); long.StatusCode != http.StatusBadRequest || e.Error.Param != "X-Gantry-Journey" {
		t.Fatalf("long journey: %d %+v, want 400 naming the header", long.StatusCode, e)
	}

	// The same traceparent from two teams: two calls, each found by its
	// own request id; the trace id names both and is refused as ambiguous.
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	mine := a.post("/v1/chat/completions", chat, "Traceparent", tp)
	mineID := mine.Header.Get("X-Request-Id")
	mine.Body.Close()
	req := mustRequest(t, "POST", a.srv.URL+"/v1/chat/completions", chat)
	req.Header.Set("Authorization", "Bearer "+other)
	req.Header.Set("Traceparent", tp)
	theirs, err := http.DefaultClient.Do(req)
	if err != nil || theirs.StatusCode != 200 {
		t.Fatalf("the other team's call: %v %v", theirs, err)
	}
	theirID := theirs.Header.Get("X-Request-Id")
	theirs.Body.Close()
	a.waitTrace(mineID)
	a.waitTrace(theirID)
	for id, key := range map[string]string{mineID: "dev", theirID: "other"} {
		tr := decode[trace.Trace](t, a.admin("/admin/v1/traces/"+id))
		if tr.ID != id || tr.Key != key || tr.TraceID != "0af7651916cd43dd8448eb211c80319c" {
			t.Fatalf("call %s: %+v, want the call of key %s in the shared trace", id, tr, key)
		}
	}
	if resp := a.admin("/admin/v1/traces/0af7651916cd43dd8448eb211c80319c"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("a trace id of two calls: %d, want 409 listing them", resp.StatusCode)
	}
	// Feedback by the trace id names this key's one call in it; the other
	// team's call cannot be rated with this key.
	fb := a.post("/v1/feedback", `{"trace_id":"0af7651916cd43dd8448eb211c80319c","thumbs":"down"}`)
	if fb.StatusCode != 200 {
		t.Fatalf("feedback by trace id: %d", fb.StatusCode)
	}
	fb.Body.Close()
	if tr := decode[trace.Trace](t, a.admin("/admin/v1/traces/"+mineID)); len(tr.Feedback) != 1 {
		t.Fatalf("my call has %d feedback, want 1", len(tr.Feedback))
	}
	if tr := decode[trace.Trace](t, a.admin("/admin/v1/traces/"+theirID)); len(tr.Feedback) != 0 {
		t.Fatalf("the other team's call got feedback from my key: %+v", tr.Feedback)
	}
	if resp := a.post("/v1/feedback", `{"trace_id":"`+theirID+`","thumbs":"down"}`); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("feedback on another team's call: %d, want 404", resp.StatusCode)
	}
}

// A body that trickles in is cut after the body timeout.
func TestSlowBodyIsCut(t *testing.T) {
	const timeout = time.Second
	a := startAgentWith(t, quietConfig(), func(o *Options) { o.bodyTimeout = timeout })
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"model":"sim-small","messages":[`))
		time.Sleep(timeout + 2*time.Second)
		pw.Close()
	}()
	req := mustRequest(t, "POST", a.srv.URL+"/v1/chat/completions", "")
	req.Body = pr
	req.Header.Set("Authorization", "Bearer "+devKey)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("a trickling body: %d, want 408", resp.StatusCode)
		}
	}
	if took := time.Since(start); took > timeout+time.Second {
		t.Fatalf("the body was read for %s, past the %s timeout", took, timeout)
	}
}

// chatErr is the OpenAI error object the gateway answers with.
type chatErr struct {
	Code  string `json:"code"`
	Param string `json:"param"`
	Type  string `json:"type"`
}
