package gateway

import (
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"gantry/pipeline"
)

// FuzzEvalHeaders: whatever the headers say, a call takes only a release
// version from 1, a well-formed run id and a short printable case name,
// and a case only with a run.
func FuzzEvalHeaders(f *testing.F) {
	f.Add("2", "run-1", "lost-parcel")
	f.Add("0", "", "c")
	f.Add("-1", "run 1", "")
	f.Add("99999999999999999999", "r", "\x00")
	f.Fuzz(func(t *testing.T, release, run, evalCase string) {
		r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
		r.Header.Set(HeaderRelease, release)
		r.Header.Set(HeaderEvalRun, run)
		r.Header.Set(HeaderEvalCase, evalCase)
		c := &pipeline.Call{}
		if err := evalHeaders(r, c); err != nil {
			if err.Status != 400 {
				t.Fatalf("status %d", err.Status)
			}
			return
		}
		switch {
		case c.Pin < 0 || c.Pin > maxRelease:
			t.Fatalf("pin %d", c.Pin)
		case c.EvalRun != "" && !runIDRE.MatchString(c.EvalRun):
			t.Fatalf("run %q", c.EvalRun)
		case c.EvalCase != "" && (c.EvalRun == "" || len(c.EvalCase) > maxEvalCase || !utf8.ValidString(c.EvalCase) || !printable(c.EvalCase)):
			t.Fatalf("case %q of run %q", c.EvalCase, c.EvalRun)
		case c.Evaluation() && !c.NoCache:
			t.Fatal("an evaluation call may be answered from the cache")
		}
	})
}
