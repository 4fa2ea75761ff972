package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/eval/assert"
	"gantry/eval/dataset"
	"gantry/eval/gateway"
	"gantry/eval/run"
	"gantry/pipeline/trace"
)

// BenchmarkEvalRun1000 runs a 1,000-case dataset against the example's
// ticket-triage release through the agent's real gateway over loopback
// HTTP (authentication, the release pinned, policy, routing, the
// simulator answering at once with schema-valid JSON, validation, trace),
// at concurrency 8, with three assertions a case and each case's results
// attached to its trace. It reports cases per second and the gateway's
// own time per case: a call's duration less the time spent in the
// provider, from the calls' traces.
func BenchmarkEvalRun1000(b *testing.B) {
	cfg := quietConfig()
	a := startAgentB(b, cfg)
	var src strings.Builder
	src.WriteString("name: bench\nassert:\n  - {type: is-json}\n  - {type: json-schema, value: {type: object, required: [category, priority]}}\n  - {type: latency, max_ms: 5000}\ncases:\n")
	for i := range 1000 {
		fmt.Fprintf(&src, "  - {vars: {ticket: \"ticket number %d: my parcel is late\"}}\n", i)
	}
	d, err := dataset.Parse("bench.yaml", []byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	var overhead, upstream []float64
	b.ReportAllocs()
	for b.Loop() {
		id := run.NewRunID()
		c := &gateway.Client{Base: a.srv.URL, Key: devKey, RunID: id}
		res, err := run.Run(context.Background(), c, run.Options{
			Identity: run.Identity{RunID: id, Feature: "ticket-triage", Release: 1, DatasetVersion: 1},
			Dataset:  d, Concurrency: 8, Env: assert.Env{},
			Judged: func(ctx context.Context, r run.CaseResult) {
				if err := c.Evaluate(ctx, id, r); err != nil {
					b.Errorf("attach results: %v", err)
				}
			},
		})
		if err != nil || res.Summary.Passed != 1000 {
			b.Fatalf("%v, %+v", err, res.Summary)
		}
		b.StopTimer()
		for _, r := range res.Results {
			t := waitStored(b, a, r.TraceID)
			overhead = append(overhead, float64(t.Duration-t.Upstream))
			upstream = append(upstream, float64(t.Upstream))
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "cases/s")
	slices.Sort(overhead)
	b.ReportMetric(mean(overhead), "gateway-ms/case")
	b.ReportMetric(overhead[len(overhead)*95/100], "gateway-p95-ms/case")
	b.ReportMetric(mean(upstream), "upstream-ms/case")
}

func waitStored(b *testing.B, a *testAgent, id string) *trace.Trace {
	b.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if t, ok := a.s.store.Get(id); ok {
			return t
		}
	}
	b.Fatalf("trace %s never stored", id)
	return nil
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
