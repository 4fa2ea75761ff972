package admin

import (
	"net/http"
	"strconv"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/state"
)

// getAudit serves the audit log newest first; cursor is the Next of the
// previous page, limit 1..1000 [100].
func (a *API) getAudit(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > state.MaxAudit {
			badRequest(w, "limit: want 1..%d, got %q", state.MaxAudit, v)
			return
		}
		limit = n
	}
	var before uint64
	if v := r.URL.Query().Get("cursor"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			badRequest(w, "cursor: want the next value of the previous page, got %q", v)
			return
		}
		before = n
	}
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	recs := st.Audit()
	out := api.AuditList{Entries: []api.AuditEntry{}}
	for i := len(recs) - 1; i >= 0; i-- {
		a := recs[i]
		if before != 0 && a.Seq >= before {
			continue
		}
		if len(out.Entries) == limit {
			out.Next = strconv.FormatUint(out.Entries[len(out.Entries)-1].Seq, 10)
			break
		}
		out.Entries = append(out.Entries, api.AuditEntry{Seq: a.Seq, Index: a.Index, Time: a.Time, Actor: a.Actor, RequestID: a.RequestID,
			Command: string(a.Command), Target: a.Target, Before: a.Before, After: a.After, Reason: a.Reason})
	}
	httpio.JSON(w, http.StatusOK, out)
}
