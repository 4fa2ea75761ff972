package pipeline

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
)

// scripted is a provider whose every call runs the next step of a script.
type scripted struct {
	mu    sync.Mutex
	name  string
	steps []step
	calls int
}

type step struct {
	err    error
	delay  time.Duration // before answering, honouring the context
	chunks []string      // for streams
	cut    error         // stream error after the chunks
}

func (s *scripted) next(ctx context.Context) (step, error) {
	s.mu.Lock()
	st := step{}
	if s.calls < len(s.steps) {
		st = s.steps[s.calls]
	} else if len(s.steps) > 0 {
		st = s.steps[len(s.steps)-1]
	}
	s.calls++
	s.mu.Unlock()
	if st.delay > 0 {
		select {
		case <-time.After(st.delay):
		case <-ctx.Done():
			return st, &provider.Error{Kind: provider.KindTimeout, Err: ctx.Err()}
		}
	}
	return st, st.err
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *scripted) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	if _, err := s.next(ctx); err != nil {
		return nil, err
	}
	return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: chat.Text("from " + s.name)}, FinishReason: "stop"}},
		Usage: &chat.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}, nil
}

func (s *scripted) Stream(ctx context.Context, req *chat.Request) (provider.Stream, error) {
	st, err := s.next(ctx)
	if err != nil {
		return nil, err
	}
	return &scriptedStream{chunks: st.chunks, cut: st.cut}, nil
}

type scriptedStream struct {
	chunks []string
	cut    error
}

func (s *scriptedStream) Recv() (*chat.Chunk, error) {
	if len(s.chunks) == 0 {
		if s.cut != nil {
			return nil, s.cut
		}
		return nil, io.EOF
	}
	text := s.chunks[0]
	s.chunks = s.chunks[1:]
	return &chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &text}}}}, nil
}

func (s *scriptedStream) Close() error { return nil }

func status(code int, retryAfter time.Duration) error {
	return &provider.Error{Kind: provider.KindStatus, Status: code, RetryAfter: retryAfter}
}

// testRoute builds a compiled route over scripted providers: targets first,
// then fallbacks.
func testRoute(policy config.Route, targets []*scripted, weights []int, fallbacks ...*scripted) *Route {
	r := &Route{Route: policy.WithDefaults()}
	mk := func(s *scripted) *Target {
		return &Target{Model: config.Model{Name: s.name, Provider: s.name}, Provider: s}
	}
	for i, s := range targets {
		r.targets = append(r.targets, mk(s))
		r.weights = append(r.weights, weights[i])
	}
	for _, s := range fallbacks {
		r.fallbacks = append(r.fallbacks, mk(s))
	}
	r.every = append(append([]*Target(nil), r.targets...), r.fallbacks...)
	return r
}

var fast = config.Route{Retry: config.Retry{Attempts: 2, Backoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(5 * time.Millisecond)},
	Timeout: config.Duration(time.Second), Deadline: config.Duration(5 * time.Second), Breaker: config.Breaker{Failures: 100, Cooldown: config.Duration(time.Hour)}}

// run sends one non-streaming call through the router and returns the
// model that answered.
func run(t *testing.T, r *Router, route *Route) (string, []Outcome, error) {
	t.Helper()
	var outs []Outcome
	var answered string
	err := r.Do(context.Background(), route, func(ctx context.Context, a *Attempt, _ func()) error {
		_, err := a.Target.Provider.Complete(ctx, &chat.Request{})
		if err == nil {
			answered = a.Target.Model.Name
		}
		return err
	}, func(o Outcome) { outs = append(outs, o) })
	return answered, outs, err
}

func TestRouterFallsBackOnRetryableFailures(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{
		{"429", status(429, 0)},
		{"500", status(500, 0)},
		{"503", status(503, 0)},
		{"timeout", &provider.Error{Kind: provider.KindTimeout}},
		{"connection refused", &provider.Error{Kind: provider.KindConnect}},
		{"garbage answer", &provider.Error{Kind: provider.KindProtocol}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			primary := &scripted{name: "primary", steps: []step{{err: tc.err}}}
			backup := &scripted{name: "backup"}
			got, outs, err := run(t, NewRouter(), testRoute(fast, []*scripted{primary}, []int{1}, backup))
			if err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if got != "backup" {
				t.Fatalf("answered by %q, want backup", got)
			}
			if primary.count() != 2 {
				t.Fatalf("primary tried %d times, want 2 (the route's attempts)", primary.count())
			}
			if len(outs) != 3 {
				t.Fatalf("%d outcomes recorded, want 3", len(outs))
			}
		})
	}
}

