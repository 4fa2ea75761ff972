package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/provider/fake"
	"gantry/pipeline/trace"
)

// upstreams is a route "r" over two OpenAI-compatible fakes: primary as
// its target and backup as its fallback, through the real openai provider
// over HTTP.
type upstreams struct {
	primary, backup *fake.Fake
	a               *testAgent
}

func startWithUpstreams(t *testing.T, primary, backup fake.Options, policy config.Route) *upstreams {
	t.Helper()
	ps, pf := fake.NewServer(primary)
	bs, bf := fake.NewServer(backup)
	t.Cleanup(ps.Close)
	t.Cleanup(bs.Close)
	return &upstreams{primary: pf, backup: bf, a: startAgent(t, routeConfig(ps.URL+"/v1", bs.URL+"/v1", policy))}
}

func routeConfig(primaryURL, backupURL string, policy config.Route) *config.Config {
	policy.Name = "r"
	policy.Targets = []config.Target{{Model: "m1", Weight: 1}}
	policy.Fallbacks = []string{"m2"}
	return &config.Config{
		Providers: []config.Provider{{Name: "p1", Kind: config.KindOpenAI, BaseURL: primaryURL}, {Name: "p2", Kind: config.KindOpenAI, BaseURL: backupURL}},
		Models:    []config.Model{{Name: "m1", Provider: "p1", Price: config.Price{Input: 1, Output: 1}}, {Name: "m2", Provider: "p2", Price: config.Price{Input: 1, Output: 1}}},
		Routes:    []config.Route{policy},
	}
}

// policy: two attempts per target, quick backoff, 500ms attempt timeout.
func policy() config.Route {
	return config.Route{
		Retry:    config.Retry{Attempts: 2, Backoff: config.Duration(10 * time.Millisecond), MaxBackoff: config.Duration(50 * time.Millisecond)},
		Timeout:  config.Duration(500 * time.Millisecond),
		Deadline: config.Duration(10 * time.Second),
		Breaker:  config.Breaker{Failures: 100, Cooldown: config.Duration(time.Minute)},
	}
}

const hello = `{"model":"r","messages":[{"role":"user","content":"hello"}]}`
const helloStream = `{"model":"r","stream":true,"messages":[{"role":"user","content":"hello"}]}`

func (u *upstreams) call(t *testing.T, body string) (*http.Response, string) {
	t.Helper()
	resp := u.a.post("/v1/chat/completions", body)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestResilienceRetriesHonouringRetryAfter(t *testing.T) {
	u := startWithUpstreams(t, fake.Options{Script: []fake.Fault{{Status: 429, RetryAfter: "1"}}}, fake.Options{}, policy())
	start := time.Now()
	resp, body := u.call(t, hello)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if u.primary.Count() != 2 || u.backup.Count() != 0 {
		t.Fatalf("primary %d backup %d calls; want the primary retried once", u.primary.Count(), u.backup.Count())
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %v, before the upstream's Retry-After of 1s", waited)
	}
	tr := u.a.waitTrace(resp.Header.Get("x-request-id"))
	if len(tr.Attempts) != 2 || tr.Attempts[0].Status != "http_429" || tr.Attempts[1].Backoff.D() < time.Second {
		t.Fatalf("attempts %+v, want a 429 then a try after at least 1s", tr.Attempts)
	}
}

func TestResilienceFallsBack(t *testing.T) {
	closed := func() string { // a port nothing listens on
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr + "/v1"
	}
	cases := []struct {
		name    string
		primary fake.Fault
		url     string
		stream  bool
		status  string
	}{
		{"server error", fake.Fault{Status: 500}, "", false, "http_500"},
		{"overloaded", fake.Fault{Status: 503}, "", false, "http_503"},
		{"rate limited", fake.Fault{Status: 429}, "", false, "http_429"},
		{"timeout", fake.Fault{HeaderDelay: 5 * time.Second}, "", false, "timeout"},
		{"garbage", fake.Fault{Garbage: true}, "", false, "protocol"},
		{"connection closed", fake.Fault{Hijack: true}, "", false, "connect"},
		{"connection refused", fake.Fault{}, closed(), false, "connect"},
		{"stream error status", fake.Fault{Status: 502}, "", true, "http_502"},
		{"stream closed before first token", fake.Fault{Hijack: true}, "", true, "connect"},
		{"stream timeout before first token", fake.Fault{HeaderDelay: 5 * time.Second}, "", true, "timeout"},
		{"stream garbage", fake.Fault{Garbage: true}, "", true, "protocol"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := startWithUpstreams(t, fake.Options{Default: tc.primary}, fake.Options{Content: "from the backup"}, policy())
			if tc.url != "" {
				bs, _ := fake.NewServer(fake.Options{Content: "from the backup"})
				defer bs.Close()
				if err := u.a.s.Reload(withDevKey(routeConfig(tc.url, bs.URL+"/v1", policy()))); err != nil {
					t.Fatal(err)
				}
			}
			body := hello
			if tc.stream {
				body = helloStream
			}
			resp, out := u.call(t, body)
			if resp.StatusCode != 200 || !strings.Contains(out, "backup") {
				t.Fatalf("status %d body %s; want the backup's answer", resp.StatusCode, out)
			}
			if tc.stream && !strings.HasSuffix(strings.TrimSpace(out), "data: [DONE]") {
				t.Fatalf("stream after a fallback does not end cleanly: %s", out)
			}
			tr := u.a.waitTrace(resp.Header.Get("x-request-id"))
			if tr.Model != "m2" || tr.Fallbacks != 1 || tr.Attempts[0].Status != tc.status {
				t.Fatalf("trace model %q fallbacks %d first attempt %q; want m2, 1, %q", tr.Model, tr.Fallbacks, tr.Attempts[0].Status, tc.status)
			}
		})
	}
}

