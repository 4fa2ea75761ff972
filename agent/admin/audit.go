package admin

import (
	"net/http"
	"strconv"
	"strings"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/state"
)

// getAudit serves the audit log newest first, filtered by api.AuditQuery:
// actor, kind (the command), object (a substring of the target), cursor
// (the Next of the previous page) and limit 1..1000 [100]. Each entry
// carries the fields its change set.
func (a *API) getAudit(w http.ResponseWriter, r *http.Request) {
	q, err := api.ParseAuditQuery(r.URL.Query())
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	limit := q.Limit
	if limit == 0 {
		limit = 100
	}
	var before uint64
	if q.Cursor != "" {
		before, _ = strconv.ParseUint(q.Cursor, 10, 64) // ParseAuditQuery checked it
	}
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	object := strings.ToLower(q.Object)
	recs := st.Audit()
	out := api.AuditList{Entries: []api.AuditEntry{}}
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		switch {
		case before != 0 && rec.Seq >= before,
			q.Actor != "" && rec.Actor != q.Actor,
			q.Kind != "" && string(rec.Command) != q.Kind,
			object != "" && !strings.Contains(strings.ToLower(rec.Target), object):
			continue
		}
		if len(out.Entries) == limit {
			out.Next = strconv.FormatUint(out.Entries[len(out.Entries)-1].Seq, 10)
			break
		}
		out.Entries = append(out.Entries, auditEntry(rec))
	}
	httpio.JSON(w, http.StatusOK, out)
}

func auditEntry(rec state.AuditRecord) api.AuditEntry {
	e := api.AuditEntry{Seq: rec.Seq, Index: rec.Index, Time: rec.Time, Actor: rec.Actor, RequestID: rec.RequestID,
		Command: string(rec.Command), Target: rec.Target, Before: rec.Before, After: rec.After, Reason: rec.Reason}
	for _, c := range rec.Diff {
		e.Diff = append(e.Diff, api.AuditChange{Field: c.Field, Before: c.Before, After: c.After})
	}
	if len(e.Diff) == 0 {
		e.Diff = summaryDiff(rec.Before, rec.After)
	}
	return e
}

// summaryDiff compares two summaries of the form "name k=v k=v flag", as
// the log writes labels, features, tokens and whole configurations: each
// k=v is a field, a bare word after the first a flag. Summaries of another
// form (a digest, free text) give no fields.
func summaryDiff(before, after string) []api.AuditChange {
	b, okB := summaryFields(before)
	a, okA := summaryFields(after)
	if !okB && !okA {
		return nil
	}
	var out []api.AuditChange
	seen := map[string]bool{}
	for _, fields := range [][][2]string{b, a} {
		for _, f := range fields {
			k := f[0]
			if seen[k] {
				continue
			}
			seen[k] = true
			if bv, av := lookup(b, k), lookup(a, k); bv != av {
				out = append(out, api.AuditChange{Field: k, Before: bv, After: av})
			}
		}
	}
	return out
}

func lookup(fields [][2]string, k string) string {
	for _, f := range fields {
		if f[0] == k {
			return f[1]
		}
	}
	return ""
}

// summaryFields splits a summary into its fields in order; ok is false
// when it has no k=v at all.
func summaryFields(s string) (fields [][2]string, ok bool) {
	words := strings.Fields(s)
	for i, w := range words {
		if k, v, found := strings.Cut(w, "="); found && k != "" {
			fields, ok = append(fields, [2]string{k, v}), true
		} else if i > 0 && !strings.HasPrefix(w, "sha256:") {
			fields = append(fields, [2]string{w, "true"})
		}
	}
	return fields, ok
}
