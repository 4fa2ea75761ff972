package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/charmbracelet/bubbles/progress"

	"gantry/api"
	"gantry/eval/assert"
	"gantry/eval/compare"
	"gantry/eval/gateway"
	"gantry/eval/run"
	"gantry/pipeline/validate"
)

// ErrRegression is returned by `gantry eval compare` after it printed a
// regression verdict, so scripts and CI can stop on it.
var ErrRegression = errors.New("the candidate is a regression")

// evalSpec is what a run runs and how.
type evalSpec struct {
	feature        string
	release        int
	dataset        string
	datasetVersion int // 0: the latest
	repeat         int
	concurrency    int
	key            string // virtual key with eval: true
	judge          string // judge model, for model-graded assertions
	runsDir        string // where run directories live
	fresh          bool   // start a new run even if one can be resumed
	tls            *tls.Config
}

// Where the runner lives: in this process, as a client of the gateway
// like production traffic, so the calls go through the real pipeline
// without an agent having to own long-running work. A run directory on
// this machine keeps every result as it finishes: the same command run
// again resumes an unfinished run. The cluster keeps the summary and each
// case's outcome once the run is finished, for comparisons and the gate.

// runKey names the directory of runs of one release on one dataset
// version with one repeat count.
func runKey(s evalSpec, version int) string {
	return fmt.Sprintf("%s-v%d-%s-v%d-x%d", s.feature, s.release, s.dataset, version, s.repeat)
}

// recordedFile marks a run directory whose run the cluster recorded.
const recordedFile = "recorded.json"

// runsRoot is the default parent of run directories.
func runsRoot() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "gantry", "runs")
	}
	return filepath.Join(os.TempDir(), "gantry-runs")
}

// pickRunDir finds the run to resume under dir: the newest whose cluster
// record is missing. Otherwise it names a new run.
func pickRunDir(dir string, fresh bool) (runID, path string, resumed bool) {
	if !fresh {
		entries, _ := os.ReadDir(dir)
		var newest os.DirEntry
		var newestAt time.Time
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if _, err := os.Stat(filepath.Join(p, run.IdentityFile)); err != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(p, recordedFile)); err == nil {
				continue
			}
			if fi, err := e.Info(); err == nil && fi.ModTime().After(newestAt) {
				newest, newestAt = e, fi.ModTime()
			}
		}
		if newest != nil {
			return newest.Name(), filepath.Join(dir, newest.Name()), true
		}
	}
	id := run.NewRunID()
	return id, filepath.Join(dir, id), false
}

// gatewayClient is the runner's client of the agent's gateway.
func (e *env) gatewayClient(s evalSpec, runID string) *gateway.Client {
	hc := &http.Client{Timeout: gateway.DefaultTimeout}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(s.concurrency*2, 8)
	if s.tls != nil {
		t.TLSClientConfig = s.tls.Clone()
	}
	hc.Transport = t
	return &gateway.Client{Base: e.c.URL(), Key: s.key, HTTP: hc, JudgeModel: s.judge, RunID: runID}
}

