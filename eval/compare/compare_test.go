package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gantry/eval/run"
)

// side builds a run of n cases; status and score give each case's outcome.
func side(release, n int, status func(i int) string, score func(i int) float64) Side {
	id := run.Identity{RunID: fmt.Sprintf("run-v%d", release), Feature: "support-answer", Release: release,
		Dataset: "smoke", DatasetVersion: 2, DatasetHash: "sha256:abc", Repeat: 1}
	var rs []run.CaseResult
	for i := range n {
		rs = append(rs, run.CaseResult{Case: fmt.Sprintf("case-%04d", i), Critical: i%50 == 0, Status: status(i),
			Score: score(i), LatencyMs: 800, CostUSD: 0.001})
	}
	return Side{Identity: id, Summary: run.Summarize(id, rs), Results: rs}
}

func passAll(int) string { return run.Pass }
func one(int) float64    { return 1 }
func statusScore(s string) float64 {
	if s == run.Pass {
		return 1
	}
	return 0
}

func compareT(t *testing.T, b, c Side, th Thresholds) Verdict {
	t.Helper()
	v, err := Compare(b, c, th)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerdicts(t *testing.T) {
	// Baseline: cases 151..199 fail, the rest pass (the critical ones,
	// every 50th, among them).
	baseStatus := func(i int) string {
		if i >= 151 && i < 200 {
			return run.Fail
		}
		return run.Pass
	}
	base := side(1, 400, baseStatus, func(i int) float64 { return statusScore(baseStatus(i)) })
	tests := []struct {
		name   string
		status func(i int) string
		score  func(i int) float64
		n      int
		want   string
		says   string
	}{
		{"unchanged", baseStatus, nil, 400, NoRegression, "no significant change"},
		{"a critical case breaks", func(i int) string {
			if i == 100 {
				return run.Fail
			}
			return baseStatus(i)
		}, nil, 400, Regression, "1 critical case(s) do not pass: case-0100"},
		{"many break", func(i int) string {
			if i >= 1 && i < 31 && i%50 != 0 {
				return run.Fail
			}
			return baseStatus(i)
		}, nil, 400, Regression, "30 cases broke and 0 were fixed"},
		{"many fixed", func(i int) string {
			if i >= 151 && i < 181 {
				return run.Pass
			}
			return baseStatus(i)
		}, nil, 400, Improved, "30 cases were fixed"},
		{"few change either way", func(i int) string {
			switch {
			case i == 1 || i == 2:
				return run.Fail
			case i == 151 || i == 152 || i == 153:
				return run.Pass
			}
			return baseStatus(i)
		}, nil, 400, NoRegression, "2 broke, 3 fixed"},
		{"too few cases", func(i int) string { return run.Pass }, one, 20, Inconclusive, "fewer than the 77 needed"},
		{"scores fall, outcomes stay", baseStatus, func(i int) float64 { return statusScore(baseStatus(i)) - 0.05 }, 400, Regression, "mean score fell by 0.050"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base
			if tt.n != 400 {
				b = side(1, tt.n, passAll, one)
			}
			score := tt.score
			if score == nil {
				score = func(i int) float64 { return statusScore(tt.status(i)) }
			}
			v := compareT(t, b, side(2, tt.n, tt.status, score), Thresholds{})
			if v.Verdict != tt.want || !strings.Contains(strings.Join(v.Reasons, "\n"), tt.says) {
				t.Fatalf("verdict %s, reasons %q; want %s saying …%s…", v.Verdict, v.Reasons, tt.want, tt.says)
			}
		})
	}
}

func TestRegressionsListedCriticalFirst(t *testing.T) {
	base := side(1, 200, passAll, one)
	broken := map[int]bool{3: true, 7: true, 100: true}
	cand := side(2, 200, func(i int) string {
		if broken[i] {
			return run.Fail
		}
		return run.Pass
	}, func(i int) float64 {
		if broken[i] {
			return 0
		}
		return 1
	})
	v := compareT(t, base, cand, Thresholds{})
	var got []string
	for _, d := range v.Regressions {
		got = append(got, d.Case)
	}
	if strings.Join(got, ",") != "case-0100,case-0003,case-0007" || !v.Regressions[0].Critical {
		t.Fatalf("regressions %v", got)
	}
	if v.McNemar.Broke != 3 || v.McNemar.Fixed != 0 || math.Abs(v.McNemar.PValue-0.25) > 1e-12 {
		t.Fatalf("McNemar %+v, want 3 broke, p = 2·(1/8)", v.McNemar)
	}
}

