// Package run runs a dataset against a release: every case, K times,
// through a Target (the agent's Target calls the gateway pinned to the
// release, so policy, retrieval, routing and validation are all real),
// with bounded concurrency, a progress callback, per-case results
// appended to a run directory so that a restarted run skips what is done,
// and a summary.
package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"gantry/eval/assert"
	"gantry/eval/dataset"
	"gantry/pipeline/trace"
)

// Limits of a run.
const (
	MaxRepeat      = 20
	MaxConcurrency = 64
	MaxCases       = dataset.MaxCases
	// MaxStoredOutput bounds the output kept per result.
	MaxStoredOutput = 8 << 10
	// DefaultCaseTimeout bounds one call and its judging.
	DefaultCaseTimeout = 2 * time.Minute
)

// Target answers one case the way production traffic would be answered,
// pinned to the release under test. Invoke must be safe for concurrent
// use. An error means the case got no answer (the gateway refused or
// failed it); the case counts as an error, not a failure.
type Target interface {
	Invoke(ctx context.Context, r Request) (Response, error)
}

// Request is one case sent to a Target.
type Request struct {
	RunID    string
	Feature  string
	Release  int // the version the call is pinned to
	CaseID   string
	Repeat   int // 0-based
	Vars     map[string]any
	Messages []dataset.Message
}

// Response is a Target's answer.
type Response struct {
	Output    string
	ToolCalls []assert.Call
	TraceID   string
	Release   string // release id that served, e.g. support-answer@v3
	Model     string
	// LatencyMs is the call's latency if the target measured it; 0 lets
	// the runner use what it measured around Invoke.
	LatencyMs float64
	CostUSD   float64
	Sources   []trace.Source
	Context   string // retrieved context given to the model
}

// Identity names a run and what it runs; a run directory belongs to one.
type Identity struct {
	RunID          string `json:"run_id"`
	Feature        string `json:"feature"`
	Release        int    `json:"release"`
	Dataset        string `json:"dataset"`
	DatasetVersion int    `json:"dataset_version"`
	DatasetHash    string `json:"dataset_hash"`
	Repeat         int    `json:"repeat"`
}

// CaseResult is one repeat of one case: a line of the results file.
type CaseResult struct {
	Case     string `json:"case"`
	Repeat   int    `json:"repeat"`
	Critical bool   `json:"critical,omitempty"`
	Status   string `json:"status"` // pass, fail or error
	// TargetError is why the target gave no answer.
	TargetError  string                   `json:"target_error,omitempty"`
	Output       string                   `json:"output,omitempty"`
	TraceID      string                   `json:"trace_id,omitempty"`
	ServedBy     string                   `json:"served_by,omitempty"`
	Model        string                   `json:"model,omitempty"`
	LatencyMs    float64                  `json:"latency_ms"`
	CostUSD      float64                  `json:"cost_usd"`
	JudgeCostUSD float64                  `json:"judge_cost_usd,omitempty"`
	Score        float64                  `json:"score"`
	Assertions   []assert.Result          `json:"assertions,omitempty"`
	Retrieval    *assert.RetrievalMetrics `json:"retrieval,omitempty"`
}

// Progress is reported after every finished repeat.
type Progress struct {
	Done, Total            int
	Passed, Failed, Errors int // repeats so far, including resumed ones
	Resumed                int // repeats found done in the run directory
	Elapsed                time.Duration
	Last                   *CaseResult
}

// Options of a run.
type Options struct {
	Identity
	Dataset     dataset.Dataset
	Concurrency int // 1 when 0
	// Dir is the run directory. Results are appended to it as they finish
	// and a run started again on the same directory skips the repeats it
	// finds there. Empty keeps nothing on disk.
	Dir string
	// Env gives assertions their judge, embedder and the release's tools.
	Env assert.Env
	// Progress, if set, is called after each repeat, from one goroutine
	// at a time; it must return quickly.
	Progress func(Progress)
	// Judged, if set, is called with each repeat's result as soon as it
	// is judged, from the worker that ran it (so concurrently), before it
	// is recorded; the gateway runner attaches the result to the call's
	// trace there.
	Judged      func(ctx context.Context, r CaseResult)
	CaseTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Result is a finished (or interrupted) run.
type Result struct {
	Summary Summary
	// Results are every repeat's result, resumed ones included, in
	// dataset order.
	Results []CaseResult
}

// NewRunID returns a fresh run id.
func NewRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "run-" + hex.EncodeToString(b[:])
}

