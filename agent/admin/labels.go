package admin

import (
	"fmt"
	"net/http"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/config"
)

// moveLabel serves POST /admin/v1/features/{name}/labels. The move means
// what config.PlanMove says; the state machine works it out again when the
// command applies, and checks From in the same step, so two operators do
// not undo each other blindly.
func (a *API) moveLabel(w http.ResponseWriter, r *http.Request) {
	var m api.LabelMove
	if err := decodeBody(w, r, api.MaxBodyBytes, &m); err != nil {
		badRequest(w, "%v", err)
		return
	}
	name := r.PathValue("name")
	if m.Feature == "" {
		m.Feature = name
	}
	if m.Feature != name {
		badRequest(w, "feature: the body names %q, the path %q", m.Feature, name)
		return
	}
	if err := m.Check(); err != nil {
		badRequest(w, "%v", err)
		return
	}
	cmd := command.Label{Feature: name, Action: m.Action, Version: m.To, Weight: m.Weight, Reason: m.Reason, Force: m.Force}
	if m.From != 0 {
		cmd.From = &m.From
	}
	if m.Action == config.MovePromote && !m.Force {
		// Say why the gate refuses, with its own code, before asking; the
		// state machine checks the gate again when the move applies.
		st, ok := a.latest(w, r)
		if !ok {
			return
		}
		if f, ok := st.Feature(name); ok {
			if g := st.Gate(f, m.To); g.Refusal != "" {
				httpio.APIError(w, http.StatusConflict, api.CodeGated, "promotion gate: "+g.Refusal)
				return
			}
		}
	}
	res, err := a.apply(w, r, command.MoveLabel, cmd)
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
			out.Change = c
		}
	}
	if out.Change.Action == "" {
		httpio.APIError(w, http.StatusInternalServerError, api.CodeInternal, fmt.Sprintf("the move committed at index %d but its record is not in the history", res.Index))
		return
	}
	httpio.JSON(w, http.StatusOK, out)
}