func TestLatencyAndCostThresholds(t *testing.T) {
	base := side(1, 300, passAll, one)
	slow := side(2, 300, passAll, one)
	for i := range slow.Results {
		slow.Results[i].LatencyMs = 1100 // +37.5% over 800 ms
	}
	slow.Summary = run.Summarize(slow.Identity, slow.Results)
	v := compareT(t, base, slow, Thresholds{})
	if v.Verdict != Regression || !v.Latency.Exceeded || v.Latency.Limit != 800*1.2+50 {
		t.Fatalf("slow candidate: %s, latency %+v", v.Verdict, v.Latency)
	}
	if v2 := compareT(t, base, slow, Thresholds{MaxLatencyIncrease: 0.5}); v2.Verdict != NoRegression {
		t.Fatalf("slow candidate within a 50%% allowance: %s %q", v2.Verdict, v2.Reasons)
	}
	dear := side(2, 300, passAll, one)
	for i := range dear.Results {
		dear.Results[i].CostUSD = 0.0013
	}
	if v := compareT(t, base, dear, Thresholds{}); v.Verdict != Regression || !v.Cost.Exceeded || v.Cost.Change < 0.299 {
		t.Fatalf("dear candidate: %s, cost %+v", v.Verdict, v.Cost)
	}
}

// Cases that got no answer on one side stay out of the tests, but a
// critical one still fails the candidate.
func TestErroredCases(t *testing.T) {
	base := side(1, 200, passAll, one)
	cand := side(2, 200, func(i int) string {
		if i < 4 {
			return run.Error
		}
		return run.Pass
	}, one)
	v := compareT(t, base, cand, Thresholds{})
	if v.Paired != 196 || len(v.Errored) != 4 || v.Verdict != Regression || v.CriticalFailures[0] != "case-0000" {
		t.Fatalf("verdict %s paired %d errored %v critical %v", v.Verdict, v.Paired, v.Errored, v.CriticalFailures)
	}
}

func TestMismatchedRunsAreRefused(t *testing.T) {
	base := side(1, 100, passAll, one)
	other := side(2, 100, passAll, one)
	other.Identity.DatasetVersion = 3
	if _, err := Compare(base, other, Thresholds{}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("other dataset version: %v", err)
	}
	short := side(2, 99, passAll, one)
	if _, err := Compare(base, short, Thresholds{}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("missing case: %v", err)
	}
	renamed := side(2, 100, passAll, one)
	renamed.Results[5].Case = "new-case"
	if _, err := Compare(base, renamed, Thresholds{}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("different case: %v", err)
	}
	if _, err := Compare(base, side(2, 100, passAll, one), Thresholds{Alpha: 0.9}); err == nil {
		t.Fatal("alpha 0.9 accepted")
	}
}

func TestVerdictJSONStartsWithVerdict(t *testing.T) {
	v := compareT(t, side(1, 50, passAll, one), side(2, 50, passAll, one), Thresholds{})
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"verdict":"inconclusive","reasons":[`) {
		t.Fatalf("JSON starts %.60s", b)
	}
	for _, f := range []string{`"mcnemar":{"broke":0,"fixed":0,"p_value":1}`, `"critical_failures":[]`, `"regressions":[]`, `"required_cases":77`} {
		if !strings.Contains(string(b), f) {
			t.Fatalf("JSON lacks %s:\n%s", f, b)
		}
	}
}

func TestSameSeedSameVerdict(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	scores := make([]float64, 500)
	for i := range scores {
		scores[i] = r.Float64()
	}
	b := side(1, 500, passAll, func(i int) float64 { return scores[i] })
	c := side(2, 500, passAll, func(i int) float64 { return scores[(i+1)%500] })
	v1 := compareT(t, b, c, Thresholds{Seed: 9})
	v2 := compareT(t, b, c, Thresholds{Seed: 9})
	if v1.Score.Diff != v2.Score.Diff {
		t.Fatalf("same seed, different intervals: %+v, %+v", v1.Score.Diff, v2.Score.Diff)
	}
}

// BenchmarkCompare1000 compares two 1,000-case runs, with the default
// 2,000 bootstrap resamples.
func BenchmarkCompare1000(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	status := make([]string, 1000)
	for i := range status {
		status[i] = run.Pass
		if r.Float64() < 0.1 {
			status[i] = run.Fail
		}
	}
	base := side(1, 1000, func(i int) string { return status[i] }, func(i int) float64 { return statusScore(status[i]) })
	cand := side(2, 1000, func(i int) string {
		if i%97 == 0 {
			return run.Fail
		}
		return status[i]
	}, func(i int) float64 { return r.Float64() })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compare(base, cand, Thresholds{}); err != nil {
			b.Fatal(err)
		}
	}
}