func TestRouterFallsBackWithoutRetryingSignalsThatLast(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		tries int // at the primary
	}{
		// An account out of credit stays so: fall back at once.
		{"openai insufficient_quota", &provider.Error{Kind: provider.KindStatus, Status: 429, Code: "insufficient_quota"}, 1},
		{"gemini RESOURCE_EXHAUSTED", &provider.Error{Kind: provider.KindStatus, Status: 429, Code: "RESOURCE_EXHAUSTED"}, 2},
		{"bedrock ThrottlingException", &provider.Error{Kind: provider.KindStatus, Status: 429, Code: "ThrottlingException"}, 2},
		{"anthropic overloaded", &provider.Error{Kind: provider.KindStatus, Status: 529, Code: "overloaded_error"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			primary := &scripted{name: "primary", steps: []step{{err: tc.err}}}
			backup := &scripted{name: "backup"}
			got, _, err := run(t, NewRouter(), testRoute(fast, []*scripted{primary}, []int{1}, backup))
			if err != nil || got != "backup" {
				t.Fatalf("got %q, %v; want the backup's answer", got, err)
			}
			if primary.count() != tc.tries {
				t.Fatalf("primary tried %d times, want %d", primary.count(), tc.tries)
			}
		})
	}
}

func TestRouterDoesNotRetryClientErrors(t *testing.T) {
	primary := &scripted{name: "primary", steps: []step{{err: status(400, 0)}}}
	backup := &scripted{name: "backup"}
	_, _, err := run(t, NewRouter(), testRoute(fast, []*scripted{primary}, []int{1}, backup))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != 400 {
		t.Fatalf("got %v, want the upstream's 400", err)
	}
	if primary.count() != 1 || backup.count() != 0 {
		t.Fatalf("primary %d calls, backup %d: a 400 must be neither retried nor sent elsewhere", primary.count(), backup.count())
	}
}

func TestRouterHonoursRetryAfter(t *testing.T) {
	primary := &scripted{name: "primary", steps: []step{{err: status(429, 150*time.Millisecond)}, {}}}
	got, outs, err := run(t, NewRouter(), testRoute(fast, []*scripted{primary}, []int{1}))
	if err != nil || got != "primary" {
		t.Fatalf("got %q, %v; want primary to answer its second try", got, err)
	}
	if outs[1].Backoff < 150*time.Millisecond {
		t.Fatalf("waited %v before the retry, want at least the 150ms Retry-After", outs[1].Backoff)
	}
}

func TestRouterSkipsRetryThatWouldOutlastDeadline(t *testing.T) {
	policy := fast
	policy.Deadline = config.Duration(200 * time.Millisecond)
	primary := &scripted{name: "primary", steps: []step{{err: status(429, 10*time.Second)}}}
	backup := &scripted{name: "backup"}
	start := time.Now()
	got, _, err := run(t, NewRouter(), testRoute(policy, []*scripted{primary}, []int{1}, backup))
	if err != nil || got != "backup" {
		t.Fatalf("got %q, %v; want the backup at once", got, err)
	}
	if primary.count() != 1 {
		t.Fatalf("primary tried %d times; a 10s Retry-After past a 200ms deadline must go to the fallback", primary.count())
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("the router waited for the Retry-After")
	}
}

func TestRouterBackoffGrowsExponentially(t *testing.T) {
	route := testRoute(config.Route{Retry: config.Retry{Attempts: 5, Backoff: config.Duration(100 * time.Millisecond), MaxBackoff: config.Duration(time.Second)}}, nil, nil)
	for retry, max := range map[int]time.Duration{1: 100, 2: 200, 3: 400, 4: 800, 5: 1000, 8: 1000} {
		for i := 0; i < 50; i++ {
			d := nextBackoff(route, retry, nil)
			if d < max*time.Millisecond/2 || d > max*time.Millisecond {
				t.Fatalf("retry %d: backoff %v outside [%v, %v]", retry, d, max*time.Millisecond/2, max*time.Millisecond)
			}
		}
	}
}

