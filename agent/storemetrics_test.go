package agent

import (
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// An operator watching for growth reads the trace store's size and the
// recorder's queue on /metrics.
func TestMetricsShowTraceStoreAndQueue(t *testing.T) {
	a := startAgent(t, nil)
	resp := a.post("/v1/features/ticket-triage/invoke", `{"vars":{"ticket":"My parcel never arrived"}}`)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("invoke answered %s without a request id", resp.Status)
	}
	a.waitTrace(id)
	stored := regexp.MustCompile(`(?m)^gantry_trace_store_traces 1$`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := http.Get(a.srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if stored.Match(b) && regexp.MustCompile(`(?m)^gantry_trace_queue_capacity 4096$`).Match(b) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks the trace store holding one trace, or the recorder's queue:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
