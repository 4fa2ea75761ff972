package admin

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/cluster/state"
)

// recordRun serves POST /admin/v1/evals/runs: a finished run's summary and
// outcomes, which the state machine checks against the dataset version
// the run ran before it keeps them.
func (a *API) recordRun(w http.ResponseWriter, r *http.Request) {
	var in api.RunRecord
	if err := decodeBody(w, r, command.MaxBytes, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	p := command.Run{Summary: in.Summary, DatasetHash: in.DatasetHash, Repeat: in.Repeat, Outcomes: in.Outcomes}
	res, err := a.apply(w, r, command.RecordRun, p)
	if err != nil {
		writeErr(w, err)
		return
	}
	rec, ok := a.Cluster.State().Run(in.Summary.Feature, in.Summary.RunID)
	if !ok || rec.Index != res.Index {
		rec = state.RunRecord{Run: p, Index: res.Index}
	}
	httpio.JSON(w, http.StatusCreated, apiRun(rec, false))
}

func apiRun(r state.RunRecord, outcomes bool) api.Run {
	out := api.Run{Summary: r.Summary, DatasetHash: r.DatasetHash, Repeat: r.Repeat, Recorded: r.Time, RecordedBy: r.Actor,
		Index: r.Index, Comparable: len(r.Outcomes) > 0}
	if outcomes {
		out.Outcomes = r.Outcomes
	}
	return out
}

// getRuns serves GET /admin/v1/evals/runs, newest first, filtered by
// feature, release and dataset.
func (a *API) getRuns(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	q := r.URL.Query()
	release := 0
	if v := q.Get("release"); v != "" {
		if release, err = strconv.Atoi(v); err != nil || release < 1 {
			badRequest(w, "release: want a version number, got %q", v)
			return
		}
	}
	out := api.Runs{Runs: []api.Run{}}
	for f, runs := range st.Eval.Runs {
		if feat := q.Get("feature"); feat != "" && feat != f {
			continue
		}
		for _, rec := range runs {
			s := rec.Summary
			if (release != 0 && s.Release != release) || (q.Get("dataset") != "" && s.Dataset != q.Get("dataset")) {
				continue
			}
			out.Runs = append(out.Runs, apiRun(rec, false))
		}
	}
	slices.SortFunc(out.Runs, func(x, y api.Run) int { return cmp.Compare(y.Index, x.Index) })
	httpio.JSON(w, http.StatusOK, out)
}

// getRun serves GET /admin/v1/evals/runs/{id} with the run's outcomes.
func (a *API) getRun(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	id := r.PathValue("id")
	for f := range st.Eval.Runs {
		if rec, ok := st.Run(f, id); ok {
			httpio.JSON(w, http.StatusOK, apiRun(rec, true))
			return
		}
	}
	httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no run %q recorded", id))
}

// compare serves POST /admin/v1/evals/compare: the state machine compares
// the two recorded runs and keeps the verdict, which the promotion gate
// reads.
func (a *API) compare(w http.ResponseWriter, r *http.Request) {
	var in api.Compare
	if err := decodeBody(w, r, api.MaxBodyBytes, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if in.Feature == "" || in.BaselineRun == "" || in.CandidateRun == "" {
		badRequest(w, "feature, baseline_run and candidate_run are required")
		return
	}
	res, err := a.apply(w, r, command.RecordVerdict, command.Verdict{Feature: in.Feature, BaselineRun: in.BaselineRun, CandidateRun: in.CandidateRun, Thresholds: in.Thresholds})
	if err != nil {
		writeErr(w, err)
		return
	}
	for _, v := range a.Cluster.State().Eval.Verdicts[in.Feature] {
		if v.Index == res.Index {
			httpio.JSON(w, http.StatusOK, apiVerdict(v))
			return
		}
	}
	httpio.APIError(w, http.StatusInternalServerError, api.CodeInternal, fmt.Sprintf("the verdict committed at index %d but is not in the state", res.Index))
}

func apiVerdict(v state.VerdictRecord) api.Verdict {
	return api.Verdict{Verdict: v.Verdict, Omitted: v.Omitted, Recorded: v.Time, RecordedBy: v.Actor, Index: v.Index}
}

// getVerdicts serves GET /admin/v1/evals/verdicts, newest first, filtered
// by feature and candidate version.
func (a *API) getVerdicts(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	q := r.URL.Query()
	cand := 0
	if v := q.Get("candidate"); v != "" {
		if cand, err = strconv.Atoi(v); err != nil || cand < 1 {
			badRequest(w, "candidate: want a version number, got %q", v)
			return
		}
	}
	out := api.Verdicts{Verdicts: []api.Verdict{}}
	for f, vs := range st.Eval.Verdicts {
		if feat := q.Get("feature"); feat != "" && feat != f {
			continue
		}
		for _, v := range vs {
			if cand == 0 || v.Verdict.Candidate == cand {
				out.Verdicts = append(out.Verdicts, apiVerdict(v))
			}
		}
	}
	slices.SortFunc(out.Verdicts, func(x, y api.Verdict) int { return cmp.Compare(y.Index, x.Index) })
	httpio.JSON(w, http.StatusOK, out)
}

// getGate serves GET /admin/v1/features/{name}/gate?version=N: what a
// promotion of version N would meet.
func (a *API) getGate(w http.ResponseWriter, r *http.Request) {
	st, f, ok := a.feature(w, r)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.URL.Query().Get("version"))
	if err != nil || n < 1 {
		badRequest(w, "version: want a release version, got %q", r.URL.Query().Get("version"))
		return
	}
	httpio.JSON(w, http.StatusOK, apiGate(st, f.Name, n))
}

func apiGate(st *state.State, feature string, version int) api.Gate {
	f, _ := st.Feature(feature)
	g := st.Gate(f, version)
	out := api.Gate{Feature: feature, Version: version, Gated: g.Gated, Dataset: g.Dataset, Refusal: g.Refusal}
	if g.Verdict != nil {
		v := apiVerdict(*g.Verdict)
		out.Verdict = &v
	}
	return out
}
