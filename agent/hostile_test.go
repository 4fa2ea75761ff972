package agent

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gantry/config"
)

// A client that trickles its body a byte at a time gets its answer and
// loses the connection at the body timeout, whether the endpoint reads the
// body (and times out) or refuses the request without reading it: the
// agent neither waits for the rest of the body nor keeps the connection.
func TestSlowBodyEndsTheConnection(t *testing.T) {
	const timeout = time.Second
	a := startAgentWith(t, quietConfig(), func(o *Options) { o.bodyTimeout = timeout })
	cases := []struct {
		name, method, path, token string
		status                    int
	}{
		{"chat completion", "POST", "/v1/chat/completions", devKey, http.StatusRequestTimeout},
		{"configuration on an agent without a cluster", "PUT", "/admin/v1/config", devAdmin, http.StatusServiceUnavailable},
		{"feedback with a wrong key", "POST", "/v1/feedback", "gk_wrong", http.StatusUnauthorized},
		{"admin with no token", "POST", "/admin/v1/keys", "", http.StatusUnauthorized},
		{"feedback", "POST", "/v1/feedback", devKey, http.StatusRequestTimeout},
		{"unknown gateway path", "POST", "/v1/nowhere", devKey, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", strings.TrimPrefix(a.srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
				tc.method, tc.path, tc.token)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
						if _, err := conn.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
			start := time.Now()
			conn.SetReadDeadline(time.Now().Add(timeout + 5*time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body trickles in: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Fatalf("the connection stayed open %s after the body began: %v", time.Since(start), err)
			}
			if took := time.Since(start); took > timeout+2*time.Second {
				t.Fatalf("the connection closed %s after the body began, past the %s timeout", took, timeout)
			}
		})
	}
}

// A call that takes longer than the body timeout is answered: the deadline
// is lifted once the body has been read, so the agent's watch for the
// client leaving does not mistake it for a client gone.
func TestBodyDeadlineSparesLongCalls(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cfg := quietConfig()
	cfg.Providers[0].Sim.LatencyP50 = config.Duration(4 * timeout)
	cfg.Providers[0].Sim.LatencyP99 = config.Duration(5 * timeout)
	a := startAgentWith(t, cfg, func(o *Options) { o.bodyTimeout = timeout })
	start := time.Now()
	resp := a.post("/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"Hello"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a call of %s with a body timeout of %s: %d %s", time.Since(start), timeout, resp.StatusCode, b)
	}
	if took := time.Since(start); took < 2*timeout {
		t.Fatalf("the call took %s, not longer than the body timeout; the test proves nothing", took)
	}
}

// A provider's api_key_env is checked against the agent's rules when the
// configuration is loaded, whether or not a model uses the provider yet:
// a variable the agent would never read (HOME, its own secrets) is refused
// then, naming the provider, rather than sitting in the replicated
// configuration until a model names it.
func TestUnusedProviderKeyVariableIsChecked(t *testing.T) {
	a := startAgent(t, quietConfig())
	for _, env := range []string{"HOME", "PATH", "GANTRY_CLUSTER_SECRET", "AWS_SECRET_ACCESS_KEY"} {
		cfg := quietConfig()
		cfg.Providers = append(cfg.Providers, config.Provider{Name: "unused", Kind: config.KindOpenAI, BaseURL: "http://upstream.example", APIKeyEnv: env})
		err := a.s.Reload(cfg)
		if err == nil || !strings.Contains(err.Error(), env) ||
			!strings.Contains(err.Error(), `provider "unused"`) && !strings.Contains(err.Error(), "providers[2].api_key_env") {
			t.Fatalf("an unused provider with api_key_env %s: %v, want it refused naming the provider and the variable", env, err)
		}
	}
	cfg := quietConfig()
	cfg.Providers = append(cfg.Providers, config.Provider{Name: "unused", Kind: config.KindOpenAI, BaseURL: "http://upstream.example", APIKeyEnv: "UNSET_UPSTREAM_API_KEY"})
	if err := a.s.Reload(cfg); err != nil {
		t.Fatalf("an unused provider whose key variable is allowed but unset: %v", err)
	}
}

// Feedback on one call is bounded; past the bound the call is still
// there, and the answer says it is full rather than missing.
func TestFeedbackPastTheLimitIsAConflict(t *testing.T) {
	a := startAgent(t, quietConfig())
	resp := a.post("/v1/chat/completions", `{"model":"sim-small","messages":[{"role":"user","content":"Hello"}]}`)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	a.waitTrace(id)
	for i := 1; ; i++ {
		fb := a.post("/v1/feedback", `{"trace_id":"`+id+`","thumbs":"up"}`)
		e := decode[struct {
			Error chatErr `json:"error"`
		}](t, fb)
		if fb.StatusCode == http.StatusOK {
			if i > 100 {
				t.Fatal("100 feedbacks kept on one call")
			}
			continue
		}
		if fb.StatusCode != http.StatusConflict || e.Error.Code != "feedback_limit" {
			t.Fatalf("feedback %d: %d %+v, want 409 feedback_limit", i, fb.StatusCode, e.Error)
		}
		break
	}
	if got := a.admin("/admin/v1/traces/" + id); got.StatusCode != http.StatusOK {
		t.Fatalf("the full call: %d", got.StatusCode)
	}
}
