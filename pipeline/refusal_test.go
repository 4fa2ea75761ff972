package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/budget"
	"gantry/pipeline/chat"
	"gantry/pipeline/limit"
)

// refusingLedger refuses every reservation with err.
type refusingLedger struct{ err error }

func (l refusingLedger) Reserve(context.Context, budget.Reservation) (budget.Hold, error) {
	return budget.Hold{}, l.err
}
func (refusingLedger) Settle(string, float64) error { return nil }
func (refusingLedger) Release(string) error         { return nil }

// withBudget adds a global block budget of limit USD.
func withBudget(limit float64) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.Budgets = append(cfg.Budgets, config.Budget{Name: "all", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: limit})
	}
}

// TestLedgerRefusalsAreNeverServerErrors walks every error a budget ledger
// returns from Reserve, as the local and the cluster ledgers make them,
// through a whole call: each must reach the client as a 4xx with a code of
// its own, never as the gateway's 500.
func TestLedgerRefusalsAreNeverServerErrors(t *testing.T) {
	exceeded := &budget.ExceededError{Budget: "all", Scope: "all", LimitUSD: 1, SpentUSD: 1, AmountUSD: 0.1}
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{exceeded, 429, "budget_exceeded"},
		{&budget.GrantShortError{Exceeded: exceeded}, 429, "budget_exceeded"},
		{budget.ErrFull, 429, "budget_ledger_full"},
		{budget.ErrUsersFull, 429, "budget_users_full"},
		{fmt.Errorf("%w: 1e+15 USD", budget.ErrAmount), 400, "worst_case_too_large"},
		{fmt.Errorf("%w: r1", budget.ErrDuplicate), 409, "duplicate_request"},
		{fmt.Errorf("%w: empty request id", budget.ErrInvalid), 400, "budget_reservation_invalid"},
		{context.Canceled, StatusClientClosed, "client_closed_request"},
		{context.DeadlineExceeded, StatusClientClosed, "client_closed_request"},
		// A downgrade asked for a second time, after the call already
		// switched to the cheaper route, is a refusal like any other.
		{&budget.DowngradeError{Budget: "all", Route: "r"}, 429, "budget_exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			g := policyGateway(t, &flaky{echo: true}, withBudget(10))
			g.ledger = refusingLedger{tc.err}
			serr := g.Serve(context.Background(), userCall("m", "hi", false))
			var ce *chat.Error
			if !errors.As(serr, &ce) {
				t.Fatalf("got %v, want a *chat.Error", serr)
			}
			if ce.Status == http.StatusInternalServerError || ce.Status != tc.status || ce.Code != tc.code {
				t.Fatalf("ledger error %v reached the client as %d %q, want %d %q", tc.err, ce.Status, ce.Code, tc.status, tc.code)
			}
		})
	}
}

