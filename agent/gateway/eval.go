package gateway

import (
	"net/http"
	"regexp"
	"strconv"
	"unicode"
	"unicode/utf8"

	"gantry/agent/httpio"
	"gantry/pipeline"
	"gantry/pipeline/chat"
	"gantry/pipeline/trace"
)

// Headers of evaluation traffic. The pipeline honours them only for keys
// allowed to evaluate (eval: true) and refuses them with 403 for others.
const (
	// HeaderRelease pins the call to a release version of the feature.
	HeaderRelease = "X-Gantry-Release"
	// HeaderEvalRun marks the call as part of an evaluation run.
	HeaderEvalRun = "X-Gantry-Eval-Run"
	// HeaderEvalCase names the run's case.
	HeaderEvalCase = "X-Gantry-Eval-Case"
	// HeaderCost carries an evaluation call's cost in US dollars.
	HeaderCost = "X-Gantry-Cost-Usd"
	// HeaderReleaseID names the release that served an evaluation call.
	HeaderReleaseID = "X-Gantry-Release-Id"
)

// Bounds of the evaluation headers.
const (
	maxEvalCase = 128
	maxRelease  = 1 << 30
)

// runIDRE is the shape of a run id (eval/run's).
var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// evalHeaders reads the evaluation headers into c. A malformed one is a
// 400 that names it; whether the key may send them at all is the
// pipeline's to decide.
func evalHeaders(r *http.Request, c *pipeline.Call) *chat.Error {
	if v := r.Header.Get(HeaderRelease); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRelease {
			return chat.BadRequest("", "%s: %q is not a release version (a number from 1)", HeaderRelease, v)
		}
		c.Pin = n
	}
	if v := r.Header.Get(HeaderEvalRun); v != "" {
		if !runIDRE.MatchString(v) {
			return chat.BadRequest("", "%s: %q is not a run id (letters, digits, '.', '_' and '-', at most 64)", HeaderEvalRun, v)
		}
		c.EvalRun = v
	}
	if v := r.Header.Get(HeaderEvalCase); v != "" {
		if c.EvalRun == "" {
			return chat.BadRequest("", "%s names a case of a run; send %s with it", HeaderEvalCase, HeaderEvalRun)
		}
		if len(v) > maxEvalCase || !printable(v) {
			return chat.BadRequest("", "%s: at most %d printable characters", HeaderEvalCase, maxEvalCase)
		}
		c.EvalCase = v
	}
	if c.Evaluation() {
		// A run judges what the release answers, not what a cache kept,
		// and repeats must each ask the model.
		c.NoCache = true
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// evalResponseHeaders tells an evaluation caller what its call cost and
// which release served it.
func evalResponseHeaders(w http.ResponseWriter, c *pipeline.Call) {
	if !c.Evaluation() {
		return
	}
	h := w.Header()
	h[HeaderCost] = []string{strconv.FormatFloat(c.CostUSD, 'g', -1, 64)}
	if c.Release != nil {
		h[HeaderReleaseID] = []string{c.Release.ID}
	}
}

// evaluationsRequest is the body of POST /v1/evaluations.
type evaluationsRequest struct {
	TraceID     string             `json:"trace_id"`
	Run         string             `json:"run"`
	Evaluations []trace.Evaluation `json:"evaluations"`
}

// evaluations serves POST /v1/evaluations: a run attaches its verdicts on
// a call's answer to the call's trace as gen_ai.evaluation.result events.
// Only a key allowed to evaluate may, on an evaluation trace it made for
// the same run.
func (h *Handlers) evaluations(w http.ResponseWriter, r *http.Request) {
	snap := h.Gateway.Snapshot()
	k, err := pipeline.Authenticate(snap, httpio.Bearer(r))
	if err != nil {
		httpio.ChatError(w, err)
		return
	}
	if !k.Eval {
		httpio.ChatError(w, &chat.Error{Status: http.StatusForbidden, Type: chat.TypePermission, Code: "evaluation_not_allowed",
			Message: "key " + k.Name + " may not run evaluations; it needs eval: true"})
		return
	}
	body, cerr := h.readBody(w, r, 256<<10)
	if cerr != nil {
		httpio.ChatError(w, cerr)
		return
	}
	var in evaluationsRequest
	if cerr := chat.DecodeJSON(body, &in); cerr != nil {
		httpio.ChatError(w, cerr)
		return
	}
	switch {
	case in.TraceID == "":
		cerr = chat.BadRequest("trace_id", "trace_id is required")
	case in.Run == "":
		cerr = chat.BadRequest("run", "run is required: the run the call was made for")
	case len(in.Evaluations) == 0 || len(in.Evaluations) > trace.MaxEvaluations:
		cerr = chat.BadRequest("evaluations", "send 1 to %d evaluations", trace.MaxEvaluations)
	}
	if cerr != nil {
		httpio.ChatError(w, cerr)
		return
	}
	for i := range in.Evaluations {
		if err := in.Evaluations[i].Validate(); err != nil {
			httpio.ChatError(w, chat.BadRequest("evaluations", "evaluations[%d]: %v", i, err))
			return
		}
	}
	t, ok := h.Traces.Get(in.TraceID)
	if !ok || t.Key != k.Name || t.EvalRun != in.Run {
		httpio.ChatError(w, chat.NotFound("trace_not_found", "no trace %q of run %q for this key on this agent", in.TraceID, in.Run))
		return
	}
	if err := h.Traces.Evaluate(in.TraceID, in.Evaluations); err != nil {
		httpio.ChatError(w, chat.BadRequest("evaluations", "%v", err))
		return
	}
	httpio.JSON(w, http.StatusOK, map[string]any{"trace_id": in.TraceID, "stored": len(in.Evaluations)})
}