// runEval runs s to the end (resuming an unfinished run of the same
// release and dataset version) and records it in the cluster.
func (e *env) runEval(ctx context.Context, s evalSpec) (run.Summary, []run.CaseResult, error) {
	if s.key == "" {
		return run.Summary{}, nil, fmt.Errorf("%w: evaluation calls go through the gateway with a virtual key allowed to evaluate (eval: true): pass --key or set GANTRY_KEY", ErrUsage)
	}
	var feat api.Feature
	if err := e.c.call(ctx, "GET", api.ReleasesPath(s.feature), nil, &feat); err != nil {
		return run.Summary{}, nil, err
	}
	rel, ok := feat.Release(s.release)
	if !ok {
		return run.Summary{}, nil, fmt.Errorf("feature %s has no release v%d", s.feature, s.release)
	}
	var dv api.DatasetVersion
	if err := e.c.call(ctx, "GET", api.DatasetPath(s.dataset, s.datasetVersion), nil, &dv); err != nil {
		return run.Summary{}, nil, err
	}
	var env assert.Env
	if rel.Spec != nil && len(rel.Spec.Tools) > 0 {
		if tools, err := validate.CompileTools(rel.Spec.Tools); err == nil {
			env.Tools = tools
		}
	}
	if s.runsDir == "" {
		s.runsDir = runsRoot()
	}
	parent := filepath.Join(s.runsDir, runKey(s, dv.Version))
	runID, dir, resumed := pickRunDir(parent, s.fresh)
	client := e.gatewayClient(s, runID)
	env.Judge = client
	prog := newProgressOut(e.errOut, fmt.Sprintf("%s v%d on %s v%d", s.feature, s.release, s.dataset, dv.Version))
	if resumed {
		fmt.Fprintf(e.errOut, "resuming run %s (%s)\n", runID, dir)
	}
	var evMu sync.Mutex
	var evErr error
	res, err := run.Run(ctx, client, run.Options{
		Identity:    run.Identity{RunID: runID, Feature: s.feature, Release: s.release, DatasetVersion: dv.Version, Repeat: s.repeat},
		Dataset:     dv.Dataset,
		Concurrency: s.concurrency,
		Dir:         dir,
		Env:         env,
		Progress:    prog.update,
		Judged: func(ctx context.Context, r run.CaseResult) {
			// The results go on the call's trace; a failure there loses
			// the events, not the run.
			if err := client.Evaluate(ctx, runID, r); err != nil {
				evMu.Lock()
				if evErr == nil {
					evErr = err
				}
				evMu.Unlock()
			}
		},
	})
	prog.done()
	if evErr != nil {
		fmt.Fprintf(e.errOut, "warning: some evaluation results could not be attached to their traces: %v\n", evErr)
	}
	if err != nil {
		if errors.Is(err, run.ErrIncomplete) {
			return res.Summary, res.Results, fmt.Errorf("%w; run the same command again to resume run %s", err, runID)
		}
		return res.Summary, res.Results, err
	}
	rec := api.RunRecord{Summary: res.Summary, DatasetHash: dv.Hash, Repeat: s.repeat, Outcomes: run.Outcomes(res.Results)}
	var recorded api.Run
	if err := e.c.call(ctx, "POST", api.PathRuns, rec, &recorded); err != nil {
		return res.Summary, res.Results, fmt.Errorf("run %s finished but the cluster did not record it (run the same command again to record it): %w", runID, err)
	}
	b, _ := json.Marshal(recorded)
	if err := os.WriteFile(filepath.Join(dir, recordedFile), append(b, '\n'), 0o600); err != nil {
		fmt.Fprintf(e.errOut, "warning: run %s was recorded, but marking its directory failed: %v\n", runID, err)
	}
	return res.Summary, res.Results, nil
}

// evalRun serves `gantry eval run`: -o json prints the run's summary.
func (e *env) evalRun(ctx context.Context, s evalSpec) error {
	sum, results, err := e.runEval(ctx, s)
	if err != nil {
		return err
	}
	return e.print(sum, func(w *tabwriter.Writer) { printRun(w, sum, results) })
}

