package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The hostile-input test sends what an attacker holding one virtual key (or
// a careless admin script) would send to a real dev agent: malformed and
// oversized bodies, wrong types, forged auth, odd paths, poisonous
// schemas, trace ids of other calls, hostile configuration and clients
// that send slowly. Each case states the status and error code a user
// should see and why. Afterwards the agent must be ready, have answered no
// 5xx of its own, hold its memory and have let every slow connection go.

const (
	hostileAdmin = "gat_e2e"
	// The gateway's body deadline and the server's header deadline in the
	// agent (gateway.DefaultBodyTimeout, http.Server.ReadHeaderTimeout).
	bodyDeadline   = 30 * time.Second
	headerDeadline = 10 * time.Second
)

// hostileCase is one request and what the agent must answer.
type hostileCase struct {
	name   string
	method string
	path   string
	token  string   // sent as "Authorization: Bearer <token>"; "" sends none
	header []string // further header pairs
	body   string
	status int
	// code is the error's code (the OpenAI and admin shapes) or, on the
	// Messages API, its type; "" means an error without a code, or none.
	code string
	// param, when set, is the field a 400 must name.
	param string
	why   string
}

// hostileYAML quiets the simulator, so that a 5xx could only be the
// agent's own, and adds a feature whose template loops over three lists
// the caller sends.
const hostileYAML = `providers:
  - {name: sim, kind: sim, sim: {latency_p50: 2ms, latency_p99: 10ms, output_tokens: 20, seed: 5}}
  - {name: sim-unreliable, kind: sim, sim: {latency_p50: 2ms, latency_p99: 10ms, output_tokens: 20, seed: 5}}
models:
  - {name: sim-small, provider: sim, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
features:
  - name: hostile-loop
    releases:
      - version: 1
        route: sim-small
        template: [{role: user, content: "{{#each a}}{{#each b}}{{#each c}}{{/each}}{{/each}}{{/each}}"}]
        variables: [{name: a, type: list}, {name: b, type: list}, {name: c, type: list}]
    labels: {production: 1}
`

func TestHostileInput(t *testing.T) {
	addr := startDevAgent(t)
	h := &hostile{t: t, base: "http://" + addr, hc: &http.Client{Timeout: 45 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	h.expect(hostileCase{name: "quiet simulator", method: "PUT", path: "/admin/v1/config", token: hostileAdmin, body: hostileYAML, status: 200})
	other := h.secret("/admin/v1/keys", `{"name":"hostile-other","team":"other"}`)
	viewer := h.secret("/admin/v1/tokens", `{"name":"hostile-viewer","role":"viewer"}`)
	goroutines := h.metric("go_goroutines")

	// Slow clients run while the cases are sent: what they hold must not
	// slow the others, and must be let go at the deadlines.
	var slow sync.WaitGroup
	for _, sc := range slowClients() {
		slow.Add(1)
		go func() {
			defer slow.Done()
			if err := h.slowClient(sc); err != nil {
				t.Errorf("slow client %s: %v", sc.name, err)
			}
		}()
	}

	cases := hostileCases(other, viewer)
	if len(cases) < 200 {
		t.Fatalf("%d cases, want at least 200", len(cases))
	}
	t.Logf("%d cases and %d slow clients", len(cases), len(slowClients()))
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("two cases are named %q", c.name)
		}
		names[c.name] = true
	}
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				h.check(t, c)
			})
		}
	})
	t.Run("trace ids callers share", func(t *testing.T) { h.sharedTraces(t, other) })
	t.Run("many users", func(t *testing.T) { h.manyUsers(t) })
	slow.Wait()

	// After all that, the agent serves, and has let everything go.
	h.expect(hostileCase{name: "ready after", method: "GET", path: "/readyz", status: 200})
	h.expect(hostileCase{name: "serves after", method: "POST", path: "/v1/chat/completions", token: e2eKey,
		body: `{"model":"sim-small","messages":[{"role":"user","content":"still there?"}]}`, status: 200})
	if n := h.own5xx(); n != 0 {
		t.Errorf("%d answers were 5xx that no upstream caused", n)
	}
	// No metric series is named by what a caller sent: unknown models and
	// features, users, cards, trace ids.
	m := h.expect(hostileCase{name: "metrics after", method: "GET", path: "/metrics", status: 200})
	for _, sent := range []string{`"nope"`, "uuuuuuuu", "4111", "5bf92f3577b34da6", "../", strings.Repeat("m", 64)} {
		if bytes.Contains(m.body, []byte(sent)) {
			t.Errorf("/metrics holds %q, which a caller sent", sent)
		}
	}
	if len(m.body) > 1<<20 {
		t.Errorf("/metrics is %d bytes after the run", len(m.body))
	}
	heap, rss := h.metric("go_memstats_heap_inuse_bytes"), h.metric("process_resident_memory_bytes")
	t.Logf("after the run: heap in use %.0f MiB, resident %.0f MiB, /metrics %d KiB", heap/(1<<20), rss/(1<<20), len(m.body)>>10)
	if heap > 256<<20 {
		t.Errorf("heap in use after the run: %.0f MiB, want under 256 MiB", heap/(1<<20))
	}
	if rss > 512<<20 {
		t.Errorf("resident memory after the run: %.0f MiB, want under 512 MiB", rss/(1<<20))
	}
	// Every slow connection has been closed: the goroutines that served
	// them are gone (a margin for the idle keep-alive connections).
	deadline := time.Now().Add(5 * time.Second)
	for n := h.metric("go_goroutines"); n > goroutines+40; n = h.metric("go_goroutines") {
		if time.Now().After(deadline) {
			t.Errorf("%v goroutines after the run, %v before it: connections were kept", n, goroutines)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostile sends requests to one agent and tallies its own 5xx answers.
type hostile struct {
	t    *testing.T
	base string
	hc   *http.Client
	mu   sync.Mutex
	bad  int // 5xx answers whose error is not an upstream's
}

// answer is a response's status and error.
type answer struct {
	status int
	code   string
	param  string
	typ    string
	body   []byte
	header http.Header
}

func (h *hostile) do(c hostileCase) (answer, error) {
	req, err := http.NewRequest(c.method, h.base+c.path, strings.NewReader(c.body))
	if err != nil {
		return answer{}, err
	}
	if c.body == "" {
		req.Body = http.NoBody
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("reading the answer: %w", err)
	}
	a := answer{status: resp.StatusCode, body: b, header: resp.Header}
	var e struct {
		Error struct {
			Code  any    `json:"code"`
			Param string `json:"param"`
			Type  string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		if s, ok := e.Error.Code.(string); ok {
			a.code = s
		}
		a.param, a.typ = e.Error.Param, e.Error.Type
	}
	if a.status >= 500 && a.typ != "upstream_error" && a.typ != "timeout_error" && a.typ != "overloaded_error" && a.typ != "api_error" {
		h.mu.Lock()
		h.bad++
		h.mu.Unlock()
	}
	return a, nil
}

func (h *hostile) own5xx() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bad
}

// check sends c and compares the answer with what c expects.
func (h *hostile) check(t *testing.T, c hostileCase) answer {
	t.Helper()
	a, err := h.do(c)
	if err != nil {
		t.Fatalf("%s %s (%s): %v", c.method, c.path, c.why, err)
	}
	got := a.code
	if strings.HasPrefix(c.path, "/v1/messages") {
		got = a.typ
	}
	if a.status != c.status || (c.status >= 400 && got != c.code) || (c.param != "" && a.param != c.param) {
		t.Errorf("%s %s: got %d code %q param %q, want %d code %q param %q (%s)\n%.400s",
			c.method, c.path, a.status, got, a.param, c.status, c.code, c.param, c.why, a.body)
	}
	return a
}

// expect is check at the level of the whole test.
func (h *hostile) expect(c hostileCase) answer {
	h.t.Helper()
	return h.check(h.t, c)
}

// secret creates a key or token through the admin API and returns its
// secret.
func (h *hostile) secret(path, body string) string {
	h.t.Helper()
	a := h.expect(hostileCase{name: path, method: "POST", path: path, token: hostileAdmin, body: body, status: 201})
	var s struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(a.body, &s); err != nil || s.Secret == "" {
		h.t.Fatalf("POST %s: no secret in %s", path, a.body)
	}
	return s.Secret
}

// metric reads one unlabelled value of the agent's /metrics.
func (h *hostile) metric(name string) float64 {
	h.t.Helper()
	a := h.expect(hostileCase{name: "metrics", method: "GET", path: "/metrics", status: 200})
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(a.body)
	if m == nil {
		h.t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
	return v
}

// sharedTraces: two teams send the same W3C trace id. Each call keeps its
// own id; the trace id names neither call alone; each team rates only its
// own call, and the other team's call is not found for it.
func (h *hostile) sharedTraces(t *testing.T, other string) {
	const tp = "00-5bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01"
	call := func(key string) string {
		a := h.check(t, hostileCase{method: "POST", path: "/v1/chat/completions", token: key, header: []string{"traceparent", tp},
			body: `{"model":"sim-small","messages":[{"role":"user","content":"hello"}]}`, status: 200, why: "a call in a shared trace"})
		id := a.header.Get("X-Request-Id")
		if id == "" || strings.Contains(id, "5bf92f3577b34da6a3ce929d0e0e4737") {
			t.Fatalf("the call's id %q is not its own", id)
		}
		return id
	}
	mine, theirs := call(e2eKey), call(other)
	if mine == theirs {
		t.Fatalf("two calls share the id %s", mine)
	}
	fb := func(key, id string) string { return `{"trace_id":"` + id + `","thumbs":"down"}` }
	steps := []hostileCase{
		{method: "GET", path: "/admin/v1/traces/" + mine, token: hostileAdmin, status: 200, why: "my call under its own id, though the other team's came later"},
		{method: "GET", path: "/admin/v1/traces/" + theirs, token: hostileAdmin, status: 200, why: "their call under its own id"},
		{method: "GET", path: "/admin/v1/traces/5bf92f3577b34da6a3ce929d0e0e4737", token: hostileAdmin, status: 409, code: "conflict", why: "a W3C trace id of two calls names neither"},
		{method: "POST", path: "/v1/feedback", token: e2eKey, body: fb(e2eKey, "5bf92f3577b34da6a3ce929d0e0e4737"), status: 200, why: "the trace id names my key's one call in it"},
		{method: "POST", path: "/v1/feedback", token: e2eKey, body: fb(e2eKey, theirs), status: 404, code: "trace_not_found", why: "the other team's call is not mine to rate"},
		{method: "POST", path: "/v1/feedback", token: other, body: fb(other, mine), status: 404, code: "trace_not_found", why: "nor mine theirs"},
		{method: "POST", path: "/v1/feedback", token: other, body: fb(other, theirs), status: 200, why: "each team rates its own call"},
	}
	for _, s := range steps {
		h.check(t, s)
	}
	for _, id := range []string{mine, theirs} {
		a := h.check(t, hostileCase{method: "GET", path: "/admin/v1/traces/" + id, token: hostileAdmin, status: 200})
		var tr struct {
			Feedback []json.RawMessage `json:"feedback"`
		}
		if err := json.Unmarshal(a.body, &tr); err != nil || len(tr.Feedback) != 1 {
			t.Errorf("call %s has %d feedback, want its own team's one: %v", id, len(tr.Feedback), err)
		}
	}
}

// manyUsers: distinct end users, each at the longest allowed name, leave a
// bounded trace in the budgets answer; a longer name is refused.
func (h *hostile) manyUsers(t *testing.T) {
	for i := range 40 {
		user := fmt.Sprintf("%03d%s", i, strings.Repeat("u", 253))
		h.check(t, hostileCase{method: "POST", path: "/v1/chat/completions", token: e2eKey,
			body: `{"model":"sim-small","user":"` + user + `","messages":[{"role":"user","content":"hi"}]}`, status: 200})
	}
	h.check(t, hostileCase{method: "POST", path: "/v1/chat/completions", token: e2eKey,
		body:   `{"model":"sim-small","user":"` + strings.Repeat("u", 1<<20) + `","messages":[{"role":"user","content":"hi"}]}`,
		status: 400, param: "user", why: "a 1 MiB user is refused, not kept for the budget period"})
	a := h.check(t, hostileCase{method: "GET", path: "/admin/v1/budgets", token: hostileAdmin, status: 200})
	if len(a.body) > 256<<10 {
		t.Errorf("GET /admin/v1/budgets is %d bytes after 40 users", len(a.body))
	}
}

// slowClient is a connection that sends its request slowly.
type slowClient struct {
	name string
	// head is sent at once; then drip is sent a byte every 200ms, for ever.
	head string
	// status is the answer expected, 0 for none (the connection just ends).
	status int
	// within is how long after the first byte the connection must end.
	within time.Duration
}

func slowClients() []slowClient {
	body := func(method, path, token string) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gantry\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", method, path, token)
	}
	cs := []slowClient{
		{"chat body", body("POST", "/v1/chat/completions", e2eKey), http.StatusRequestTimeout, bodyDeadline},
		{"invoke body", body("POST", "/v1/features/ticket-triage/invoke", e2eKey), http.StatusRequestTimeout, bodyDeadline},
		{"configuration body", body("PUT", "/admin/v1/config", hostileAdmin), http.StatusBadRequest, bodyDeadline},
		{"body with a wrong key", body("POST", "/v1/feedback", "gk_wrong"), http.StatusUnauthorized, bodyDeadline},
		{"body without an admin token", body("POST", "/admin/v1/keys", ""), http.StatusUnauthorized, bodyDeadline},
		{"body to an unknown path", body("POST", "/v1/nowhere", e2eKey), http.StatusNotFound, bodyDeadline},
		{"body to the cluster API without its secret", body("POST", "/cluster/v1/apply", ""), http.StatusForbidden, bodyDeadline},
		{"headers", "POST /v1/chat/completions HTTP/1.1\r\nHost: gantry\r\nX-Slow: ", 0, headerDeadline},
		{"request line", "POST /v1/chat/completions", 0, headerDeadline},
	}
	for i := range 10 {
		cs = append(cs, slowClient{fmt.Sprintf("chat body %d of many", i+1), body("POST", "/v1/chat/completions", e2eKey), http.StatusRequestTimeout, bodyDeadline})
	}
	return cs
}

func (h *hostile) slowClient(sc slowClient) error {
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		return err
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, sc.head); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(start.Add(sc.within + 10*time.Second))
	br := bufio.NewReader(conn)
	if sc.status != 0 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("no answer %s after the first byte: %w", time.Since(start).Round(time.Millisecond), err)
		}
		resp.Body.Close()
		if resp.StatusCode != sc.status {
			return fmt.Errorf("status %d, want %d", resp.StatusCode, sc.status)
		}
	}
	rest, err := io.ReadAll(br)
	took := time.Since(start)
	switch {
	case err != nil && !errors.Is(err, syscall.ECONNRESET):
		// A reset is the agent closing while bytes are still arriving.
		return fmt.Errorf("the connection was still open %s after the first byte: %v", took.Round(time.Millisecond), err)
	case sc.status == 0 && len(rest) > 0 && !bytes.HasPrefix(rest, []byte("HTTP/1.1 4")):
		// net/http may answer a request line it gave up on with a 400.
		return fmt.Errorf("an answer to a request never sent: %.100q", rest)
	case took < sc.within-time.Second:
		return fmt.Errorf("cut after %s, before its deadline of %s", took.Round(time.Millisecond), sc.within)
	case took > sc.within+5*time.Second:
		return fmt.Errorf("cut after %s, long past its deadline of %s", took.Round(time.Millisecond), sc.within)
	}
	return nil
}
