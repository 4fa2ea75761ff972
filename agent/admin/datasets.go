package admin

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/eval/dataset"
)

// pushDataset serves POST /admin/v1/datasets?file=NAME.yaml: the body is a
// dataset file, YAML or JSONL as its name says, parsed here so every
// problem names the user's file, line and field. Content equal to the
// latest version's makes no new version.
func (a *API) pushDataset(w http.ResponseWriter, r *http.Request) {
	file := filepath.Base(r.URL.Query().Get("file"))
	if file == "." || file == "/" || file == "" {
		file = "dataset.yaml"
	}
	data, err := readBody(w, r, dataset.MaxFileBytes)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	d, err := dataset.Parse(file, data)
	if err != nil {
		badRequest(w, "%s", problemsOf(err))
		return
	}
	a.putDataset(w, r, command.Dataset{Dataset: d}, nil)
}

// putDataset commits a dataset's content and answers with its version.
func (a *API) putDataset(w http.ResponseWriter, r *http.Request, p command.Dataset, c *dataset.Case) {
	res, err := a.apply(w, r, command.PutDataset, p)
	if err != nil {
		writeErr(w, err)
		return
	}
	httpio.JSON(w, http.StatusOK, api.DatasetPushResult{Name: p.Dataset.Name, Version: res.Version, Hash: res.Hash,
		Cases: len(p.Dataset.Cases), Changed: !res.Unchanged, Index: res.Index, Case: c})
}

func versionsOf(h dataset.History) []int {
	out := make([]int, len(h))
	for i, v := range h {
		out[i] = v.Version
	}
	return out
}

func (a *API) getDatasets(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.Datasets{Datasets: []api.DatasetInfo{}}
	for name, h := range st.Eval.Datasets {
		v, _ := h.Latest()
		out.Datasets = append(out.Datasets, api.DatasetInfo{Name: name, Description: v.Dataset.Description, Version: v.Version,
			Versions: versionsOf(h), Hash: v.Hash, Created: v.Created, Cases: len(v.Dataset.Cases), Critical: v.Dataset.Critical(), Tags: v.Dataset.Tags()})
	}
	slices.SortFunc(out.Datasets, func(x, y api.DatasetInfo) int {
		if x.Name < y.Name {
			return -1
		}
		return 1
	})
	httpio.JSON(w, http.StatusOK, out)
}

// datasetVersion finds the dataset of the path at ?version (the latest by
// default); on failure it has written the error.
func (a *API) datasetVersion(w http.ResponseWriter, r *http.Request, st *state.State) (dataset.History, dataset.Version, bool) {
	name := r.PathValue("name")
	h, ok := st.Eval.Datasets[name]
	if !ok {
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no dataset %q", name))
		return nil, dataset.Version{}, false
	}
	v, _ := h.Latest()
	if q := r.URL.Query().Get("version"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			badRequest(w, "version: want a version number, got %q", q)
			return nil, dataset.Version{}, false
		}
		if v, ok = h.Get(n); !ok {
			httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("dataset %s has no version %d; it keeps versions %v", name, n, versionsOf(h)))
			return nil, dataset.Version{}, false
		}
	}
	return h, v, true
}

func (a *API) getDataset(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	h, v, ok := a.datasetVersion(w, r, st)
	if !ok {
		return
	}
	httpio.JSON(w, http.StatusOK, api.DatasetVersion{Name: v.Dataset.Name, Version: v.Version, Versions: versionsOf(h),
		Hash: v.Hash, Created: v.Created, Dataset: v.Dataset})
}

func (a *API) deleteDataset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	res, err := a.apply(w, r, command.DeleteDataset, command.Name{Name: name})
	if err != nil {
		writeErr(w, err)
		return
	}
	httpio.JSON(w, http.StatusOK, api.DatasetPushResult{Name: name, Changed: true, Index: res.Index})
}

// caseFromTrace serves POST /admin/v1/datasets/{name}/cases/from-trace: a
// trace of this agent's store becomes a case of the dataset's next
// version, its correction (if it got one) the expected output. The push is
// conditional on the version read, so two cases added at once both stay.
func (a *API) caseFromTrace(w http.ResponseWriter, r *http.Request) {
	var in api.FromTrace
	if err := decodeBody(w, r, api.MaxBodyBytes, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if in.TraceID == "" {
		badRequest(w, "trace_id is required")
		return
	}
	t, ok := a.Traces.Get(in.TraceID)
	if !ok {
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no trace %q on agent %s; traces stay on the agent that served the call (GET /admin/v1/traces there)", in.TraceID, a.NodeID))
		return
	}
	if t.Evaluation() {
		badRequest(w, "trace %s is evaluation traffic (run %s); a case comes from a production trace", t.ID, t.EvalRun)
		return
	}
	c, err := dataset.FromTrace(t)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, dataset.ErrTraceInput) {
			status = http.StatusUnprocessableEntity
		}
		httpio.APIError(w, status, api.CodeInvalidState, err.Error())
		return
	}
	c.Critical = in.Critical
	st, ok := a.latest(w, r)
	if !ok {
		return
	}
	_, v, ok := a.datasetVersion(w, r, st)
	if !ok {
		return
	}
	d, err := v.Dataset.AddCase(c)
	if err != nil {
		badRequest(w, "dataset %s v%d with the case of trace %s: %v", v.Dataset.Name, v.Version, t.ID, err)
		return
	}
	read := v.Version
	a.putDataset(w, r, command.Dataset{Dataset: d, IfVersion: &read}, &d.Cases[len(d.Cases)-1])
}
