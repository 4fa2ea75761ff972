package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/budget"
	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/semcache"
	"gantry/pipeline/tokens"
	"gantry/pipeline/trace"
)

const (
	costKeyA = "gk_cost-key-team-a-0123456789"
	costKeyB = "gk_cost-key-team-b-0123456789"
)

// costBase is a configuration over the simulator: a cheap and a premium
// model on providers of their own (so each can misbehave on its own), a
// judge, an embedder, and two keys of two teams. Cases add providers'
// settings, routes and features.
const costBase = `
models:
  - {name: cheap, provider: sim-cheap, price: {input: 0.5, output: 1.5}}
  - {name: premium, provider: sim-premium, price: {input: 5, output: 15}}
  - {name: judge, provider: sim-judge, price: {input: 0.5, output: 1.5}}
  - {name: embed, provider: sim-premium, price: {input: 0.02, output: 0}}
keys:
  - {name: a, team: team-a, hash: %s}
  - {name: b, team: team-b, hash: %s}
`

// costGateway serves cfgYAML (providers, routes, features, budgets) over
// costBase with every cost part wired: summaries, the semantic cache and,
// when the configuration has budgets, a ledger.
func costGateway(t *testing.T, cfgYAML string) (*Gateway, *traceLog) {
	t.Helper()
	return costGatewayWith(t, cfgYAML, nil)
}

// costGatewayWith is costGateway with a retriever.
func costGatewayWith(t *testing.T, cfgYAML string, retrieve Retriever) (*Gateway, *traceLog) {
	t.Helper()
	doc := fmt.Sprintf(costBase, config.HashKey(costKeyA), config.HashKey(costKeyB)) + cfgYAML
	cfg, err := config.Parse("cost.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	snap, err := Compile(cfg, NewProviderSet(func(p config.Provider) (provider.Provider, error) {
		return nil, fmt.Errorf("only the simulator here, not %s", p.Name)
	}))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	log := &traceLog{}
	d := Deps{Log: slog.Default(), Record: log.add, Counter: tokens.Counter{}, Retriever: retrieve,
		Summaries: cache.New(1<<20, time.Now), Semantic: semcache.New(8, time.Now)}
	if len(cfg.Budgets) > 0 {
		d.Ledger = budget.NewLocal(budget.Options{})
	}
	g := NewGateway(d)
	g.Swap(snap)
	return g, log
}

type traceLog struct {
	mu     sync.Mutex
	traces []*trace.Trace
}

func (l *traceLog) add(t *trace.Trace) {
	l.mu.Lock()
	l.traces = append(l.traces, t)
	l.mu.Unlock()
}

func (l *traceLog) last(t *testing.T) *trace.Trace {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.traces) == 0 {
		t.Fatal("no trace recorded")
	}
	return l.traces[len(l.traces)-1]
}

func user(text string) chat.Message { return chat.Message{Role: "user", Content: chat.Text(text)} }

func assistant(text string) chat.Message {
	return chat.Message{Role: "assistant", Content: chat.Text(text)}
}

// ask serves one non-streamed call of model with the messages.
func ask(g *Gateway, key, model string, msgs ...chat.Message) (*Call, *chat.Error) {
	c := &Call{ID: fmt.Sprintf("call-%d", time.Now().UnixNano()), TraceID: trace.NewTraceID(), Received: time.Now(), Entry: EntryChat,
		Secret: key, Req: &chat.Request{Model: model, Messages: msgs}}
	err := g.Serve(context.Background(), c)
	return c, err
}

// history is a conversation of n exchanges of about 60 tokens each and a
// last question.
func history(n int, last string) []chat.Message {
	var msgs []chat.Message
	for i := range n {
		msgs = append(msgs,
			user(fmt.Sprintf("Question %d: my invoice number %d shows a charge I do not recognise from the spring subscription renewal period, can you explain it in detail please?", i, 1000+i)),
			assistant(fmt.Sprintf("Answer %d: that charge is the annual renewal of the team plan, billed on the renewal date with the seats you had at that time, and it includes tax for your region.", i)))
	}
	return append(msgs, user(last))
}

