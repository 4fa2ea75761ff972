package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"gantry/pipeline"
	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
)

// readBody reads a request body within the snapshot's limit. Too large is
// a 413; anything else unreadable a 400.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *chat.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &chat.Error{Status: http.StatusRequestEntityTooLarge, Type: chat.TypeInvalidRequest, Code: "request_too_large",
				Message: "the request body is larger than the limit of " + byteSize(limit)}
		}
		return nil, chat.BadRequest("", "the request body could not be read: %v", err)
	}
	return body, nil
}

// newCall starts a call record from the HTTP request: ids, trace context
// and the presented key. Header names here are written in canonical form,
// which Header.Get then uses without converting.
func (s *Server) newCall(r *http.Request, entry string) *pipeline.Call {
	c := &pipeline.Call{
		ID:       newID(),
		Received: time.Now(),
		Entry:    entry,
		Secret:   bearer(r),
		NoCache:  r.Header.Get("X-Gantry-Cache") == "bypass" || strings.Contains(r.Header.Get("Cache-Control"), "no-cache"),
	}
	// Most callers send no traceparent; skip the parse and its error.
	if v := r.Header.Get("Traceparent"); v == "" {
		c.TraceID = trace.NewTraceID()
	} else if p, err := trace.ParseTraceparent(v); err == nil {
		c.TraceID, c.ParentID = p.TraceID, p.SpanID
	} else {
		c.TraceID = trace.NewTraceID()
	}
	return c
}

// setTraceHeaders tells the client how to find its trace.
func setTraceHeaders(w http.ResponseWriter, c *pipeline.Call) {
	// Canonical keys, stored directly: Set would canonicalize them anew on
	// every request.
	h := w.Header()
	h["X-Request-Id"] = []string{c.ID}
	h["Traceparent"] = []string{trace.FormatTraceparent(c.TraceID, trace.NewSpanID(), 1)}
}

func bearer(r *http.Request) string {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	snap := s.gw.Snapshot()
	c := s.newCall(r, pipeline.EntryChat)
	setTraceHeaders(w, c)
	body, cerr := readBody(w, r, snap.Limits.MaxBodyBytes)
	if cerr == nil {
		var err error
		c.Req, err = chat.DecodeRequest(body, snap.Limits.MaxMessages)
		if err != nil {
			cerr = err.(*chat.Error)
		}
	}
	if cerr != nil {
		s.reject(w, c, cerr)
		return
	}
	c.User = c.Req.User
	c.Journey = r.Header.Get("X-Gantry-Journey")
	if len(c.Req.Metadata) > 0 {
		c.Vars = make(map[string]any, len(c.Req.Metadata))
		for k, v := range c.Req.Metadata {
			c.Vars[k] = v
		}
	}
	if !c.Req.Stream {
		err := s.gw.Serve(r.Context(), c)
		rateHeaders(w, c)
		if err != nil {
			writeChatError(w, err.(*chat.Error))
			return
		}
		w.Header()["X-Gantry-Model"] = []string{c.Answered.Model.Name}
		writeJSON(w, http.StatusOK, c.Resp)
		return
	}
	sse := newSSEWriter(w)
	c.Emit = func(ch *chat.Chunk) error {
		if !sse.started {
			w.Header().Set("x-gantry-model", ch.Model)
			rateHeaders(w, c)
		}
		return sse.event(ch)
	}
	err := s.gw.Serve(r.Context(), c)
	switch {
	case err == nil:
		sse.done()
	case !sse.started:
		rateHeaders(w, c)
		writeChatError(w, err.(*chat.Error))
	default:
		// Output already went out: end with an error event, never [DONE],
		// so the client knows the answer is incomplete.
		sse.event(err.(*chat.Error).Body())
	}
}

// rateHeaders reports the call's rate limits in OpenAI's x-ratelimit-*
// headers.
func rateHeaders(w http.ResponseWriter, c *pipeline.Call) {
	if c.RateStatus != nil {
		c.RateStatus.Header(w.Header())
	}
}

// reject records a request refused before the pipeline ran, so malformed
// traffic is visible in traces and metrics too.
func (s *Server) reject(w http.ResponseWriter, c *pipeline.Call, e *chat.Error) {
	c.Secret = ""
	c.Err = e
	s.record(s.gw.Trace(c))
	writeChatError(w, e)
}

