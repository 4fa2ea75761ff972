package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"gantry/agent/httpio"
	"gantry/pipeline"
	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
)

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
func (h *Handlers) feedback(w http.ResponseWriter, r *http.Request) {
	snap := h.snapshot(w)
	if snap == nil {
		return
	}
	k, err := pipeline.Authenticate(snap, httpio.Bearer(r))
	if err != nil {
		httpio.ChatError(w, err)
		return
	}
	body, cerr := h.readBody(w, r, 64<<10)
	if cerr != nil {
		httpio.ChatError(w, cerr)
		return
	}
	var in feedbackRequest
	if cerr := chat.DecodeJSON(body, &in); cerr != nil {
		httpio.ChatError(w, cerr)
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
		httpio.ChatError(w, cerr)
		return
	}
	h.fbMu.Lock()
	defer h.fbMu.Unlock()
	// The call is named by its request id, or by its W3C trace id while
	// that names one call this key may see. Someone else's call looks the
	// same as no call.
	visible := func(t *trace.Trace) bool { return t.Key == k.Name || (k.Team != "" && t.Team == k.Team) }
	t, lerr := h.Traces.Lookup(in.TraceID, visible)
	switch {
	case errors.Is(lerr, trace.ErrAmbiguous):
		httpio.ChatError(w, &chat.Error{Status: http.StatusConflict, Type: chat.TypeInvalidRequest, Code: "ambiguous_trace", Param: "trace_id",
			Message: fmt.Sprintf("several of your calls belong to trace %q; send the request id (X-Request-Id) of the one the feedback is about", in.TraceID)})
		return
	case lerr != nil:
		httpio.ChatError(w, chat.NotFound("trace_not_found", "no call %q for this key", in.TraceID))
		return
	}
	fb := trace.Feedback{Time: time.Now().UTC(), Score: in.Score, Thumbs: in.Thumbs, Correction: in.Correction, Comment: in.Comment}
	if err := h.Traces.Feedback(t.ID, fb); err != nil {
		if errors.Is(err, trace.ErrFeedbackLimit) {
			// The call exists; it is full, which is no reason to say it
			// does not.
			httpio.ChatError(w, &chat.Error{Status: http.StatusConflict, Type: chat.TypeInvalidRequest, Code: "feedback_limit", Param: "trace_id",
				Message: fmt.Sprintf("call %q holds all the feedback it can; later feedback is not kept", in.TraceID)})
			return
		}
		httpio.ChatError(w, chat.NotFound("trace_not_found", "no call %q: %v", in.TraceID, err))
		return
	}
	h.Feedback.Feedback(t, fb)
	httpio.JSON(w, http.StatusOK, map[string]any{"trace_id": in.TraceID, "stored": true})
}
