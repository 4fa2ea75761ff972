package pipeline

import (
	"context"
	"strings"
	"testing"

	"gantry/config"
	"gantry/pipeline/chat"
)

func refusedWith(t *testing.T, ce *chat.Error, status int, param, code string) {
	t.Helper()
	if ce == nil {
		t.Fatalf("got an answer, want a %d refusal", status)
	}
	if ce.Status != status || ce.Param != param || (code != "" && ce.Code != code) {
		t.Fatalf("refused with %d param %q code %q (%s), want %d param %q code %q", ce.Status, ce.Param, ce.Code, ce.Message, status, param, code)
	}
}

// TestOutputCapsAreEnforced: a caller's max_tokens above the global limit
// or a model's output cap is a 400 naming the field before anything is
// spent; a cap that comes from the configuration is lowered to the model's.
func TestOutputCapsAreEnforced(t *testing.T) {
	up := &flaky{echo: true}
	g := policyGateway(t, up, func(c *config.Config) {
		c.Limits.MaxOutputTokens = 100_000
		c.Models[0].MaxOutputTokens = 4096
		c.Features[0].MaxTokens = 8000
		c.Budgets = []config.Budget{{Name: "all", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 100}}
	})
	for _, asked := range []int{1 << 62, 1e15, 100_001} {
		c := userCall("m", "hi", false)
		c.Req.MaxTokens = asked
		refusedWith(t, g.Serve(context.Background(), c), 400, "max_tokens", "")
	}
	c := userCall("r", "hi", false)
	c.Req.MaxTokens, c.Req.MaxCompletionTokens = 0, 5000
	refusedWith(t, g.Serve(context.Background(), c), 400, "max_completion_tokens", "")
	if n := up.calls.Load(); n != 0 {
		t.Fatalf("the upstream was called %d times for refused calls", n)
	}
	// The feature's own cap of 8000 is above what the model produces.
	for {
		c = userCall("feature/f", "hi", false)
		c.Req.MaxTokens = 0
		if err := g.Serve(context.Background(), c); err == nil {
			break
		}
	}
	if got := up.lastReq.Load().OutputLimit(); got != 4096 {
		t.Fatalf("the upstream was asked for %d output tokens, want the model's cap of 4096", got)
	}
}

// TestChoicesReserveAndRoute: n is passed to an OpenAI-compatible upstream
// with its worst case reserved n times, refused above the limit, and
// refused where the route cannot answer with n choices.
func TestChoicesReserveAndRoute(t *testing.T) {
	up := &flaky{echo: true}
	// $10 per million output tokens: 1000 tokens cost 0.01 USD.
	g := policyGateway(t, up, func(c *config.Config) {
		c.Limits.MaxChoices = 4
		c.Budgets = []config.Budget{{Name: "all", Scope: config.ScopeGlobal, Period: config.PeriodDay, LimitUSD: 0.015}}
		c.Providers = append(c.Providers, config.Provider{Name: "claude", Kind: config.KindAnthropic})
		c.Models = append(c.Models, config.Model{Name: "c", Provider: "claude"})
	})
	two := 2
	c := userCall("m", "hi", false)
	c.Req.MaxTokens, c.Req.N = 1000, &two
	refusedWith(t, g.Serve(context.Background(), c), 429, "", "budget_exceeded")
	one := 1
	for {
		c = userCall("m", "hi", false)
		c.Req.MaxTokens, c.Req.N = 1000, &one
		if err := g.Serve(context.Background(), c); err == nil {
			break
		}
	}
	for _, tc := range []struct {
		model string
		n     int
		code  string
	}{{"m", 5, ""}, {"m", 0, ""}, {"c", 2, "n_unsupported"}, {"feature/f", 2, "n_unsupported"}} {
		c = userCall(tc.model, "hi", false)
		c.Req.N = &tc.n
		refusedWith(t, g.Serve(context.Background(), c), 400, "n", tc.code)
	}
	g2 := policyGateway(t, up, nil)
	three := 3
	for {
		c = userCall("m", "hi", false)
		c.Req.N = &three
		if err := g2.Serve(context.Background(), c); err == nil {
			break
		}
	}
	if got := up.lastReq.Load().Choices(); got != 3 {
		t.Fatalf("the upstream was asked for %d choices, want 3", got)
	}
}

// TestStreamWithChoicesCountsEveryChoice: a stream of two choices from an
// upstream that reports no usage is counted as both choices' output.
func TestStreamWithChoicesCountsEveryChoice(t *testing.T) {
	acc := newAccumulator()
	for _, d := range []struct {
		i    int
		text string
	}{{0, "one two"}, {1, "three four five"}, {0, " six"}, {3, "seven"}} {
		text := d.text
		acc.add(&chat.Chunk{Choices: []chat.ChunkChoice{{Index: d.i, Delta: chat.Delta{Content: &text}}}})
	}
	c := &Call{Resp: acc.response()}
	words := func(s string) int { return len(strings.Fields(s)) }
	if got := c.countOutput(words); got != 7 {
		t.Fatalf("counted %d words over the choices, want 7", got)
	}
	if got := c.Output(); got != "one two six" {
		t.Fatalf("first choice %q", got)
	}
}
