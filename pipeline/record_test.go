package pipeline

import (
	"context"
	"strings"
	"testing"

	"gantry/pipeline/chat"
)

// TestTraceRedactionIsTheRecordersWork: the trace handed over at the end of
// a call still has its bodies' redaction pending, so the client never waits
// for the scan; once completed, as the recorder does before storing, no
// finding is left.
func TestTraceRedactionIsTheRecordersWork(t *testing.T) {
	g, traces := newTestGateway(t, &scripted{name: "primary", steps: []step{{chunks: []string{"mail ", "ann@example.com"}}}})
	c, _ := streamCall("main")
	c.Req.Messages = []chat.Message{{Role: "user", Content: chat.Text("I am bob@example.com, card 4111 1111 1111 1111")}}
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatalf("serve: %v", err)
	}
	tr := (*traces)[0]
	if tr.Pending == nil {
		t.Fatal("the trace was redacted on the latency path")
	}
	tr.Complete()
	for _, s := range []string{"bob@example.com", "4111", "ann@example.com"} {
		if strings.Contains(tr.Input+tr.Output, s) {
			t.Fatalf("trace input %q output %q still holds %q", tr.Input, tr.Output, s)
		}
	}
	if !strings.Contains(tr.Input, "I am") {
		t.Fatalf("trace input %q: want the text around the findings", tr.Input)
	}
}

// TestScrubBounds: a body larger than the raw bound is redacted within
// it and kept to maxBody; one whose redaction shrinks below maxBody is
// withheld, since its raw cut may have split a finding.
func TestScrubBounds(t *testing.T) {
	words := strings.Repeat("plain words here ", maxRaw/8)
	if got := scrubText(words); len(got) > maxBody+len("…") || !strings.HasPrefix(got, "plain words") {
		t.Fatalf("a long plain body: got %d bytes %.40q", len(got), got)
	}
	cards := strings.Repeat("4111 1111 1111 1111 ", maxRaw/10)
	got := scrubText(cards)
	if strings.Contains(got, "4111") {
		t.Fatalf("a long body of cards kept digits: %.60q", got)
	}
}
