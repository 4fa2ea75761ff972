package admin

import (
	"fmt"
	"net/http"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
)

// moveLabel serves POST /admin/v1/features/{name}/labels. From, when set,
// must match where the label points when the move applies, so two
// operators do not undo each other blindly; the state machine checks it in
// the same step as the move.
func (a *API) moveLabel(w http.ResponseWriter, r *http.Request) {
	var m api.LabelMove
	if err := decodeBody(r, &m); err != nil {
		badRequest(w, "%v", err)
		return
	}
	name := r.PathValue("name")
	if m.Feature == "" {
		m.Feature = name
	}
	if m.Label == "" {
		m.Label = api.LabelProduction
		if m.Action == api.ActionCanary {
			m.Label = api.LabelCanary
		}
	}
	if m.Feature != name {
		badRequest(w, "feature: the body names %q, the path %q", m.Feature, name)
		return
	}
	if err := m.Check(); err != nil {
		badRequest(w, "%v", err)
		return
	}
	st, ok := a.latest(w, r)
	if !ok {
		return
	}
	f, ok := st.Feature(name)
	if !ok {
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no feature %q", name))
		return
	}
	if m.Action == api.ActionPromote && m.To == f.Labels.Production {
		httpio.APIError(w, http.StatusUnprocessableEntity, api.CodeInvalidState, fmt.Sprintf("v%d is already production of %s", m.To, name))
		return
	}
	cmd := command.Label{Feature: name, Action: m.Action, Version: m.To, Weight: m.Weight, Reason: m.Reason}
	if m.From != 0 {
		cmd.From = &m.From
	}
	res, err := a.apply(r, command.MoveLabel, cmd)
	if err != nil {
		writeErr(w, err)
		return
	}
	now := a.Cluster.State()
	out := api.LabelMoveResult{Feature: name, Index: res.Index}
	if nf, ok := now.Feature(name); ok {
		out.Labels = nf.Labels
	}
	for _, c := range now.LabelHistory[name] {
		if c.Index == res.Index {
			out.Change = apiChange(c)
		}
	}
	httpio.JSON(w, http.StatusOK, out)
}
