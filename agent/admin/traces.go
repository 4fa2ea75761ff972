package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/pipeline/trace"
)

// listTraces serves GET /admin/v1/traces with the filters of
// api.TraceQuery: trace_id (every call of one W3C trace), feature,
// release, model, status, node, user, key_fp, error_kind, q (text),
// since and until (RFC 3339), min/max_duration, min/max_cost, sort and
// limit. A cursor is refused: an agent's store answers one page.
func (a *API) listTraces(w http.ResponseWriter, r *http.Request) {
	aq, err := api.ParseTraceQuery(r.URL.Query())
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	if aq.Cursor != "" {
		badRequest(w, "cursor: an agent answers one page of up to %d traces; narrow the query with since and until", api.MaxTraceLimit)
		return
	}
	q := trace.Query{TraceID: aq.TraceID, Feature: aq.Feature, Release: aq.Release, Model: aq.Model, Status: aq.Status,
		User: aq.User, KeyFP: aq.KeyFP, ErrorKind: aq.ErrorKind, Text: aq.Text, Since: aq.Since, Until: aq.Until,
		MinDuration: trace.Ms(aq.MinDuration), MaxDuration: trace.Ms(aq.MaxDuration), MinCost: aq.MinCost, MaxCost: aq.MaxCost,
		Sort: aq.Sort, Limit: aq.Limit}
	out := api.TraceList{Traces: []trace.Summary{}}
	if aq.Node == "" || aq.Node == a.NodeID {
		out.Traces = a.Traces.Search(q)
	}
	httpio.JSON(w, http.StatusOK, out)
}

// getTrace serves GET /admin/v1/traces/{id}: one call by its own id (the
// X-Request-Id the gateway answered with), or by a W3C trace id when that
// trace has one call only; a trace id of several calls is a 409 listing
// them, to ask for again by their own ids.
func (a *API) getTrace(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := a.Traces.Lookup(id, nil)
	switch {
	case errors.Is(err, trace.ErrAmbiguous):
		calls := a.Traces.Search(trace.Query{TraceID: id, Limit: api.MaxTraceLimit})
		ids := make([]string, len(calls))
		for i, c := range calls {
			ids[i] = c.ID
		}
		httpio.APIError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("trace %s has %d calls; ask for one by its id: %s", id, len(ids), strings.Join(ids, ", ")))
		return
	case err != nil:
		httpio.APIError(w, http.StatusNotFound, "trace_not_found", "no call or trace with id "+id)
		return
	}
	httpio.JSON(w, http.StatusOK, t)
}

// feed serves GET /admin/v1/feed: trace summaries as server-sent events as
// calls finish. A reader too slow to keep up loses the oldest summaries
// rather than slowing the gateway.
func (a *API) feed(w http.ResponseWriter, r *http.Request) {
	ch, cancel := a.Traces.Subscribe(1024)
	defer cancel()
	sse := httpio.NewSSE(w)
	if err := sse.Comment("feed"); err != nil {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.Stopping:
			return
		case sum, ok := <-ch:
			if !ok {
				return
			}
			if err := sse.Event(sum); err != nil {
				return
			}
		case <-keepalive.C:
			if err := sse.Comment("keepalive"); err != nil {
				return
			}
		}
	}
}