func printRun(w io.Writer, s run.Summary, results []run.CaseResult) {
	fmt.Fprintf(w, "run %s: %s v%d on %s v%d\n", s.RunID, s.Feature, s.Release, s.Dataset, s.DatasetVersion)
	fmt.Fprintf(w, "%d cases: %d passed, %d failed, %d errors (pass rate %.1f%%); %d critical failed\n",
		s.Cases, s.Passed, s.Failed, s.Errors, 100*s.PassRate, s.CriticalFailed)
	fmt.Fprintf(w, "latency p50 %.0f ms, p95 %.0f ms; cost $%.6f\n", s.P50Ms, s.P95Ms, s.CostUSD)
	outs := run.Outcomes(results)
	// Failing cases, critical ones first, with the first reason each.
	slices.SortStableFunc(outs, func(a, b run.CaseOutcome) int {
		switch {
		case a.Critical == b.Critical:
			return 0
		case a.Critical:
			return -1
		}
		return 1
	})
	why := map[string]string{}
	for _, r := range results {
		if _, ok := why[r.Case]; ok || r.Status == run.Pass {
			continue
		}
		if r.TargetError != "" {
			why[r.Case] = r.TargetError
			continue
		}
		for _, a := range r.Assertions {
			if !a.Pass {
				why[r.Case] = a.Type + ": " + a.Reason + a.Error
				break
			}
		}
	}
	header := false
	for _, o := range outs {
		if o.Status == run.Pass {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nCASE\tCRITICAL\tSTATUS\tREPEATS\tWHY")
			header = true
		}
		crit := "-"
		if o.Critical {
			crit = "yes"
		}
		reason := why[o.Case]
		if len(reason) > 100 {
			reason = reason[:97] + "..."
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\n", o.Case, crit, o.Status, o.Passed, o.Repeats, reason)
	}
}

// currentRun finds the newest recorded run of a release on a dataset
// version whose outcomes the cluster keeps.
func (e *env) currentRun(ctx context.Context, feature string, release int, ds string, version int) (*api.Run, error) {
	q := url.Values{"feature": {feature}, "release": {strconv.Itoa(release)}, "dataset": {ds}}
	var l api.Runs
	if err := e.c.call(ctx, "GET", api.PathRuns+"?"+q.Encode(), nil, &l); err != nil {
		return nil, err
	}
	for _, r := range l.Runs { // newest first
		if r.Summary.DatasetVersion == version && r.Comparable {
			return &r, nil
		}
	}
	return nil, nil
}

// evalCompare serves `gantry eval compare`: it runs whichever side has no
// current run on the dataset version, asks the cluster for the verdict,
// and prints it; -o json prints the verdict.
func (e *env) evalCompare(ctx context.Context, s evalSpec, candidate int, baseline string) error {
	var feat api.Feature
	if err := e.c.call(ctx, "GET", api.ReleasesPath(s.feature), nil, &feat); err != nil {
		return err
	}
	base := feat.Labels.Production
	if baseline != "" && baseline != "production" {
		n, err := strconv.Atoi(strings.TrimPrefix(baseline, "v"))
		if err != nil || n < 1 {
			return fmt.Errorf("%w: --baseline %q: production or a release version", ErrUsage, baseline)
		}
		base = n
	}
	if base == candidate {
		return fmt.Errorf("%w: the candidate v%d is the baseline; compare another release", ErrUsage, candidate)
	}
	var dv api.DatasetVersion
	if err := e.c.call(ctx, "GET", api.DatasetPath(s.dataset, s.datasetVersion), nil, &dv); err != nil {
		return err
	}
	s.datasetVersion = dv.Version
	ids := map[int]string{}
	for _, rel := range []int{base, candidate} {
		cur, err := e.currentRun(ctx, s.feature, rel, s.dataset, dv.Version)
		if err != nil {
			return err
		}
		if cur != nil && !s.fresh {
			fmt.Fprintf(e.errOut, "v%d: using run %s of %s\n", rel, cur.Summary.RunID, cur.Recorded.UTC().Format(time.RFC3339))
			ids[rel] = cur.Summary.RunID
			continue
		}
		side := s
		side.release = rel
		sum, _, err := e.runEval(ctx, side)
		if err != nil {
			return fmt.Errorf("run v%d: %w", rel, err)
		}
		ids[rel] = sum.RunID
	}
	var v api.Verdict
	if err := e.c.call(ctx, "POST", api.PathCompare, api.Compare{Feature: s.feature, BaselineRun: ids[base], CandidateRun: ids[candidate]}, &v); err != nil {
		return err
	}
	if err := e.print(v, func(w *tabwriter.Writer) { printVerdict(w, v) }); err != nil {
		return err
	}
	if v.Verdict.Verdict == compare.Regression {
		return ErrRegression
	}
	return nil
}

func printVerdict(w io.Writer, v api.Verdict) {
	fmt.Fprintf(w, "%s: v%d against v%d on %s v%d: %s\n", v.Feature, v.Candidate, v.Baseline, v.Dataset, v.DatasetVersion, strings.ToUpper(v.Verdict.Verdict))
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	fmt.Fprintf(w, "pass rate %.1f%% -> %.1f%% over %d cases (%d paired); McNemar: %d broke, %d fixed, p = %.4f\n",
		100*v.BaselinePassRate, 100*v.CandidatePassRate, v.Cases, v.Paired, v.McNemar.Broke, v.McNemar.Fixed, v.McNemar.PValue)
	fmt.Fprintf(w, "score %.3f -> %.3f (difference %.3f, %.0f%% interval %.3f to %.3f)\n",
		v.Score.Baseline, v.Score.Candidate, v.Score.Diff.Estimate, 100*v.Score.Diff.Level, v.Score.Diff.Low, v.Score.Diff.High)
	fmt.Fprintf(w, "p95 latency %.0f -> %.0f ms (limit %.0f); cost per case $%.6f -> $%.6f (limit $%.6f)\n",
		v.Latency.Baseline, v.Latency.Candidate, v.Latency.Limit, v.Cost.Baseline, v.Cost.Candidate, v.Cost.Limit)
	if len(v.Regressions) > 0 {
		fmt.Fprintln(w, "\nBROKE\tCRITICAL\tBASELINE\tCANDIDATE")
		for _, d := range v.Regressions {
			crit := "-"
			if d.Critical {
				crit = "yes"
			}
			fmt.Fprintf(w, "%s\t%s\t%s %.2f\t%s %.2f\n", d.Case, crit, d.Baseline, d.BaselineScore, d.Candidate, d.CandidateScore)
		}
	}
	if v.Omitted > 0 {
		fmt.Fprintf(w, "(%d more cases not listed)\n", v.Omitted)
	}
}

// progressOut shows a run's progress: a bar redrawn in place on a
// terminal, otherwise a plain line every tenth of the run.
type progressOut struct {
	w     io.Writer
	tty   bool
	title string
	bar   progress.Model
	step  int // plain lines: the last tenth printed
	drawn bool
}

func newProgressOut(w io.Writer, title string) *progressOut {
	p := &progressOut{w: w, title: title, step: -1}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
			p.bar = progress.New(progress.WithDefaultGradient(), progress.WithWidth(30))
		}
	}
	return p
}

