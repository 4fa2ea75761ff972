package run_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gantry/eval/assert"
	"gantry/eval/run"
)

// BenchmarkRun1000 runs a 1,000-case dataset with four assertions a case
// against the HTTP test gateway at concurrency 8: the runner's and the
// client's own cost per case, the gateway answering at once.
func BenchmarkRun1000(b *testing.B) {
	g := newGateway(b)
	var src strings.Builder
	src.WriteString("name: bench\nassert:\n  - {type: icontains, value: order}\n  - {type: latency, max_ms: 5000}\n  - {type: levenshtein, value: \"Your order ships Tuesday\", threshold: 0.5}\ncases:\n")
	for i := range 1000 {
		fmt.Fprintf(&src, "  - {vars: {question: \"q%d\"}, sources: [shipping], assert: [{type: retrieval, k: 2}]}\n", i)
	}
	d := load(b, src.String())
	c := g.client()
	b.ReportAllocs()
	for b.Loop() {
		res, err := run.Run(context.Background(), c, run.Options{
			Identity: run.Identity{Feature: "support-answer", Release: 3, DatasetVersion: 1},
			Dataset:  d, Concurrency: 8, Env: assert.Env{},
		})
		if err != nil || res.Summary.Passed != 1000 {
			b.Fatalf("%v, %+v", err, res.Summary)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "cases/s")
}
