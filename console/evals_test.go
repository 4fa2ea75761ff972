package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"gantry/api"
	"gantry/eval/compare"
	evalrun "gantry/eval/run"
)

func TestClientEvals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case api.PathRuns:
			json.NewEncoder(w).Encode(api.Runs{Runs: []api.Run{{Summary: evalrun.Summary{RunID: "run-1", Feature: "f", Release: 2}}}})
		case api.PathVerdicts:
			json.NewEncoder(w).Encode(api.Verdicts{Verdicts: []api.Verdict{{Verdict: compare.Verdict{Verdict: compare.Regression, Feature: "f", Candidate: 2}}}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, testToken)
	ev, err := c.Evals(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Runs) != 1 || ev.Runs[0].Summary.RunID != "run-1" || len(ev.Verdicts) != 1 || ev.Verdicts[0].Verdict.Verdict != compare.Regression {
		t.Fatalf("evals %+v", ev)
	}
}