func TestRouterAttemptTimeout(t *testing.T) {
	policy := fast
	policy.Timeout = config.Duration(50 * time.Millisecond)
	policy.Retry.Attempts = 1
	slow := &scripted{name: "slow", steps: []step{{delay: 10 * time.Second}}}
	backup := &scripted{name: "backup"}
	got, outs, err := run(t, NewRouter(), testRoute(policy, []*scripted{slow}, []int{1}, backup))
	if err != nil || got != "backup" {
		t.Fatalf("got %q, %v; want the backup after the slow target timed out", got, err)
	}
	var pe *provider.Error
	if !errors.As(outs[0].Err, &pe) || pe.Kind != provider.KindTimeout {
		t.Fatalf("first outcome %v, want a timeout", outs[0].Err)
	}
}

func TestRouterStopsAtClientDeadline(t *testing.T) {
	slow := &scripted{name: "slow", steps: []step{{delay: 10 * time.Second}}}
	backup := &scripted{name: "backup", steps: []step{{delay: 10 * time.Second}}}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := NewRouter().Do(ctx, testRoute(fast, []*scripted{slow}, []int{1}, backup), func(ctx context.Context, a *Attempt, _ func()) error {
		_, err := a.Target.Provider.Complete(ctx, &chat.Request{})
		return err
	}, func(Outcome) {})
	if err == nil {
		t.Fatal("call succeeded past the client's deadline")
	}
	if backup.count() != 0 {
		t.Fatalf("fallback tried after the client's deadline passed")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("router ignored the client's deadline")
	}
}

func TestRouterWeightedChoice(t *testing.T) {
	a := &scripted{name: "a"}
	b := &scripted{name: "b"}
	route := testRoute(fast, []*scripted{a, b}, []int{80, 20})
	r := NewRouter()
	counts := map[string]int{}
	for i := 0; i < 2000; i++ {
		got, _, err := run(t, r, route)
		if err != nil {
			t.Fatal(err)
		}
		counts[got]++
	}
	if counts["a"] < 1450 || counts["a"] > 1750 {
		t.Fatalf("a answered %d of 2000, want about 1600 (80%%)", counts["a"])
	}
}

func TestRouterCircuitBreaker(t *testing.T) {
	policy := fast
	policy.Retry.Attempts = 1
	policy.Breaker = config.Breaker{Failures: 3, Cooldown: config.Duration(time.Minute)}
	primary := &scripted{name: "primary", steps: []step{{err: status(500, 0)}}}
	backup := &scripted{name: "backup"}
	route := testRoute(policy, []*scripted{primary}, []int{1}, backup)
	r := NewRouter()
	now := time.Now()
	r.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if _, _, err := run(t, r, route); err != nil {
			t.Fatal(err)
		}
	}
	if r.State("primary") != Open {
		t.Fatalf("after 3 failures the circuit is %v, want open", r.State("primary"))
	}
	for i := 0; i < 5; i++ {
		got, outs, err := run(t, r, route)
		if err != nil || got != "backup" || !outs[0].Skipped {
			t.Fatalf("with the circuit open: got %q, %v, skipped=%v; want backup with primary skipped", got, err, outs[0].Skipped)
		}
	}
	if primary.count() != 3 {
		t.Fatalf("primary called %d times while open, want no calls after the 3 failures", primary.count())
	}
	// After the cooldown one probe goes through; its success closes the circuit.
	now = now.Add(2 * time.Minute)
	primary.mu.Lock()
	primary.steps = []step{{}}
	primary.calls = 0
	primary.mu.Unlock()
	got, _, err := run(t, r, route)
	if err != nil || got != "primary" {
		t.Fatalf("probe after cooldown: got %q, %v; want primary", got, err)
	}
	if r.State("primary") != Closed {
		t.Fatalf("after a good probe the circuit is %v, want closed", r.State("primary"))
	}
}

func TestRouterHalfOpenProbeFailureReopens(t *testing.T) {
	policy := fast
	policy.Retry.Attempts = 1
	policy.Breaker = config.Breaker{Failures: 1, Cooldown: config.Duration(time.Minute)}
	primary := &scripted{name: "primary", steps: []step{{err: status(502, 0)}}}
	backup := &scripted{name: "backup"}
	route := testRoute(policy, []*scripted{primary}, []int{1}, backup)
	r := NewRouter()
	now := time.Now()
	r.now = func() time.Time { return now }
	run(t, r, route)
	now = now.Add(2 * time.Minute)
	run(t, r, route) // the probe fails
	if r.State("primary") != Open {
		t.Fatalf("after a failed probe the circuit is %v, want open", r.State("primary"))
	}
	if primary.count() != 2 {
		t.Fatalf("primary called %d times, want 2 (first failure and one probe)", primary.count())
	}
}

