package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
	"gantry/pipeline/trace"
)

const testToken = "gat_console-test"

// fakeAgent is an admin API on an httptest server with the contract of
// package api: enough of an agent to drive the console against.
type fakeAgent struct {
	t    testing.TB
	node string
	srv  *httptest.Server

	mu        sync.Mutex
	traces    []trace.Summary // oldest first
	feature   api.Feature
	members   *api.Members      // nil: the endpoint does not exist (404)
	relStats  *api.ClusterStats // nil: the endpoint does not exist (404)
	alerts    *api.Alerts       // nil: 404
	health    *api.Health       // nil: 404
	costs     []api.CostRow     // by release; nil: 404
	audit     []api.AuditEntry  // newest first
	auditQs   []api.AuditQuery  // audit queries received
	moves     []api.LabelMove
	operators []string
	feedDown  bool                        // the feed answers 503
	feeds     map[chan trace.Summary]bool // open feed connections
	feedConns int                         // feed connections accepted, ever
	feedTries int                         // feed requests, refused ones too
}

func newFakeAgent(t testing.TB, node string) *fakeAgent {
	t.Helper()
	f := &fakeAgent{t: t, node: node, feeds: map[chan trace.Summary]bool{}}
	f.feature = api.Feature{
		Name:   "support-answer",
		Labels: config.Labels{Production: 2},
		Releases: []api.Release{
			{Version: 1, ID: "support-answer@v1", Hash: "aaaaaaaaaaaa", Created: time.Now().Add(-3 * time.Hour)},
			{Version: 2, ID: "support-answer@v2", Hash: "bbbbbbbbbbbb", Created: time.Now().Add(-2 * time.Hour)},
			{Version: 3, ID: "support-answer@v3", Hash: "cccccccccccc", Created: time.Now().Add(-time.Hour), Note: "shorter answers"},
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, 200, map[string]string{"status": "ok", "node": f.node})
	})
	admin := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+testToken {
				writeTestJSON(w, 401, api.ErrorResponse{Error: api.Error{Code: api.CodeUnauthorized, Message: "an admin token is required"}})
				return
			}
			h(w, r)
		})
	}
	admin("GET "+api.PathTraces, func(w http.ResponseWriter, r *http.Request) {
		q, err := api.ParseTraceQuery(r.URL.Query())
		if err != nil {
			writeTestJSON(w, 400, api.ErrorResponse{Error: api.Error{Code: api.CodeBadRequest, Message: err.Error()}})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		var out api.TraceList
		for i := len(f.traces) - 1; i >= 0 && (q.Limit == 0 || len(out.Traces) < q.Limit); i-- {
			if s := f.traces[i]; q.Since.IsZero() || !s.Start.Before(q.Since) {
				out.Traces = append(out.Traces, s)
			}
		}
		writeTestJSON(w, 200, out)
	})
	admin("GET "+api.PathTraces+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, s := range f.traces {
			if s.ID == r.PathValue("id") {
				writeTestJSON(w, 200, trace.Trace{ID: s.ID, Node: f.node, Feature: s.Feature, Release: s.Release, Status: s.Status, Start: s.Start, Duration: s.Duration,
					Spans: []trace.Span{{Name: "route", Duration: s.Duration}}})
				return
			}
		}
		writeTestJSON(w, 404, api.ErrorResponse{Error: api.Error{Code: api.CodeNotFound, Message: "no trace " + r.PathValue("id")}})
	})
	admin("GET "+api.PathFeed, f.feed)
	admin("GET "+api.PathOverview, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeTestJSON(w, 200, api.Overview{Node: f.node, Time: time.Now(), WindowSeconds: 300, RequestsPerSec: float64(len(f.traces)) / 300,
			Releases: []api.ReleaseStats{{Feature: "support-answer", Release: "support-answer@v2", Version: 2, Label: "production", Stats: api.Stats{Requests: int64(len(f.traces))}}}})
	})
	admin("GET "+api.PathMembers, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.members == nil {
			http.NotFound(w, r) // what an agent without the endpoint answers
			return
		}
		writeTestJSON(w, 200, f.members)
	})
	admin("GET "+api.PathReleaseStats, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.relStats == nil {
			http.NotFound(w, r)
			return
		}
		writeTestJSON(w, 200, f.relStats)
	})
	admin("GET "+api.PathAlerts, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.alerts == nil {
			http.NotFound(w, r)
			return
		}
		writeTestJSON(w, 200, f.alerts)
	})
	admin("GET "+api.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.health == nil {
			http.NotFound(w, r)
			return
		}
		writeTestJSON(w, 200, f.health)
	})
	admin("GET "+api.PathCosts, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.costs == nil || r.URL.Query().Get("by") != "release" {
			http.NotFound(w, r)
			return
		}
		writeTestJSON(w, 200, api.Costs{Node: f.node, By: "release", Rows: f.costs})
	})
	admin("GET "+api.PathAudit, func(w http.ResponseWriter, r *http.Request) {
		q, err := api.ParseAuditQuery(r.URL.Query())
		if err != nil {
			writeTestJSON(w, 400, api.ErrorResponse{Error: api.Error{Code: api.CodeBadRequest, Message: err.Error()}})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.auditQs = append(f.auditQs, q)
		out := api.AuditList{Entries: []api.AuditEntry{}}
		for _, e := range f.audit {
			if (q.Kind == "" || e.Command == q.Kind) && (q.Actor == "" || e.Actor == q.Actor) && strings.Contains(e.Target, q.Object) {
				out.Entries = append(out.Entries, e)
			}
		}
		writeTestJSON(w, 200, out)
	})
	admin("GET "+api.PathFeatures, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeTestJSON(w, 200, api.Features{Features: []api.Feature{f.feature}})
	})
	admin("GET "+api.PathFeatures+"/{name}/diff", func(w http.ResponseWriter, r *http.Request) {
		a, _ := strconv.Atoi(r.URL.Query().Get("a"))
		b, _ := strconv.Atoi(r.URL.Query().Get("b"))
		writeTestJSON(w, 200, api.Diff{Feature: r.PathValue("name"), A: a, B: b, Fields: []api.FieldDiff{
			{Field: "system", Lines: []api.DiffLine{{Op: "-", Text: "old"}, {Op: "+", Text: "new"}}}}})
	})
	admin("POST "+api.PathFeatures+"/{name}/labels", func(w http.ResponseWriter, r *http.Request) {
		var m api.LabelMove
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			writeTestJSON(w, 400, api.ErrorResponse{Error: api.Error{Code: api.CodeBadRequest, Message: err.Error()}})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.moves = append(f.moves, m)
		f.operators = append(f.operators, r.Header.Get("X-Gantry-Operator"))
		if m.From != 0 && m.From != f.feature.Labels.Production {
			writeTestJSON(w, 409, api.ErrorResponse{Error: api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("production is v%d, not v%d", f.feature.Labels.Production, m.From)}})
			return
		}
		ch := api.LabelChange{Time: time.Now(), Actor: "token:test", Action: m.Action, Label: config.LabelProduction, From: f.feature.Labels.Production, To: m.To}
		f.feature.Labels.Production = m.To
		f.feature.History = append(f.feature.History, ch)
		writeTestJSON(w, 200, api.LabelMoveResult{Feature: m.Feature, Labels: f.feature.Labels, Change: ch, Index: 42})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.dropFeeds()
		f.srv.Close()
	})
	return f
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeAgent) feed(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.feedTries++
	if f.feedDown {
		f.mu.Unlock()
		writeTestJSON(w, 503, api.ErrorResponse{Error: api.Error{Code: api.CodeUnavailable, Message: "shutting down"}})
		return
	}
	ch := make(chan trace.Summary, 4096)
	f.feeds[ch] = true
	f.feedConns++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.feeds, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fmt.Fprint(w, ": feed\n\n")
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case s, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(s)
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
	}
}

// serve records a call: it joins the trace list and goes out on every
// open feed.
func (f *fakeAgent) serve(s trace.Summary) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Node == "" {
		s.Node = f.node
	}
	f.traces = append(f.traces, s)
	for ch := range f.feeds {
		select {
		case ch <- s:
		default:
		}
	}
}

// dropFeeds ends every open feed connection, as a restarting agent does.
func (f *fakeAgent) dropFeeds() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.feeds {
		close(ch)
		delete(f.feeds, ch)
	}
}

func (f *fakeAgent) setFeedDown(down bool) {
	f.mu.Lock()
	f.feedDown = down
	f.mu.Unlock()
}

func (f *fakeAgent) openFeeds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.feeds)
}

func (f *fakeAgent) labelMoves() ([]api.LabelMove, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.LabelMove(nil), f.moves...), append([]string(nil), f.operators...)
}

func summary(id, node string, start time.Time) trace.Summary {
	return trace.Summary{ID: id, Node: node, Start: start, Duration: 120, Feature: "support-answer", Release: "support-answer@v2",
		Model: "sim-small", Status: "ok", HTTPStatus: 200, InputTokens: 30, OutputTokens: 12, CostUSD: 0.0004}
}