// ErrIncomplete is returned with a partial result when the context ended
// before every repeat ran; the run directory keeps what finished.
var ErrIncomplete = errors.New("run incomplete")

type job struct {
	idx    int // case index
	repeat int
}

// Run runs every case of opts.Dataset opts.Repeat times against target.
// It returns the summary of all results, resumed ones included. When ctx
// ends first it stops sending cases, waits for those in flight, and
// returns what it has with an error wrapping ErrIncomplete.
func Run(ctx context.Context, target Target, opts Options) (Result, error) {
	if err := opts.check(); err != nil {
		return Result{}, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	plans, err := compile(opts.Dataset)
	if err != nil {
		return Result{}, err
	}
	var dir *runDir
	done := map[job]CaseResult{}
	if opts.Dir != "" {
		if dir, done, err = openDir(opts.Dir, opts.Identity, opts.Dataset); err != nil {
			return Result{}, err
		}
		defer dir.close()
	}
	var jobs []job
	for i := range opts.Dataset.Cases {
		for k := range opts.Repeat {
			if _, ok := done[job{i, k}]; !ok {
				jobs = append(jobs, job{i, k})
			}
		}
	}
	total := len(opts.Dataset.Cases) * opts.Repeat
	var (
		mu       sync.Mutex
		results  = done
		prog     = Progress{Total: total, Resumed: len(done), Done: len(done)}
		writeErr error
	)
	for _, r := range done {
		prog.count(r)
	}
	start := now()
	conc := max(1, min(opts.Concurrency, len(jobs)))
	ch := make(chan job)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				r := runCase(ctx, target, opts, plans[j.idx], j, now)
				if opts.Judged != nil {
					opts.Judged(ctx, r)
				}
				mu.Lock()
				if dir != nil && writeErr == nil {
					writeErr = dir.append(r)
				}
				results[j] = r
				prog.Done++
				prog.count(r)
				prog.Elapsed = now().Sub(start)
				prog.Last = &r
				if opts.Progress != nil {
					opts.Progress(prog)
				}
				mu.Unlock()
			}
		}()
	}
	stopped := false
