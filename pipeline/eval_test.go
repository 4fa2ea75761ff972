package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/trace"
)

const evalKey = "gk_eval-key-0123456789"

// evalGateway serves a feature with releases v1 (production) and v2 (no
// label) to a plain key and to a key allowed to evaluate.
func evalGateway(t *testing.T) (*Gateway, *[]*trace.Trace) {
	t.Helper()
	up := &scripted{name: "m"}
	cfg := &config.Config{
		Providers: []config.Provider{{Name: "p", Kind: config.KindOpenAI}},
		Models:    []config.Model{{Name: "m", Provider: "p", Price: config.Price{Input: 1, Output: 2}}},
		Keys: []config.Key{{Name: "test", Hash: config.HashKey(testKey)},
			{Name: "evaluator", Hash: config.HashKey(evalKey), Eval: true}},
		Features: []config.Feature{{Name: "triage", Labels: config.Labels{Production: 1}, Releases: []config.Release{
			{Version: 1, Route: "m", Template: []config.Message{{Role: "user", Content: "one"}}},
			{Version: 2, Route: "m", Template: []config.Message{{Role: "user", Content: "two"}}},
		}}},
	}
	snap, err := Compile(cfg, NewProviderSet(func(config.Provider) (provider.Provider, error) { return up, nil }))
	if err != nil {
		t.Fatal(err)
	}
	var traces []*trace.Trace
	g := NewGateway(Deps{Record: func(tr *trace.Trace) { traces = append(traces, tr) }})
	g.Swap(snap)
	return g, &traces
}

func TestPinnedEvaluationCalls(t *testing.T) {
	cases := []struct {
		name       string
		secret     string
		model      string
		pin        int
		run        string
		status     int
		code       string
		release    string
		label      string
		evaluation bool
	}{
		{"plain call takes the label", testKey, "feature/triage", 0, "", 200, "", "triage@v1", config.LabelProduction, false},
		{"eval key pins v2", evalKey, "feature/triage", 2, "run-1", 200, "", "triage@v2", LabelPinned, true},
		{"pin without a run is still evaluation", evalKey, "feature/triage", 2, "", 200, "", "triage@v2", LabelPinned, true},
		{"run without a pin takes the label", evalKey, "feature/triage", 0, "run-1", 200, "", "triage@v1", config.LabelProduction, true},
		{"plain key may not pin", testKey, "feature/triage", 2, "", 403, "evaluation_not_allowed", "", "", true},
		{"plain key may not mark a run", testKey, "feature/triage", 0, "run-1", 403, "evaluation_not_allowed", "", "", true},
		{"pin of a missing release", evalKey, "feature/triage", 9, "run-1", 404, "release_not_found", "", "", true},
		{"pin of a plain model", evalKey, "m", 2, "run-1", 400, "", "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, traces := evalGateway(t)
			c := &Call{ID: "c", TraceID: trace.NewTraceID(), Received: time.Now(), Entry: EntryChat, Secret: tc.secret,
				Pin: tc.pin, EvalRun: tc.run,
				Req: &chat.Request{Model: tc.model, Messages: []chat.Message{{Role: "user", Content: chat.Text("hi")}}}}
			err := g.Serve(context.Background(), c)
			tr := (*traces)[0]
			if tc.status != 200 {
				var ce *chat.Error
				if !errors.As(err, &ce) || ce.Status != tc.status || (tc.code != "" && ce.Code != tc.code) {
					t.Fatalf("got %v, want %d %s", err, tc.status, tc.code)
				}
				if tr.HTTPStatus != tc.status {
					t.Fatalf("trace status %d, want %d", tr.HTTPStatus, tc.status)
				}
				return
			}
			if err != nil {
				t.Fatalf("serve: %v", err)
			}
			if tr.Release != tc.release || tr.Label != tc.label {
				t.Fatalf("served by %s (%s), want %s (%s)", tr.Release, tr.Label, tc.release, tc.label)
			}
			if tr.Evaluation() != tc.evaluation || tr.EvalRun != tc.run {
				t.Fatalf("trace evaluation %v run %q, want %v %q", tr.Evaluation(), tr.EvalRun, tc.evaluation, tc.run)
			}
			if c.CostUSD <= 0 || c.CostUSD != tr.CostUSD {
				t.Fatalf("call cost %v, trace cost %v: the call carries its cost", c.CostUSD, tr.CostUSD)
			}
		})
	}
}
