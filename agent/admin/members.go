package admin

import (
	"context"
	"net/http"

	"gantry/agent/httpio"
	"gantry/api"
)

func (a *API) getStatus(w http.ResponseWriter, r *http.Request) {
	st := a.Cluster.Status()
	httpio.JSON(w, http.StatusOK, api.Status{
		ID: st.ID, RaftAddr: st.RaftAddr, HTTPAddr: st.HTTPAddr, Role: st.RaftState, Leader: st.Leader, Term: st.Term,
		LastIndex: st.LastLogIndex, CommitIndex: st.CommitIndex, SnapshotIndex: st.SnapshotIndex, StateIndex: st.StateIndex, StateHash: st.StateHash,
		StateSections: st.StateSections, Build: st.Build, LastContact: st.LastContact, Halted: st.Halted, ServingIndex: a.Cluster.Served(), Unserved: st.Unserved,
	})
}

func (a *API) getMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := a.Cluster.Members(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.Members{Leader: a.Cluster.Leader(), Members: []api.Member{}}
	for _, m := range ms {
		am := api.Member{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: m.Voter, Role: api.RoleUnknown, Error: m.Error}
		if st := m.Status; st != nil {
			am.Role = st.RaftState
			am.LastContact = st.LastContact
			am.LastIndex = st.LastLogIndex
			am.AppliedIndex = st.StateIndex
			am.ServingIndex = st.ServingIndex
			am.Healthy = st.Halted == "" && (st.RaftState == api.RoleLeader || st.Leader != "")
			switch {
			case st.Halted != "":
				am.Error = "state machine halted: " + st.Halted
			case st.Unserved != "":
				am.Healthy, am.Error = false, st.Unserved
			}
			if m.ID == a.Cluster.ID() {
				out.Term = st.Term
			}
		}
		out.Members = append(out.Members, am)
	}
	httpio.JSON(w, http.StatusOK, out)
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), a.writeTimeout())
	defer cancel()
	if err := a.Cluster.RemoveMember(ctx, id); err != nil {
		writeErr(w, err)
		return
	}
	httpio.JSON(w, http.StatusOK, api.Removed{ID: id})
}