feed:
	for _, j := range jobs {
		mu.Lock()
		failed := writeErr != nil
		mu.Unlock()
		if failed {
			break
		}
		select {
		case ch <- j:
		case <-ctx.Done():
			stopped = true
			break feed
		}
	}
	close(ch)
	wg.Wait()

	res := Result{Results: ordered(results, opts.Dataset, opts.Repeat)}
	res.Summary = Summarize(opts.Identity, res.Results)
	switch {
	case writeErr != nil:
		return res, fmt.Errorf("record results in %s: %w", opts.Dir, writeErr)
	case stopped || len(res.Results) < total:
		return res, fmt.Errorf("%w: %d of %d repeats done: %w", ErrIncomplete, len(res.Results), total, context.Cause(ctx))
	}
	if dir != nil {
		if err := dir.finish(res.Summary); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (p *Progress) count(r CaseResult) {
	switch r.Status {
	case Pass:
		p.Passed++
	case Fail:
		p.Failed++
	default:
		p.Errors++
	}
}

func (o *Options) check() error {
	if o.RunID == "" {
		o.RunID = NewRunID()
	}
	if o.Repeat == 0 {
		o.Repeat = 1
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.CaseTimeout <= 0 {
		o.CaseTimeout = DefaultCaseTimeout
	}
	o.Identity.Dataset = o.Dataset.Name
	o.DatasetHash = o.Dataset.Hash()
	switch {
	case !runIDRE.MatchString(o.RunID):
		return fmt.Errorf("run id %q: letters, digits, '.', '_' and '-', at most 64", o.RunID)
	case o.Repeat < 1 || o.Repeat > MaxRepeat:
		return fmt.Errorf("repeat %d outside 1..%d", o.Repeat, MaxRepeat)
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return fmt.Errorf("concurrency %d outside 1..%d", o.Concurrency, MaxConcurrency)
	case o.Feature == "" || o.Release < 1:
		return errors.New("a run needs a feature and a release version")
	case o.DatasetVersion < 1:
		return errors.New("a run needs the dataset's version")
	}
	if err := o.Dataset.Check(); err != nil {
		return fmt.Errorf("dataset %s: %w", o.Dataset.Name, err)
	}
	return nil
}

// plan is a case with its compiled assertions, shared ones first.
type plan struct {
	c      dataset.Case
	ac     assert.Case
	checks []*assert.Assertion
}

func compile(d dataset.Dataset) ([]plan, error) {
	comp := assert.NewCompiler()
	shared := make([]*assert.Assertion, len(d.Assert))
	for i, s := range d.Assert {
		a, err := comp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("assert[%d]: %w", i, err)
		}
		shared[i] = a
	}
	plans := make([]plan, len(d.Cases))
	for i, c := range d.Cases {
		p := plan{c: c, ac: c.AssertCase(), checks: append([]*assert.Assertion(nil), shared...)}
		for j, s := range c.Assert {
			a, err := comp.Compile(s)
			if err != nil {
				return nil, fmt.Errorf("cases[%d].assert[%d]: %w", i, j, err)
			}
			p.checks = append(p.checks, a)
		}
		plans[i] = p
	}
	return plans, nil
}

func runCase(ctx context.Context, target Target, opts Options, p plan, j job, now func() time.Time) CaseResult {
	ctx, cancel := context.WithTimeout(ctx, opts.CaseTimeout)
	defer cancel()
	r := CaseResult{Case: p.c.ID, Repeat: j.repeat, Critical: p.c.Critical}
	t0 := now()
	resp, err := target.Invoke(ctx, Request{
		RunID: opts.RunID, Feature: opts.Feature, Release: opts.Release,
		CaseID: p.c.ID, Repeat: j.repeat, Vars: p.c.Vars, Messages: p.c.Messages,
	})
	elapsed := float64(now().Sub(t0)) / float64(time.Millisecond)
	if err != nil {
		r.Status, r.TargetError = Error, clip(err.Error(), 1024)
		return r
	}
	r.Output, r.TraceID, r.ServedBy, r.Model = clip(resp.Output, MaxStoredOutput), resp.TraceID, resp.Release, resp.Model
	r.LatencyMs, r.CostUSD = resp.LatencyMs, resp.CostUSD
	if r.LatencyMs <= 0 {
		r.LatencyMs = elapsed
	}
	out := assert.Output{Text: resp.Output, ToolCalls: resp.ToolCalls, LatencyMs: r.LatencyMs, CostUSD: r.CostUSD, Sources: resp.Sources, Context: resp.Context}
	if len(p.c.Sources) > 0 {
		k := 0 // the widest k any retrieval assertion asks for; all sources when none does
		for _, a := range p.checks {
			if base, _ := a.Spec().Kind(); base == assert.Retrieval {
				k = max(k, a.Spec().K)
			}
		}
		m := assert.Retrieve(p.c.Sources, resp.Sources, k)
		r.Retrieval = &m
	}
	r.Status = Pass
	var score float64
	for _, a := range p.checks {
		ar := a.Eval(ctx, opts.Env, p.ac, out)
		r.JudgeCostUSD += ar.CostUSD
		switch {
		case ar.Error != "":
			if r.Status == Pass {
				r.Status = Error
			}
		case !ar.Pass:
			r.Status = Fail
		}
		if ar.Score != nil {
			score += *ar.Score
		} else if ar.Pass {
			score++
		}
		r.Assertions = append(r.Assertions, ar)
	}
	// A case's score is the mean of its assertions' scores, a pass or
	// fail counting 1 or 0; a case without assertions scores 1.
	r.Score = 1
	if n := len(p.checks); n > 0 {
		r.Score = score / float64(n)
	}
	return r
}

// ordered lists results in dataset order, repeats ascending.
func ordered(results map[job]CaseResult, d dataset.Dataset, repeat int) []CaseResult {
	out := make([]CaseResult, 0, len(results))
	for i := range d.Cases {
		for k := range repeat {
			if r, ok := results[job{i, k}]; ok {
				out = append(out, r)
			}
		}
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