const simProviders = `
providers:
  - {name: sim-cheap, kind: sim, sim: {seed: 1, output_tokens: 20}}
  - {name: sim-premium, kind: sim, sim: {seed: 2, output_tokens: 20}}
  - {name: sim-judge, kind: sim, sim: {seed: 3}}
`

func TestContextPolicyStrategies(t *testing.T) {
	feature := func(policy string) string {
		return simProviders + `
features:
  - name: support
    labels: {production: 1}
    releases:
      - version: 1
        route: premium
        system: You answer billing questions.
        context: ` + policy + "\n"
	}
	t.Run("refuse", func(t *testing.T) {
		g, log := costGateway(t, feature("{max_input_tokens: 300, strategy: refuse}"))
		_, err := ask(g, costKeyA, "feature/support", history(10, "And the last one?")...)
		if err == nil || err.Status != 400 || err.Code != "context_too_long" || !strings.Contains(err.Message, "support@v1 allows (300)") {
			t.Fatalf("got %v, want 400 context_too_long naming the release and its limit", err)
		}
		if tr := log.last(t); tr.CostUSD != 0 || len(tr.Attempts) != 0 {
			t.Fatalf("a refused call reached the upstream: cost %v, %d attempts", tr.CostUSD, len(tr.Attempts))
		}
		// Under the threshold nothing changes.
		c, err := ask(g, costKeyA, "feature/support", history(1, "And the last one?")...)
		if err != nil || c.Compression != nil {
			t.Fatalf("a short call: %v, compression %+v", err, c.Compression)
		}
	})
	t.Run("drop oldest", func(t *testing.T) {
		g, log := costGateway(t, feature("{max_input_tokens: 300, strategy: drop_oldest, keep_last: 3}"))
		msgs := history(10, "What about my last invoice?")
		c, err := ask(g, costKeyA, "feature/support", msgs...)
		if err != nil {
			t.Fatal(err)
		}
		tr := log.last(t)
		cp := tr.Compression
		if cp == nil || cp.Strategy != "drop_oldest" || cp.Dropped == 0 || cp.TokensAfter > 300 || cp.TokensSaved != cp.TokensBefore-cp.TokensAfter {
			t.Fatalf("compression %+v", cp)
		}
		if c.Messages[0].Role != "system" || !strings.Contains(c.Messages[0].Content.Text, "billing questions") {
			t.Fatalf("the instructions went: %+v", c.Messages[0])
		}
		if got := c.Messages[len(c.Messages)-1].Content.Text; got != "What about my last invoice?" {
			t.Fatalf("the last turn went: %q", got)
		}
		if tr.InputTokens > 300 {
			t.Fatalf("the upstream read %d input tokens, more than the policy's 300", tr.InputTokens)
		}
		// Keeping 3 turns cannot fit 100 tokens: refused, naming why.
		g2, _ := costGateway(t, feature("{max_input_tokens: 60, strategy: drop_oldest, keep_last: 3}"))
		if _, err := ask(g2, costKeyA, "feature/support", msgs...); err == nil || err.Code != "context_too_long" || !strings.Contains(err.Message, "the last 3 turns") {
			t.Fatalf("got %v, want context_too_long after dropping", err)
		}
	})
	t.Run("summarize", func(t *testing.T) {
		g, log := costGateway(t, feature("{max_input_tokens: 300, strategy: summarize, keep_last: 2, summary_route: cheap, summary_max_tokens: 60}"))
		msgs := history(10, "What about my last invoice?")
		c, err := ask(g, costKeyA, "feature/support", msgs...)
		if err != nil {
			t.Fatal(err)
		}
		first := log.last(t)
		cp := first.Compression
		if cp == nil || cp.Summarized != 19 || cp.SummaryCached || cp.SummaryCostUSD <= 0 || cp.TokensAfter > 300 {
			t.Fatalf("first compression %+v", cp)
		}
		if !strings.HasPrefix(c.Messages[1].Content.Text, "Summary of the earlier conversation") {
			t.Fatalf("no summary in %+v", c.Messages[1])
		}
		// The call pays for the summary too.
		answer := first.CostUSD - cp.SummaryCostUSD
		if answer <= 0 || first.CostUSD <= cp.SummaryCostUSD {
			t.Fatalf("cost %v with summary %v", first.CostUSD, cp.SummaryCostUSD)
		}
		// The same conversation asks again: the summary is reused, free.
		if _, err := ask(g, costKeyA, "feature/support", msgs...); err != nil {
			t.Fatal(err)
		}
		if cp := log.last(t).Compression; cp == nil || !cp.SummaryCached || cp.SummaryCostUSD != 0 {
			t.Fatalf("second compression %+v, want the cached summary", cp)
		}
		// The conversation goes on: the new summary builds on the old
		// one and reads only the turns since, so it costs less.
		grown := append(append([]chat.Message(nil), msgs[:len(msgs)-1]...),
			user("Question 10: and the invoice from the summer?"), assistant("Answer 10: that one covers the added seats."), user("Thanks, and the next one?"))
		if _, err := ask(g, costKeyA, "feature/support", grown...); err != nil {
			t.Fatal(err)
		}
		if cp := log.last(t).Compression; cp == nil || cp.SummaryCached || cp.SummaryCostUSD <= 0 || cp.SummaryCostUSD >= first.Compression.SummaryCostUSD {
			t.Fatalf("grown conversation: compression %+v, first summary cost %v", cp, first.Compression.SummaryCostUSD)
		}
	})
	t.Run("summarize within a budget", func(t *testing.T) {
		// The hold covers the summary: a budget too small for the call
		// and its summary refuses it before the summary is written.
		g, log := costGateway(t, feature("{max_input_tokens: 300, strategy: summarize, keep_last: 2, summary_route: cheap}")+
			"budgets: [{name: tiny, scope: feature, match: support, period: day, limit_usd: 0.002}]\n")
		_, err := ask(g, costKeyA, "feature/support", history(10, "What about my last invoice?")...)
		if err == nil || err.Code != "budget_exceeded" {
			t.Fatalf("got %v, want budget_exceeded", err)
		}
		if tr := log.last(t); tr.CostUSD != 0 || tr.Compression != nil {
			t.Fatalf("a refused call paid %v for compression %+v", tr.CostUSD, tr.Compression)
		}
	})
	t.Run("drop chunks", func(t *testing.T) {
		chunk := func(id string, score float64) trace.Source {
			return trace.Source{Document: id, Chunk: id + "#0", Score: score}
		}
		sources := []trace.Source{chunk("refunds", 9), chunk("invoices", 3), chunk("seats", 6)}
		retrieve := func(_ context.Context, _ *config.Config, _ config.Retrieval, _ string) (Retrieved, error) {
			format := func(keep []int) string {
				var b strings.Builder
				for _, i := range keep {
					fmt.Fprintf(&b, "[%s] %s\n", sources[i].Chunk, strings.Repeat(sources[i].Document+" policy text ", 30))
				}
				return b.String()
			}
			return Retrieved{Block: format([]int{0, 1, 2}), Sources: sources, Format: format}, nil
		}
		g, log := costGatewayWith(t, simProviders+`
collections: [{name: help}]
features:
  - name: support
    labels: {production: 1}
    releases:
      - version: 1
        route: premium
        system: Answer from the context.
        retrieval: {collection: help}
        context: {max_input_tokens: 150, strategy: drop_chunks}
`, retrieve)
		c, err := ask(g, costKeyA, "feature/support", user("How do refunds work?"))
		if err != nil {
			t.Fatal(err)
		}
		tr := log.last(t)
		cp := tr.Compression
		if cp == nil || strings.Join(cp.DroppedChunks, ",") != "invoices#0,seats#0" || cp.TokensAfter > 150 {
			t.Fatalf("compression %+v, want the two weakest chunks dropped, weakest first", cp)
		}
		if len(tr.Sources) != 1 || tr.Sources[0].Chunk != "refunds#0" {
			t.Fatalf("trace sources %+v, want only what went into the prompt", tr.Sources)
		}
		if strings.Contains(c.Messages[0].Content.Text, "invoices policy") {
			t.Fatal("a dropped chunk is still in the prompt")
		}
	})
}