func withDevKey(cfg *config.Config) *config.Config {
	cfg.Keys = append(cfg.Keys, config.Key{Name: "dev", Team: "dev", Hash: config.HashKey(devKey)})
	return cfg
}

func TestResilienceStreamCutAfterTokensEndsWithError(t *testing.T) {
	u := startWithUpstreams(t, fake.Options{Default: fake.Fault{CutAfter: 3}}, fake.Options{}, policy())
	resp, out := u.call(t, helloStream)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if strings.Contains(out, "[DONE]") {
		t.Fatalf("a cut stream ended with [DONE]:\n%s", out)
	}
	events := readSSE(t, strings.NewReader(out))
	last := events[len(events)-1]
	if !strings.Contains(last, `"error"`) || !strings.Contains(last, "stream_cut") {
		t.Fatalf("last event %q is not a stream_cut error", last)
	}
	content := 0
	for _, e := range events[:len(events)-1] {
		if strings.Contains(e, `"content":"`) && !strings.Contains(e, `"content":""`) {
			content++
		}
	}
	if content != 3 {
		t.Fatalf("%d content chunks reached the client, want the 3 the upstream sent before the cut", content)
	}
	if u.backup.Count() != 0 {
		t.Fatal("the backup was called after output had reached the client")
	}
}

func TestResilienceUpstreamErrorMidStream(t *testing.T) {
	u := startWithUpstreams(t, fake.Options{Default: fake.Fault{ErrorAfter: 2}}, fake.Options{}, policy())
	_, out := u.call(t, helloStream)
	if strings.Contains(out, "[DONE]") || !strings.Contains(out, `"error"`) {
		t.Fatalf("an upstream error mid-stream must end with an error event, not [DONE]:\n%s", out)
	}
}

func TestResilienceEveryTargetFailing(t *testing.T) {
	cases := []struct {
		name   string
		fault  fake.Fault
		status int
		retry  bool
	}{
		{"rate limited everywhere", fake.Fault{Status: 429, RetryAfter: "0"}, 429, true},
		{"server errors everywhere", fake.Fault{Status: 500}, 502, false},
		{"timeouts everywhere", fake.Fault{HeaderDelay: 5 * time.Second}, 504, false},
		{"bad request upstream", fake.Fault{Status: 400, Message: "bad temperature"}, 400, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := policy()
			p.Retry.Attempts = 1
			p.Timeout = config.Duration(200 * time.Millisecond)
			u := startWithUpstreams(t, fake.Options{Default: tc.fault}, fake.Options{Default: tc.fault}, p)
			resp, out := u.call(t, hello)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, out)
			}
			if tc.retry {
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
					t.Fatalf("Retry-After %q on a 429", resp.Header.Get("Retry-After"))
				}
			}
			if !strings.Contains(out, `"error"`) {
				t.Fatalf("body is not an OpenAI error: %s", out)
			}
		})
	}
}

func TestResilienceCircuitBreaker(t *testing.T) {
	p := policy()
	p.Retry.Attempts = 1
	p.Breaker = config.Breaker{Failures: 3, Cooldown: config.Duration(time.Hour)}
	u := startWithUpstreams(t, fake.Options{Default: fake.Fault{Status: 500}}, fake.Options{}, p)
	for i := 0; i < 10; i++ {
		if resp, out := u.call(t, hello); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, out)
		}
	}
	if n := u.primary.Count(); n != 3 {
		t.Fatalf("the failing primary got %d calls; its circuit should open after 3", n)
	}
	resp, _ := http.Get(u.a.srv.URL + "/metrics")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `gantry_circuit_breaker_state{target="m1"} 2`) {
		t.Fatal("/metrics does not show m1's circuit open")
	}
}

func TestResilienceClientDeadline(t *testing.T) {
	u := startWithUpstreams(t, fake.Options{Default: fake.Fault{HeaderDelay: 3 * time.Second}}, fake.Options{Default: fake.Fault{HeaderDelay: 3 * time.Second}}, policy())
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", u.a.srv.URL+"/v1/chat/completions", strings.NewReader(hello))
	req.Header.Set("Authorization", "Bearer "+devKey)
	start := time.Now()
	_, err := http.DefaultClient.Do(req)
	if err == nil {
		t.Fatal("call succeeded past the client's deadline")
	}
	// The gateway notices the client left, stops, and records it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if list := u.a.s.store.Search(traceQuery()); len(list) == 1 {
			if list[0].HTTPStatus != 499 {
				t.Fatalf("recorded status %d, want 499 (client closed)", list[0].HTTPStatus)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("the gateway kept working %v after the client left", time.Since(start))
			}
			if u.backup.Count() != 0 {
				t.Fatal("the fallback was tried after the client had left")
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no trace of the abandoned call")
}

func traceQuery() trace.Query { return trace.Query{Limit: 10} }
