package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"gantry/pipeline/chat"
)

// exampleTopics are support questions, each in three wordings.
var exampleTopics = [][]string{
	{"How do I reset my password?", "how can I reset the password", "I need to reset my password, how?"},
	{"Why was I charged twice this month?", "I was charged twice this month, why?", "why did you charge me twice this month"},
	{"How do I add a seat to my team plan?", "how can I add one more seat to the team plan", "add a seat to my team plan please"},
	{"Where can I download my invoice?", "where do I download the invoice", "how can I download my invoices"},
	{"How do I cancel my subscription?", "how can I cancel the subscription", "I want to cancel my subscription, how?"},
	{"Do you offer refunds for annual plans?", "are refunds offered for annual plans", "can I get a refund on an annual plan"},
	{"How do I change the billing email address?", "how can I change my billing email address", "change the billing email address on my account"},
	{"Which payment cards do you accept?", "what payment cards are accepted", "which cards do you accept for payment"},
}

// exampleConversation is the i-th call of the example traffic: a support
// conversation of 2 to 11 earlier exchanges and a question.
func exampleConversation(i int) []chat.Message {
	topic := exampleTopics[i%len(exampleTopics)]
	return history(2+(i*7)%10, topic[(i/len(exampleTopics))%len(topic)])
}

type exampleRow struct {
	name                                   string
	calls, validated, escalated, saved     int
	cost, withoutEscalation, costPerAnswer float64
}

// runExample serves the example traffic on a release and sums it up.
func runExample(t *testing.T, name, providers, release string, calls int) exampleRow {
	t.Helper()
	g, log := costGateway(t, providers+`
routes:
  - {name: tiered, cascade: [cheap, premium]}
features:
  - name: support
    labels: {production: 1}
    max_tokens: 120
    releases:
      - version: 1
        system: You answer billing questions in JSON.
        schema: {type: object, properties: {answer: {type: string}, escalate_to_human: {type: boolean}}, required: [answer, escalate_to_human]}
`+release)
	for i := range calls {
		ask(g, costKeyA, "feature/support", exampleConversation(i)...)
	}
	r := exampleRow{name: name, calls: calls}
	for _, tr := range log.traces {
		r.cost += tr.CostUSD
		r.withoutEscalation += tr.BaseCostUSD()
		if tr.Validated() {
			r.validated++
		}
		if len(tr.Tiers) > 1 {
			r.escalated++
		}
		if tr.Compression != nil {
			r.saved += tr.Compression.TokensSaved
		}
	}
	r.costPerAnswer = r.cost / float64(r.validated)
	return r
}

// TestWorkedExample serves the same 400 support conversations on two
// releases of one feature: the premium model alone, and a cascade from a
// cheap model (which breaks the schema a quarter of the time and sometimes
// declines) to the premium one with a context policy that keeps the last
// four turns. It prints the comparison the README shows:
//
//	go test ./pipeline -run TestWorkedExample -v
func TestWorkedExample(t *testing.T) {
	const calls = 400
	providers := `
providers:
  - {name: sim-cheap, kind: sim, sim: {seed: 11, output_tokens: 60, invalid_rate: 0.25, refusal_rate: 0.05}}
  - {name: sim-premium, kind: sim, sim: {seed: 12, output_tokens: 60, invalid_rate: 0.04}}
  - {name: sim-judge, kind: sim, sim: {seed: 13}}
`
	premium := runExample(t, "premium only", providers, `        route: premium
`, calls)
	cascade := runExample(t, "cascade", providers, `        route: tiered
`, calls)
	tuned := runExample(t, "cascade + drop_oldest", providers, `        route: tiered
        context: {max_input_tokens: 400, strategy: drop_oldest, keep_last: 4}
`, calls)

	var b strings.Builder
	b.WriteString("| release | calls | validated | escalated | input tokens saved | cost (USD) | without escalation (USD) | cost per validated answer (USD) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range []exampleRow{premium, cascade, tuned} {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %.4f | %.4f | %.6f |\n", r.name, r.calls, r.validated, r.escalated, r.saved, r.cost, r.withoutEscalation, r.costPerAnswer)
	}
	t.Log("\n" + b.String())

	if premium.escalated != 0 || premium.saved != 0 {
		t.Fatalf("the premium release escalated or compressed: %+v", premium)
	}
	if tuned.escalated == 0 || tuned.saved == 0 {
		t.Fatalf("the tuned release never escalated or compressed: %+v", tuned)
	}
	// Escalation costs something on top of the cheap tier, and the
	// cascade still pays less per good answer than premium alone.
	if tuned.cost <= tuned.withoutEscalation {
		t.Fatalf("cost %v, without escalation %v", tuned.cost, tuned.withoutEscalation)
	}
	if cascade.costPerAnswer >= premium.costPerAnswer || tuned.costPerAnswer >= cascade.costPerAnswer {
		t.Fatalf("cost per validated answer: premium %v, cascade %v, with compression %v", premium.costPerAnswer, cascade.costPerAnswer, tuned.costPerAnswer)
	}
	// The cascade validates at least as many answers: the cheap tier's
	// bad answers are escalated, not served.
	if tuned.validated < premium.validated {
		t.Fatalf("validated: tuned %d, premium %d", tuned.validated, premium.validated)
	}
}

// TestSemanticCacheHitRate asks every wording of every example topic, in
// turn, on a release with a semantic cache: the first wording of a topic
// pays, and later wordings should be served the cached answer, never one
// of another topic. It prints the hit rate the README shows:
//
//	go test ./pipeline -run TestSemanticCacheHitRate -v
func TestSemanticCacheHitRate(t *testing.T) {
	g, log := costGateway(t, simProviders+`
features:
  - name: faq
    labels: {production: 1}
    releases:
      - version: 1
        route: premium
        system: You answer questions about the product.
        semantic_cache: {embedding_route: embed, threshold: 0.8, ttl: 1h}
`)
	answerOf := map[string]int{} // trace id -> topic
	hits, repeats, wrong := 0, 0, 0
	for w := range 3 {
		for topic, wordings := range exampleTopics {
			c, err := ask(g, costKeyA, "feature/faq", user(wordings[w]))
			if err != nil {
				t.Fatal(err)
			}
			tr := log.last(t)
			if w > 0 {
				repeats++
			}
			if hit := tr.SemanticHit; hit != nil {
				hits++
				if answerOf[hit.Source] != topic {
					wrong++
				}
				continue
			}
			answerOf[c.ID] = topic
		}
	}
	rate := float64(hits) / float64(repeats)
	t.Logf("semantic cache: %d of %d later wordings served from the cache (hit rate %.0f%%), %d with another topic's answer, threshold 0.8", hits, repeats, 100*rate, wrong)
	if wrong != 0 {
		t.Fatalf("%d hits served another topic's answer", wrong)
	}
	if rate < 0.5 {
		t.Fatalf("hit rate %.2f: paraphrases should mostly hit", rate)
	}
}