func TestCascadeEscalation(t *testing.T) {
	route := func(escalate string) string {
		return `
routes:
  - name: tiered
    cascade: [cheap, premium]
` + escalate + `
features:
  - name: triage
    labels: {production: 1}
    max_tokens: 60
    releases:
      - version: 1
        route: tiered
        template: [{role: user, content: "Triage this ticket"}]
        schema: {type: object, properties: {priority: {type: string}}, required: [priority]}
`
	}
	cases := []struct {
		name     string
		cheap    string // sim settings of the cheap model
		escalate string
		want     string // the first tier's escalation reason; "" when it served
	}{
		{"good answer stays cheap", "{seed: 1}", "", ""},
		{"invalid answer", "{seed: 1, invalid_rate: 1}", "", config.EscalateInvalid},
		{"empty answer", "{seed: 1, empty_rate: 1}", "", config.EscalateEmpty},
		{"refusal", "{seed: 1, refusal_rate: 1}", "", config.EscalateRefusal},
		{"refusal not listed", "{seed: 1, refusal_rate: 1}", "    escalate: {on: [empty]}", ""},
		{"failing tier", "{seed: 1, error_rate: 1}", "", "error"},
		{"judge below threshold", "{seed: 1}", "    escalate: {judge: {route: judge, threshold: 1, sample_rate: 1}}", config.EscalateJudge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, log := costGateway(t, `
providers:
  - {name: sim-cheap, kind: sim, sim: `+tc.cheap+`}
  - {name: sim-premium, kind: sim, sim: {seed: 2}}
  - {name: sim-judge, kind: sim, sim: {seed: 3}}
`+route(tc.escalate))
			_, err := ask(g, costKeyA, "feature/triage")
			tr := log.last(t)
			if tc.name == "refusal not listed" {
				// The refusal is served: it is no schema's JSON, so the
				// validate stage fails it.
				if len(tr.Tiers) != 1 || tr.Tiers[0].Escalated != "" || err == nil || err.Code != "output_validation_failed" {
					t.Fatalf("tiers %+v, err %v", tr.Tiers, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("serve: %v", err)
			}
			sum := 0.0
			for _, tier := range tr.Tiers {
				sum += tier.CostUSD + tier.JudgeCostUSD
			}
			if d := tr.CostUSD - sum; d > 1e-12 || d < -1e-12 {
				t.Fatalf("trace cost %v, tiers add up to %v: %+v", tr.CostUSD, sum, tr.Tiers)
			}
			if tc.want == "" {
				if len(tr.Tiers) != 1 || tr.Model != "cheap" || tr.Tiers[0].Escalated != "" {
					t.Fatalf("tiers %+v model %s, want the cheap tier only", tr.Tiers, tr.Model)
				}
				if tr.BaseCostUSD() != tr.CostUSD {
					t.Fatalf("cost without escalation %v, cost %v", tr.BaseCostUSD(), tr.CostUSD)
				}
				return
			}
			if len(tr.Tiers) != 2 || tr.Tiers[0].Escalated != tc.want || tr.Tiers[1].Escalated != "" || tr.Model != "premium" {
				t.Fatalf("tiers %+v model %s, want an escalation for %s to premium", tr.Tiers, tr.Model, tc.want)
			}
			if tc.want != "error" && tr.Tiers[0].CostUSD <= 0 {
				t.Fatalf("the escalated tier's cost is missing: %+v", tr.Tiers[0])
			}
			if tr.Tiers[1].CostUSD <= tr.Tiers[0].CostUSD && tc.want != "error" {
				t.Fatalf("premium cost %v not above cheap %v", tr.Tiers[1].CostUSD, tr.Tiers[0].CostUSD)
			}
			if tc.want == config.EscalateJudge && (tr.Tiers[0].JudgeScore == nil || *tr.Tiers[0].JudgeScore >= 1 || tr.Tiers[0].JudgeCostUSD <= 0) {
				t.Fatalf("judge score %v cost %v", tr.Tiers[0].JudgeScore, tr.Tiers[0].JudgeCostUSD)
			}
			if tr.Fallbacks != 0 {
				t.Fatalf("%d fallbacks: moving up a cascade is not a fallback", tr.Fallbacks)
			}
		})
	}
}

func TestCascadeEscalatesAnAnswerCutByLength(t *testing.T) {
	g, log := costGateway(t, `
providers:
  - {name: sim-cheap, kind: sim, sim: {seed: 1, output_tokens: 400}}
  - {name: sim-premium, kind: sim, sim: {seed: 2, output_tokens: 8}}
  - {name: sim-judge, kind: sim, sim: {seed: 3}}
routes:
  - {name: tiered, cascade: [cheap, premium]}
`)
	c := &Call{ID: "haiku", TraceID: trace.NewTraceID(), Received: time.Now(), Entry: EntryChat, Secret: costKeyA,
		Req: &chat.Request{Model: "tiered", MaxTokens: 50, Messages: []chat.Message{user("Write a haiku")}}}
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	tr := log.last(t)
	if len(tr.Tiers) != 2 || tr.Tiers[0].Escalated != config.EscalateLength || c.Resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("tiers %+v finish %q", tr.Tiers, c.Resp.Choices[0].FinishReason)
	}
}