// TestPolicyRefusalsAreNeverServerErrors provokes every refusal of the
// policy stage for real (rate limits, budgets, the safety policy, the
// template's work budget, a client that left) and checks the status and
// code each one reaches the client with.
func TestPolicyRefusalsAreNeverServerErrors(t *testing.T) {
	type setup struct {
		edit    func(*config.Config)
		gateway func(*Gateway)
		before  func(t *testing.T, g *Gateway) // calls or holds that come first
		call    func() *Call
		ctx     func() context.Context
	}
	items := make([]any, 200)
	for i := range items {
		items[i] = i
	}
	cases := []struct {
		name   string
		s      setup
		status int
		code   string
	}{
		{"requests per minute", setup{
			edit:   func(c *config.Config) { c.Keys[0].RateLimit = &config.RateLimit{RPM: 1} },
			before: func(t *testing.T, g *Gateway) { serveOK(t, g, userCall("m", "hi", false)) },
		}, 429, "rate_limited"},
		{"tokens per minute it can never fit", setup{
			edit:    func(c *config.Config) { c.Keys[0].RateLimit = &config.RateLimit{TPM: 5} },
			gateway: func(g *Gateway) { g.count = fixedCount(6) },
		}, 400, "rate_limit_unreachable"},
		{"calls in flight", setup{
			edit: func(c *config.Config) {
				c.Teams = []config.Team{{Name: "qa", RateLimit: &config.RateLimit{MaxConcurrent: 1}}}
			},
			before: func(t *testing.T, g *Gateway) {
				scopes := limit.ScopesFor(g.Snapshot().Config, "test", "qa", "")
				if _, _, err := g.limiter.Acquire(context.Background(), scopes, 0); err != nil {
					t.Fatal(err)
				}
			},
		}, 429, "rate_limited"},
		{"budget spent", setup{edit: withBudget(1e-9)}, 429, "budget_exceeded"},
		{"too many open reservations", setup{
			edit:    withBudget(10),
			gateway: func(g *Gateway) { g.ledger = budget.NewLocal(budget.Options{MaxHolds: 1}) },
			before:  func(t *testing.T, g *Gateway) { hold(t, g, "other", "", 0.01) },
		}, 429, "budget_ledger_full"},
		{"end users all in flight", setup{
			edit: func(c *config.Config) {
				c.Budgets = []config.Budget{{Name: "each", Scope: config.ScopeUser, Period: config.PeriodDay, LimitUSD: 1}}
			},
			gateway: func(g *Gateway) { g.ledger = budget.NewLocal(budget.Options{MaxUsers: 1}) },
			before:  func(t *testing.T, g *Gateway) { hold(t, g, "other", "first-user", 0.01) },
			call: func() *Call {
				c := userCall("m", "hi", false)
				c.User = "second-user"
				return c
			},
		}, 429, "budget_users_full"},
		{"deny list", setup{
			edit: func(c *config.Config) { c.Features[0].Safety = &config.Safety{DenyList: []string{"forbidden"}} },
			call: func() *Call { return userCall("feature/f", "say the forbidden word", false) },
		}, 400, "policy_blocked"},
		{"template work", setup{
			edit: func(c *config.Config) {
				r := &c.Features[0].Releases[0]
				r.Variables = []config.Variable{{Name: "a", Type: "list"}, {Name: "b", Type: "list"}, {Name: "c", Type: "list"}}
				r.Template = []config.Message{{Role: "user", Content: "{{#each a}}{{#each b}}{{#each c}}{{/each}}{{/each}}{{/each}}"}}
			},
			call: func() *Call {
				c := userCall("feature/f", "hi", false)
				c.Vars = map[string]any{"a": items, "b": items, "c": items}
				return c
			},
		}, 400, "template_work_limit"},
		{"client gone before admission", setup{
			edit: func(c *config.Config) { c.Keys[0].RateLimit = &config.RateLimit{RPM: 100} },
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
		}, StatusClientClosed, "client_closed_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := policyGateway(t, &flaky{echo: true}, tc.s.edit)
			if tc.s.gateway != nil {
				tc.s.gateway(g)
			}
			if tc.s.before != nil {
				tc.s.before(t, g)
			}
			c := userCall("m", "hi", false)
			if tc.s.call != nil {
				c = tc.s.call()
			}
			ctx := context.Background()
			if tc.s.ctx != nil {
				ctx = tc.s.ctx()
			}
			err := g.Serve(ctx, c)
			var ce *chat.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a refusal", err)
			}
			if ce.Status == http.StatusInternalServerError || ce.Status != tc.status || ce.Code != tc.code {
				t.Fatalf("refused with %d %q (%s), want %d %q", ce.Status, ce.Code, ce.Message, tc.status, tc.code)
			}
		})
	}
}

func serveOK(t *testing.T, g *Gateway, c *Call) {
	t.Helper()
	for range 5 { // the upstream fails one call in five
		if err := g.Serve(context.Background(), c); err == nil {
			return
		}
		c = userCall(c.Req.Model, "hi", false)
	}
	t.Fatal("five calls failed")
}

// hold reserves amount for another request on every budget of the
// gateway's configuration, as a call in flight does.
func hold(t *testing.T, g *Gateway, id, user string, amount float64) {
	t.Helper()
	scopes := budget.ScopesFor(g.Snapshot().Config, budget.Subject{Team: "qa", Key: "test", User: user})
	if _, err := g.ledger.Reserve(context.Background(), budget.Reservation{RequestID: id, Scopes: scopes, AmountUSD: amount, Deadline: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// fixedCount counts every prompt as n tokens.
type fixedCount int

func (n fixedCount) Messages([]chat.Message) int { return int(n) }
func (n fixedCount) Text(string) int             { return int(n) }
