package admin

import (
	"net/http"
	"strconv"
	"time"

	"gantry/agent/httpio"
	"gantry/pipeline/trace"
)

// listTraces serves GET /admin/v1/traces with filters feature, release,
// model, status, q (text), since and until (RFC 3339) and limit.
func (a *API) listTraces(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := trace.Query{Feature: v.Get("feature"), Release: v.Get("release"), Model: v.Get("model"), Status: v.Get("status"), Text: v.Get("q"), Limit: 100}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			httpio.APIError(w, http.StatusBadRequest, "bad_limit", "limit must be a number from 1 to 1000")
			return
		}
		q.Limit = n
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				httpio.APIError(w, http.StatusBadRequest, "bad_"+p.name, p.name+" must be an RFC 3339 time, e.g. 2026-11-27T10:00:00Z")
				return
			}
			*p.dst = t
		}
	}
	httpio.JSON(w, http.StatusOK, map[string]any{"traces": a.Traces.Search(q)})
}

// getTrace serves GET /admin/v1/traces/{id}.
func (a *API) getTrace(w http.ResponseWriter, r *http.Request) {
	t, ok := a.Traces.Get(r.PathValue("id"))
	if !ok {
		httpio.APIError(w, http.StatusNotFound, "trace_not_found", "no trace with id "+r.PathValue("id"))
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
