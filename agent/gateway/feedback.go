package gateway

import (
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
		httpio.ChatError(w, err.(*chat.Error))
		return
	}
	body, cerr := readBody(w, r, 64<<10)
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
	t, ok := h.traces.Get(in.TraceID)
	if !ok || !(t.Key == k.Name || (k.Team != "" && t.Team == k.Team)) {
		// Someone else's trace looks the same as no trace.
		httpio.ChatError(w, chat.NotFound("trace_not_found", "no trace %q for this key", in.TraceID))
		return
	}
	fb := trace.Feedback{Time: time.Now().UTC(), Score: in.Score, Thumbs: in.Thumbs, Correction: in.Correction, Comment: in.Comment}
	if err := h.traces.Feedback(in.TraceID, fb); err != nil {
		httpio.ChatError(w, chat.NotFound("trace_not_found", "no trace %q: %v", in.TraceID, err))
		return
	}
	h.counter.Feedback(t, fb)
	httpio.JSON(w, http.StatusOK, map[string]any{"trace_id": in.TraceID, "stored": true})
}
