// Package gateway is the agent's data plane over HTTP: the OpenAI-compatible
// chat, Responses and embeddings APIs, Anthropic's Messages API, the
// feature API and feedback. Each handler builds a pipeline
// Call from the request, runs it through the gateway, and writes out what
// the pipeline left in it; nothing here decides policy.
package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"gantry/agent/httpio"
	"gantry/pipeline"
	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
)

// Deps is what the gateway's handlers use; the agent wires it.
type Deps struct {
	Gateway *pipeline.Gateway
	// Traces holds the traces feedback refers to.
	Traces *trace.Store
	// Record receives the traces of requests refused before the pipeline
	// ran.
	Record   func(*trace.Trace)
	Feedback FeedbackCounter
	// NotServing says why Gateway has no snapshot yet.
	NotServing func() string
	// BodyTimeout bounds how long a request body may take to arrive, so
	// a client sending a byte a second cannot hold a connection and a
	// goroutine for ever [DefaultBodyTimeout].
	BodyTimeout time.Duration
}

// DefaultBodyTimeout is Deps.BodyTimeout's default.
const DefaultBodyTimeout = 30 * time.Second

// Handlers serve the gateway's endpoints.
type Handlers struct {
	Deps
	// fbMu makes reading a trace's latest signal and storing the next one
	// one step, so two signals at once on a trace cannot both be counted
	// as replacing none. Feedback is rare and written to disk one at a time.
	fbMu sync.Mutex
}

// FeedbackCounter hears each stored signal with the trace as it was before
// the signal, so counts can move a trace from its old signal to the new.
type FeedbackCounter interface {
	Feedback(before *trace.Trace, fb trace.Feedback)
}

// New returns the handlers over d.
func New(d Deps) *Handlers {
	if d.BodyTimeout <= 0 {
		d.BodyTimeout = DefaultBodyTimeout
	}
	return &Handlers{Deps: d}
}

// snapshot is the configuration a call is served from, or nil after
// answering 503: an agent that does not know the cluster's current state
// serves nothing rather than something it cannot vouch for.
func (h *Handlers) snapshot(w http.ResponseWriter) *pipeline.Snapshot {
	return h.snapshotOr(w, httpio.ChatError)
}

// errorWriter writes a gateway error in one client API's shape.
type errorWriter func(http.ResponseWriter, *chat.Error)

// snapshotOr is snapshot with the 503 written by fail.
func (h *Handlers) snapshotOr(w http.ResponseWriter, fail errorWriter) *pipeline.Snapshot {
	if snap := h.Gateway.Snapshot(); snap != nil {
		return snap
	}
	fail(w, &chat.Error{Status: http.StatusServiceUnavailable, Type: chat.TypeServer, Code: "not_serving",
		Message: "this agent is not serving yet: " + h.NotServing(), RetryAfter: time.Second})
	return nil
}

// Route mounts the gateway's endpoints on mux.
func (h *Handlers) Route(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/chat/completions", h.chatCompletions)
	mux.HandleFunc("POST /v1/messages", h.messages)
	mux.HandleFunc("POST /v1/messages/count_tokens", h.countTokens)
	mux.HandleFunc("POST /v1/responses", h.responses)
	mux.HandleFunc("POST /v1/embeddings", h.embeddings)
	mux.HandleFunc("GET /v1/models", h.models)
	mux.HandleFunc("POST /v1/features/{name}/invoke", h.invoke)
	mux.HandleFunc("POST /v1/feedback", h.feedback)
	mux.HandleFunc("POST /v1/evaluations", h.evaluations)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		errorsFor(r)(w, chat.NotFound("unknown_url", "%s %s is not an endpoint of this gateway", r.Method, r.URL.Path))
	})
}

// maxJourney bounds the X-Gantry-Journey header, as invoke bounds its
// journey field.
const maxJourney = 256

// readBody reads a request body within the snapshot's limit and the body
// timeout. Too large is a 413, a compressed body a 415, a late one a 408;
// anything else unreadable a 400.
func (h *Handlers) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *chat.Error) {
	if e := chat.CheckContentEncoding(r.Header.Get("Content-Encoding")); e != nil {
		return nil, e
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(h.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		// The connection is read again only to notice the client leaving.
		rc.SetReadDeadline(time.Time{})
	} else {
		httpio.EndBody(w)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, &chat.Error{Status: http.StatusRequestTimeout, Type: chat.TypeInvalidRequest, Code: "body_timeout",
				Message: fmt.Sprintf("the request body did not arrive within %s", h.BodyTimeout)}
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &chat.Error{Status: http.StatusRequestEntityTooLarge, Type: chat.TypeInvalidRequest, Code: "request_too_large",
				Message: "the request body is larger than the limit of " + byteSize(limit)}
		}
		return nil, chat.BadRequest("", "the request body could not be read: %v", err)
	}
	return body, nil
}

// newCall starts a call record from the HTTP request: ids, trace context,
// the presented key and where the call came from. The client address is
// the connection's peer: a forwarded-for header is the caller's to choose. Header names here are written in canonical form,
// which Header.Get then uses without converting.
func newCall(r *http.Request, entry string) *pipeline.Call {
	c := &pipeline.Call{
		ID:       newID(),
		Received: time.Now(),
		Entry:    entry,
		Secret:   httpio.Bearer(r),
		Client:   r.RemoteAddr,
		Agent:    r.Header.Get("User-Agent"),
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

// rateHeaders reports the call's rate limits in OpenAI's x-ratelimit-*
// headers.
func rateHeaders(w http.ResponseWriter, c *pipeline.Call) {
	if c.RateStatus != nil {
		c.RateStatus.Header(w.Header())
	}
}

// reject records a request refused before the pipeline ran, so malformed
// traffic is visible in traces and metrics too.
func (h *Handlers) reject(w http.ResponseWriter, c *pipeline.Call, e *chat.Error) {
	h.rejectWith(w, c, e, httpio.ChatError)
}

// rejectWith is reject with the error written by fail.
func (h *Handlers) rejectWith(w http.ResponseWriter, c *pipeline.Call, e *chat.Error, fail errorWriter) {
	c.Secret = ""
	c.Err = e
	h.Record(h.Gateway.Trace(c))
	fail(w, e)
}

// newID is a request id: 16 random bytes, hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