// Budgets hold the worst case of every tier, so a feature whose cheap tier
// always escalates cannot overspend its budget however many calls race
// for it.
func TestCascadeBudgetHoldsUnderConcurrency(t *testing.T) {
	const limit = 0.02
	g, log := costGateway(t, fmt.Sprintf(`
providers:
  - {name: sim-cheap, kind: sim, sim: {seed: 1, invalid_rate: 1, latency_p50: 5ms, latency_p99: 20ms}}
  - {name: sim-premium, kind: sim, sim: {seed: 2, latency_p50: 5ms, latency_p99: 20ms}}
  - {name: sim-judge, kind: sim, sim: {seed: 3}}
routes:
  - {name: tiered, cascade: [cheap, premium]}
features:
  - name: triage
    labels: {production: 1}
    max_tokens: 200
    releases:
      - version: 1
        route: tiered
        template: [{role: user, content: "Triage this ticket"}]
        schema: {type: object, properties: {priority: {type: string}}, required: [priority]}
budgets:
  - {name: triage, scope: feature, match: triage, period: day, limit_usd: %v}
`, limit))
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ask(g, costKeyA, "feature/triage")
			code := "ok"
			if err != nil {
				code = err.Code
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	b := g.Snapshot().Config.Budgets[0]
	u := g.ledger.(*budget.Local).Usage(budget.Scope{Key: b.Name, Budget: b})
	if u.SpentUSD > limit {
		t.Fatalf("spent %v of a %v budget", u.SpentUSD, limit)
	}
	if u.ReservedUSD != 0 {
		t.Fatalf("%v still held after every call ended", u.ReservedUSD)
	}
	if codes["ok"] == 0 || codes["budget_exceeded"] == 0 {
		t.Fatalf("outcomes %v: want some calls served and the rest refused by the budget", codes)
	}
	traced := 0.0
	for _, tr := range log.traces {
		traced += tr.CostUSD
		if tr.Status == "ok" && (len(tr.Tiers) != 2 || tr.Tiers[0].Escalated != config.EscalateInvalid) {
			t.Fatalf("a served call did not escalate: %+v", tr.Tiers)
		}
	}
	if d := traced - u.SpentUSD; d > 1e-9 || d < -1e-9 {
		t.Fatalf("traces cost %v, the budget counted %v", traced, u.SpentUSD)
	}
}

func TestSemanticCache(t *testing.T) {
	g, log := costGateway(t, simProviders+`
features:
  - name: faq
    labels: {production: 1}
    releases:
      - version: 1
        route: premium
        system: You answer questions about the product.
        semantic_cache: {embedding_route: embed, threshold: 0.8, scope: team, ttl: 1h}
`)
	first, err := ask(g, costKeyA, "feature/faq", user("How do I reset my password?"))
	if err != nil {
		t.Fatal(err)
	}
	paid := log.last(t)
	if paid.SemanticHit != nil || paid.Cached {
		t.Fatal("the first question hit an empty cache")
	}
	// A paraphrase from the same team is served the same answer, for the
	// price of its embedding.
	second, err := ask(g, costKeyA, "feature/faq", user("how can I reset the password"))
	if err != nil {
		t.Fatal(err)
	}
	hit := log.last(t)
	if hit.SemanticHit == nil || hit.SemanticHit.Source != first.ID || hit.SemanticHit.Similarity < 0.8 || !hit.Cached {
		t.Fatalf("paraphrase: semantic hit %+v, want one from %s", hit.SemanticHit, first.ID)
	}
	if second.Output() != first.Output() {
		t.Fatal("the hit served another answer")
	}
	if hit.CostUSD <= 0 || hit.CostUSD >= paid.CostUSD/10 || len(hit.Attempts) != 0 {
		t.Fatalf("hit cost %v (attempts %d), paid %v: want the embedding's cost only", hit.CostUSD, len(hit.Attempts), paid.CostUSD)
	}
	// The identical question from another team misses.
	other, err := ask(g, costKeyB, "feature/faq", user("How do I reset my password?"))
	if err != nil {
		t.Fatal(err)
	}
	if tr := log.last(t); tr.SemanticHit != nil || tr.Cached {
		t.Fatalf("team-b received team-a's answer: %+v", tr.SemanticHit)
	}
	_ = other
	// An unrelated question of the same team misses.
	if _, err := ask(g, costKeyA, "feature/faq", user("Which payment cards do you accept?")); err != nil {
		t.Fatal(err)
	}
	if tr := log.last(t); tr.SemanticHit != nil {
		t.Fatalf("an unrelated question hit: %+v", tr.SemanticHit)
	}
	// The same question under other instructions (a system template
	// that renders a customer's name) is another partition.
	if _, err := ask(g, costKeyA, "feature/faq", chat.Message{Role: "system", Content: chat.Text("The customer is Ben.")}, user("How do I reset my password?")); err != nil {
		t.Fatal(err)
	}
	if tr := log.last(t); tr.SemanticHit != nil {
		t.Fatal("an answer written under other instructions was served")
	}
	// The bypass header skips it.
	c := &Call{ID: "bypass", TraceID: trace.NewTraceID(), Received: time.Now(), Entry: EntryChat, Secret: costKeyA, NoCache: true,
		Req: &chat.Request{Model: "feature/faq", Messages: []chat.Message{user("How do I reset my password?")}}}
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if tr := log.last(t); tr.SemanticHit != nil {
		t.Fatal("a bypassing call was served from the cache")
	}
	// A stream is never served from it unless the policy says so.
	s := &Call{ID: "stream", TraceID: trace.NewTraceID(), Received: time.Now(), Entry: EntryChat, Secret: costKeyA,
		Req:  &chat.Request{Model: "feature/faq", Stream: true, Messages: []chat.Message{user("How do I reset my password?")}},
		Emit: func(*chat.Chunk) error { return nil }}
	if err := g.Serve(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if tr := log.last(t); tr.SemanticHit != nil {
		t.Fatal("a stream was served from the cache")
	}
}

func streamOf(key, model string, msgs ...chat.Message) (*Call, *strings.Builder) {
	var got strings.Builder
	c := &Call{ID: fmt.Sprintf("stream-%d", time.Now().UnixNano()), TraceID: trace.NewTraceID(), Received: time.Now(), Entry: EntryChat, Secret: key,
		Req: &chat.Request{Model: model, Stream: true, Messages: msgs},
		Emit: func(ch *chat.Chunk) error {
			for _, choice := range ch.Choices {
				if choice.Delta.Content != nil {
					got.WriteString(*choice.Delta.Content)
				}
			}
			return nil
		}}
	return c, &got
}

// A stream reaches the client as it comes, so a cascade cannot take it
// back: it stays with the first tier, whatever that tier says.
func TestCascadeStreamStaysWithItsTier(t *testing.T) {
	g, log := costGateway(t, `
providers:
  - {name: sim-cheap, kind: sim, sim: {seed: 1, refusal_rate: 1}}
  - {name: sim-premium, kind: sim, sim: {seed: 2}}
  - {name: sim-judge, kind: sim, sim: {seed: 3}}
routes:
  - {name: tiered, cascade: [cheap, premium]}
`)
	c, got := streamOf(costKeyA, "tiered", user("Tell me a joke"))
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	tr := log.last(t)
	if got.String() == "" || len(tr.Tiers) != 1 || tr.Tiers[0].Route != "cheap" || tr.Tiers[0].Escalated != "" {
		t.Fatalf("client got %q, tiers %+v", got.String(), tr.Tiers)
	}
}

// With streams allowed, a cached answer is sent to a streaming client as
// one chunk.
func TestSemanticCacheServesStreamsWhenAllowed(t *testing.T) {
	g, log := costGateway(t, simProviders+`
features:
  - name: faq
    labels: {production: 1}
    releases:
      - version: 1
        route: premium
        semantic_cache: {embedding_route: embed, threshold: 0.8, scope: user, ttl: 1h, streams: true}
`)
	first, _ := streamOf(costKeyA, "feature/faq", user("How do I reset my password?"))
	first.User = "ana"
	if err := g.Serve(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	second, got := streamOf(costKeyA, "feature/faq", user("how can I reset the password"))
	second.User = "ana"
	if err := g.Serve(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	if tr := log.last(t); tr.SemanticHit == nil || got.String() != first.Output() {
		t.Fatalf("hit %+v, client got %q, want %q", tr.SemanticHit, got.String(), first.Output())
	}
	// Another user, same words: scope user keeps it apart.
	third, _ := streamOf(costKeyA, "feature/faq", user("how can I reset the password"))
	third.User = "ben"
	if err := g.Serve(context.Background(), third); err != nil {
		t.Fatal(err)
	}
	if tr := log.last(t); tr.SemanticHit != nil {
		t.Fatal("ben received ana's answer")
	}
}

// Every answer a repair replaces was paid for: the call's cost counts
// them, and the budget's hold covers them.
func TestRepairsArePaidFor(t *testing.T) {
	serve := func(repair int) *trace.Trace {
		g, log := costGateway(t, fmt.Sprintf(`
providers:
  - {name: sim-cheap, kind: sim, sim: {seed: 1}}
  - {name: sim-premium, kind: sim, sim: {seed: 2, invalid_rate: 1}}
  - {name: sim-judge, kind: sim, sim: {seed: 3}}
features:
  - name: triage
    labels: {production: 1}
    max_tokens: 60
    releases:
      - version: 1
        route: premium
        repair: %d
        template: [{role: user, content: "Triage this ticket"}]
        schema: {type: object, properties: {priority: {type: string}}, required: [priority]}
budgets:
  - {name: all, scope: global, period: day, limit_usd: 10}
`, repair))
		if _, err := ask(g, costKeyA, "feature/triage"); err == nil || err.Code != "output_validation_failed" {
			t.Fatalf("repair %d: got %v, want output_validation_failed", repair, err)
		}
		tr := log.last(t)
		b := g.Snapshot().Config.Budgets[0]
		if u := g.ledger.(*budget.Local).Usage(budget.Scope{Key: b.Name, Budget: b}); math.Abs(u.SpentUSD-tr.CostUSD) > 1e-9 {
			t.Fatalf("repair %d: budget counted %v, the trace %v", repair, u.SpentUSD, tr.CostUSD)
		}
		return tr
	}
	once, thrice := serve(0), serve(2)
	if len(thrice.Attempts) != 3 || thrice.CostUSD < 2.5*once.CostUSD {
		t.Fatalf("three answers (%d attempts) cost %v, one cost %v", len(thrice.Attempts), thrice.CostUSD, once.CostUSD)
	}
}
