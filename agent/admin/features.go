package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/pipeline/release"
)

// releaseOrigins finds who created each release and when, from the audit
// log; releases older than the log show neither.
func releaseOrigins(st *state.State) map[string]state.AuditRecord {
	out := map[string]state.AuditRecord{}
	for _, a := range st.Audit() {
		if a.Command == command.CreateRelease {
			out[strings.TrimPrefix(a.Target, "release/")] = a
		}
	}
	return out
}

func apiFeature(st *state.State, f config.Feature, spec bool, origins map[string]state.AuditRecord) api.Feature {
	out := api.Feature{Name: f.Name, Description: f.Description, Labels: f.Labels, Releases: []api.Release{}}
	for _, r := range f.Releases {
		id := config.ReleaseID(f.Name, r.Version)
		ar := api.Release{Version: r.Version, ID: id, Hash: r.Hash()}
		if a, ok := origins[id]; ok {
			ar.Created, ar.CreatedBy = a.Time, a.Actor
		}
		if spec {
			rc := r
			ar.Spec = &rc
		}
		if f.Eval != nil && f.Eval.Gate && r.Version != f.Labels.Production {
			g := apiGate(st, f.Name, r.Version)
			if g.Verdict != nil {
				v := *g.Verdict
				v.Regressions, v.Improvements, v.Errored = nil, nil, nil
				g.Verdict = &v
			}
			ar.Gate = &g
		}
		out.Releases = append(out.Releases, ar)
	}
	out.History = st.LabelHistory[f.Name]
	out.Eval = f.Eval
	if _, analysed := st.Eval.Canaries[f.Name]; analysed || f.Labels.Live() {
		c := apiCanary(st, f, time.Now())
		out.CanaryAnalysis = &c
	}
	if step, err := config.PlanMove(f, out.History, config.LabelMove{Action: config.MoveRollback}); err == nil {
		out.Rollback = &api.LabelStep{Label: step.Label, From: step.From, To: step.To}
	} else {
		out.RollbackRefused = err.Error()
	}
	return out
}

func (a *API) getFeatures(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	origins := releaseOrigins(st)
	out := api.Features{Features: []api.Feature{}}
	for _, f := range st.Config.Features {
		out.Features = append(out.Features, apiFeature(st, f, false, origins))
	}
	httpio.JSON(w, http.StatusOK, out)
}

func (a *API) feature(w http.ResponseWriter, r *http.Request) (*state.State, config.Feature, bool) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return nil, config.Feature{}, false
	}
	name := r.PathValue("name")
	f, ok := st.Feature(name)
	if !ok {
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no feature %q", name))
		return nil, config.Feature{}, false
	}
	return st, f, true
}

func (a *API) getReleases(w http.ResponseWriter, r *http.Request) {
	st, f, ok := a.feature(w, r)
	if !ok {
		return
	}
	httpio.JSON(w, http.StatusOK, apiFeature(st, f, true, releaseOrigins(st)))
}

// createRelease serves POST /admin/v1/features/{name}/releases: the body is
// a release (config.Release as JSON); version 0 or absent takes the next
// number. The release is checked in full (references, template, schema,
// tools) before it is proposed, and every problem is named by its path.
func (a *API) createRelease(w http.ResponseWriter, r *http.Request) {
	var rel config.Release
	if err := decodeBody(w, r, command.MaxBytes, &rel); err != nil {
		badRequest(w, "%v", err)
		return
	}
	// A consistent read: an agent that just started, or lags, still
	// judges the release against the cluster's current configuration.
	st, ok := a.latest(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	f, ok := st.Feature(name)
	if !ok {
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no feature %q", name))
		return
	}
	// Version 0 takes the next number when the command applies, so
	// creates through different agents never race for one; an explicit
	// version must be that next number then, or the create is refused.
	what := "the new release of " + f.Name
	if rel.Version != 0 {
		what = config.ReleaseID(f.Name, rel.Version)
	}
	pinned, err := release.Pin(&st.Config, rel)
	if err != nil {
		badRequest(w, "%s: %v", what, err)
		return
	}
	if err := release.Check(&st.Config, f.Name, pinned); err != nil {
		badRequest(w, "invalid release: %s", problems(err))
		return
	}
	res, err := a.apply(w, r, command.CreateRelease, command.Release{Feature: f.Name, Release: pinned})
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.Release{Version: res.Version, ID: config.ReleaseID(f.Name, res.Version), Hash: res.Hash, CreatedBy: actor(r)}
	if a, ok := releaseOrigins(a.Cluster.State())[out.ID]; ok {
		out.Created = a.Time
	}
	pinned.Version = res.Version
	out.Spec = &pinned
	httpio.JSON(w, http.StatusCreated, out)
}

func (a *API) getDiff(w http.ResponseWriter, r *http.Request) {
	_, f, ok := a.feature(w, r)
	if !ok {
		return
	}
	var vs [2]int
	for i, p := range []string{"a", "b"} {
		n, err := strconv.Atoi(r.URL.Query().Get(p))
		if err != nil || n < 1 {
			badRequest(w, "%s: want a release version, got %q", p, r.URL.Query().Get(p))
			return
		}
		vs[i] = n
	}
	ra, okA := f.Release(vs[0])
	rb, okB := f.Release(vs[1])
	if !okA || !okB {
		missing := vs[0]
		if okA {
			missing = vs[1]
		}
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no release %s", config.ReleaseID(f.Name, missing)))
		return
	}
	httpio.JSON(w, http.StatusOK, diffReleases(f.Name, ra, rb))
}

// diffReleases turns release.Diff's changes into the admin API's shape:
// text fields line by line, other fields as their old and new values.
func diffReleases(feature string, a, b config.Release) api.Diff {
	d := api.Diff{Feature: feature, A: a.Version, B: b.Version, AHash: a.Hash(), BHash: b.Hash(), Fields: []api.FieldDiff{}}
	for _, c := range release.Diff(a, b) {
		fd := api.FieldDiff{Field: c.Path}
		if c.Lines != nil {
			for _, l := range c.Lines {
				fd.Lines = append(fd.Lines, api.DiffLine{Op: string(l.Op), Text: l.Text})
			}
		} else {
			if c.Kind != release.Added {
				fd.Lines = append(fd.Lines, api.DiffLine{Op: api.DiffRemove, Text: c.Old})
			}
			if c.Kind != release.Removed {
				fd.Lines = append(fd.Lines, api.DiffLine{Op: api.DiffAdd, Text: c.New})
			}
		}
		d.Fields = append(d.Fields, fd)
	}
	return d
}