func TestRouterAllCircuitsOpen(t *testing.T) {
	policy := fast
	policy.Retry.Attempts = 1
	policy.Breaker = config.Breaker{Failures: 1, Cooldown: config.Duration(time.Minute)}
	primary := &scripted{name: "primary", steps: []step{{err: status(500, 0)}}}
	route := testRoute(policy, []*scripted{primary}, []int{1})
	r := NewRouter()
	run(t, r, route)
	_, _, err := run(t, r, route)
	if !errors.Is(err, ErrNoTarget) {
		t.Fatalf("got %v, want ErrNoTarget", err)
	}
	if ce := upstreamError(err, "m"); ce.Status != 503 {
		t.Fatalf("client status %d, want 503", ce.Status)
	}
}

func TestUpstreamErrorShapes(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"anthropic overloaded", &provider.Error{Kind: provider.KindStatus, Status: 529, Code: "overloaded_error"}, 503, "upstream_overloaded"},
		{"gemini unavailable", &provider.Error{Kind: provider.KindStatus, Status: 503, Code: "UNAVAILABLE"}, 503, "upstream_overloaded"},
		{"bedrock throttled", &provider.Error{Kind: provider.KindStatus, Status: 429, Code: "ThrottlingException", RetryAfter: 3 * time.Second}, 429, "upstream_rate_limited"},
		{"gemini quota", &provider.Error{Kind: provider.KindStatus, Status: 429, Code: "RESOURCE_EXHAUSTED"}, 429, "upstream_rate_limited"},
		{"bedrock validation", &provider.Error{Kind: provider.KindStatus, Status: 400, Code: "ValidationException"}, 400, "upstream_rejected"},
		{"upstream refuses our key", &provider.Error{Kind: provider.KindStatus, Status: 401}, 502, "upstream_error"},
		{"bedrock model error", &provider.Error{Kind: provider.KindStatus, Status: 502, Code: "ModelErrorException"}, 502, "upstream_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ce := upstreamError(tc.err, "m")
			if ce.Status != tc.status || ce.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", ce.Status, ce.Code, tc.status, tc.code)
			}
			if (tc.status == 429 || tc.status == 503) && ce.RetryAfter <= 0 {
				t.Fatalf("a %d must say when to retry", tc.status)
			}
		})
	}
}

// TestUpstreamErrorMessagesSayWhy: the client's 502 and 504 name the model
// and what its upstream answered, never a credential the upstream quoted.
func TestUpstreamErrorMessagesSayWhy(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		want      string
		forbidden string
	}{
		{"server error", &provider.Error{Kind: provider.KindStatus, Status: 500, Message: "The server had an error while processing your request"},
			"the upstream of model gpt-4o answered 500 Internal Server Error: The server had an error while processing your request", ""},
		{"error with a code", &provider.Error{Kind: provider.KindStatus, Status: 502, Code: "ModelErrorException", Message: "Bad Gateway"},
			"the upstream of model gpt-4o answered 502 Bad Gateway: ModelErrorException", ""},
		{"timeout", &provider.Error{Kind: provider.KindTimeout, Message: "no answer within 20s"},
			"the upstream of model gpt-4o did not answer in time: no answer within 20s", ""},
		{"refused key", &provider.Error{Kind: provider.KindStatus, Status: 401, Message: "Incorrect API key provided: sk-proj-abcd****wxyz"},
			"the upstream of model gpt-4o refused Gantry's credentials (401 Unauthorized); an operator must fix the provider's key", "sk-proj"},
		{"a key quoted in a server error", &provider.Error{Kind: provider.KindStatus, Status: 500, Message: "internal error for key sk-live-9f8e7d6c5b4a, request req_7Hq2kLm9Pz4xW8vB3nC6tYd1"},
			"the upstream of model gpt-4o answered 500 Internal Server Error: internal error for key [redacted], request [redacted]", "sk-live"},
		{"connection", &provider.Error{Kind: provider.KindConnect, Err: errors.New("connection refused")},
			"the upstream call of model gpt-4o failed: connect", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ce := upstreamError(tc.err, "gpt-4o")
			if ce.Message != tc.want {
				t.Fatalf("message %q\nwant    %q", ce.Message, tc.want)
			}
			if tc.forbidden != "" && strings.Contains(ce.Message, tc.forbidden) {
				t.Fatalf("message quotes a credential: %q", ce.Message)
			}
		})
	}
}