func (p *progressOut) update(pr run.Progress) {
	frac := 0.0
	if pr.Total > 0 {
		frac = float64(pr.Done) / float64(pr.Total)
	}
	counts := fmt.Sprintf("%d/%d  %d passed  %d failed  %d errors", pr.Done, pr.Total, pr.Passed, pr.Failed, pr.Errors)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s %s  %s ", p.title, p.bar.ViewAs(frac), counts)
		p.drawn = true
		return
	}
	if tenth := int(frac * 10); tenth > p.step || pr.Done == pr.Total {
		p.step = tenth
		fmt.Fprintf(p.w, "%s: %s (%s)\n", p.title, counts, pr.Elapsed.Round(time.Millisecond))
	}
}

func (p *progressOut) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// check reports a run spec that cannot make sense before any call.
func (s evalSpec) check() error {
	switch {
	case s.feature == "" || s.dataset == "":
		return fmt.Errorf("%w: --feature and --dataset are required", ErrUsage)
	case s.repeat < 1 || s.repeat > run.MaxRepeat:
		return fmt.Errorf("%w: --repeat %d: want 1..%d", ErrUsage, s.repeat, run.MaxRepeat)
	case s.concurrency < 1 || s.concurrency > run.MaxConcurrency:
		return fmt.Errorf("%w: --concurrency %d: want 1..%d", ErrUsage, s.concurrency, run.MaxConcurrency)
	case s.datasetVersion < 0:
		return fmt.Errorf("%w: --dataset-version %d: want a version from 1", ErrUsage, s.datasetVersion)
	}
	return nil
}