// models serves GET /v1/models: what the caller's key may name.
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	snap := s.gw.Snapshot()
	k, err := pipeline.Authenticate(snap, bearer(r))
	if err != nil {
		writeChatError(w, err.(*chat.Error))
		return
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, id := range snap.ModelIDs() {
		if pipeline.KeyAllows(k, id) {
			out.Data = append(out.Data, model{ID: id, Object: "model", Created: snap.Loaded.Unix(), OwnedBy: "gantry"})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// invokeRequest is the body of POST /v1/features/{name}/invoke.
type invokeRequest struct {
	Vars    map[string]any `json:"vars"`
	User    string         `json:"user"`
	Journey string         `json:"journey"`
}

// InvokeResponse is what a feature invocation returns.
type InvokeResponse struct {
	Output      any            `json:"output"`
	TraceID     string         `json:"trace_id"`
	RequestID   string         `json:"request_id"`
	Release     string         `json:"release"`
	ReleaseHash string         `json:"release_hash"`
	Label       string         `json:"label"`
	Model       string         `json:"model"`
	Usage       *chat.Usage    `json:"usage,omitempty"`
	Sources     []trace.Source `json:"sources"`
}

// invoke serves POST /v1/features/{name}/invoke.
func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	snap := s.gw.Snapshot()
	c := s.newCall(r, pipeline.EntryInvoke)
	setTraceHeaders(w, c)
	body, cerr := readBody(w, r, snap.Limits.MaxBodyBytes)
	var in invokeRequest
	if cerr == nil {
		cerr = decodeInvoke(body, &in)
	}
	c.Req = &chat.Request{Model: pipeline.FeaturePrefix + r.PathValue("name")}
	if cerr != nil {
		s.reject(w, c, cerr)
		return
	}
	c.Vars, c.User, c.Journey = in.Vars, in.User, in.Journey
	err := s.gw.Serve(r.Context(), c)
	rateHeaders(w, c)
	if err != nil {
		writeChatError(w, err.(*chat.Error))
		return
	}
	out := InvokeResponse{
		Output:      c.Output(),
		TraceID:     c.TraceID.String(),
		RequestID:   c.ID,
		Release:     c.Release.ID,
		ReleaseHash: c.Release.Hash,
		Label:       c.Label,
		Model:       c.Answered.Model.Name,
		Sources:     c.Sources,
	}
	if c.UsageKnown {
		out.Usage = &c.Usage
	}
	if c.Release.Schema != nil {
		out.Output = json.RawMessage(c.Output()) // validated JSON
	}
	if out.Sources == nil {
		out.Sources = []trace.Source{}
	}
	writeJSON(w, http.StatusOK, out)
}

func decodeInvoke(body []byte, in *invokeRequest) *chat.Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil // no variables
	}
	if err := chat.DecodeJSON(body, in); err != nil {
		return err
	}
	if len(in.User) > 256 {
		return chat.BadRequest("user", "user is longer than 256 characters")
	}
	if len(in.Journey) > 256 {
		return chat.BadRequest("journey", "journey is longer than 256 characters")
	}
	return nil
}

// feedbackRequest is the body of POST /v1/feedback.
type feedbackRequest struct {
	TraceID    string   `json:"trace_id"`
	Score      *float64 `json:"score"`
	Thumbs     string   `json:"thumbs"`
	Correction string   `json:"correction"`
	Comment    string   `json:"comment"`
}

const maxFeedbackText = 16 << 10

// feedback serves POST /v1/feedback: a user signal attached to a trace the
// same key (or team) produced.
func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	snap := s.gw.Snapshot()
	k, err := pipeline.Authenticate(snap, bearer(r))
	if err != nil {
		writeChatError(w, err.(*chat.Error))
		return
	}
	body, cerr := readBody(w, r, 64<<10)
	if cerr != nil {
		writeChatError(w, cerr)
		return
	}
	var in feedbackRequest
	if cerr := chat.DecodeJSON(body, &in); cerr != nil {
		writeChatError(w, cerr)
		return
	}
	switch {
	case in.TraceID == "":
		cerr = chat.BadRequest("trace_id", "trace_id is required")
	case in.Score == nil && in.Thumbs == "":
		cerr = chat.BadRequest("score", "send a score (0 to 1) or thumbs (up or down)")
	case in.Score != nil && (*in.Score < 0 || *in.Score > 1):
		cerr = chat.BadRequest("score", "score must be between 0 and 1")
	case in.Thumbs != "" && in.Thumbs != "up" && in.Thumbs != "down":
		cerr = chat.BadRequest("thumbs", "thumbs must be up or down")
	case len(in.Correction) > maxFeedbackText || len(in.Comment) > maxFeedbackText:
		cerr = chat.BadRequest("comment", "correction and comment are limited to %d bytes each", maxFeedbackText)
	}
	if cerr != nil {
		writeChatError(w, cerr)
		return
	}
	// One signal at a time, so the stats know the signal it replaces.
	s.stats.fbMu.Lock()
	defer s.stats.fbMu.Unlock()
	t, ok := s.store.Get(in.TraceID)
	if !ok || !(t.Key == k.Name || (k.Team != "" && t.Team == k.Team)) {
		// Someone else's trace looks the same as no trace.
		writeChatError(w, chat.NotFound("trace_not_found", "no trace %q for this key", in.TraceID))
		return
	}
	fb := trace.Feedback{Time: time.Now().UTC(), Score: in.Score, Thumbs: in.Thumbs, Correction: in.Correction, Comment: in.Comment}
	if err := s.store.Feedback(in.TraceID, fb); err != nil {
		writeChatError(w, chat.NotFound("trace_not_found", "no trace %q: %v", in.TraceID, err))
		return
	}
	s.metrics.Feedback(t.Feature, t.Release, fb)
	s.stats.feedback(t, fb)
	writeJSON(w, http.StatusOK, map[string]any{"trace_id": in.TraceID, "stored": true})
}
