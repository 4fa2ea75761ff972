// Package trace is the record of one call through the gateway, its spans
// and attempts, the agent's bounded local store of recent traces, the
// asynchronous recorder that feeds it, and W3C trace context helpers.
package trace

import (
	"strconv"
	"sync"
	"time"
)

// Trace is what Gantry keeps of one call. It never holds a key or a
// provider credential; prompt and response bodies appear only redacted or
// when the feature turns capture on.
//
// ID is the call's own id (its request id), chosen by the agent: what
// lookups and feedback address. TraceID is the W3C trace the call belongs
// to, which the caller may choose with traceparent and which any number of
// calls share. Records written before the two were apart have the W3C id in
// ID; reading them moves it to TraceID (see Store.Add).
type Trace struct {
	// Pending is work done off the latency path before anyone reads the
	// trace's bodies (scanning and redacting them). Every consumer that
	// reads them calls Complete first; it runs the work once.
	Pending *Pending `json:"-"`

	ID        string `json:"id"`                 // the call's id, unique per call
	TraceID   string `json:"trace_id,omitempty"` // W3C trace id, 32 hex digits
	RequestID string `json:"request_id"`         // the same as ID
	// SpanID is the gateway's span for this call, ParentID the caller's
	// span from its traceparent (empty when it sent none): 16 hex digits.
	SpanID   string    `json:"span_id,omitempty"`
	ParentID string    `json:"parent_id,omitempty"`
	Start    time.Time `json:"start"`
	Duration Millis    `json:"duration_ms"`
	Node     string    `json:"node,omitempty"` // agent that served it

	Entry       string `json:"entry"` // chat or invoke
	Feature     string `json:"feature,omitempty"`
	Release     string `json:"release,omitempty"` // release id, e.g. support-answer@v2
	ReleaseHash string `json:"release_hash,omitempty"`
	Label       string `json:"label,omitempty"` // production or canary
	Journey     string `json:"journey,omitempty"`
	User        string `json:"user,omitempty"` // end user id as the caller sent it
	Key         string `json:"key,omitempty"`  // virtual key name, never the secret
	Team        string `json:"team,omitempty"`
	// KeyFP is the fingerprint of the key the caller presented, known or
	// not (KeyFingerprint), so a refused caller can be found; never the
	// key. ClientAddr and UserAgent say where the call came from.
	KeyFP      string `json:"key_fp,omitempty"`
	ClientAddr string `json:"client_addr,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`

	Requested string `json:"requested_model"` // what the client named
	Route     string `json:"route,omitempty"`
	Model     string `json:"model,omitempty"` // model that answered
	Provider  string `json:"provider,omitempty"`
	Stream    bool   `json:"stream,omitempty"`
	Cached    bool   `json:"cached,omitempty"`
	// Params are the model parameters sent upstream; nil before the
	// prompt stage set them.
	Params *Params `json:"params,omitempty"`
	// ResponseID is the completion id the client got; FinishReasons why
	// each choice ended (stop, length, tool_calls, …).
	ResponseID    string   `json:"response_id,omitempty"`
	FinishReasons []string `json:"finish_reasons,omitempty"`

	Status     string `json:"status"`          // ok or error
	HTTPStatus int    `json:"http_status"`     // what the client got
	Error      string `json:"error,omitempty"` // error message sent to the client
	ErrorCode  string `json:"error_code,omitempty"`

	InputTokens    int     `json:"input_tokens"`
	OutputTokens   int     `json:"output_tokens"`
	CachedTokens   int     `json:"cached_tokens,omitempty"`
	TokensEstimate bool    `json:"tokens_estimated,omitempty"` // counted locally, the provider reported none
	CostUSD        float64 `json:"cost_usd"`
	// PriceSource says where the price came from: config, the price table
	// with its version, self-hosted, or unknown; PriceUnknown marks a call
	// whose cost_usd is 0 because no price is known, not because it was
	// free.
	PriceSource     string `json:"price_source,omitempty"`
	PriceUnknown    bool   `json:"price_unknown,omitempty"`
	ReasoningTokens int    `json:"reasoning_tokens,omitempty"`
	TTFT            Millis `json:"ttft_ms,omitempty"`     // time to first token, streams only
	Upstream        Millis `json:"upstream_ms,omitempty"` // time spent in provider calls

	Attempts   []Attempt         `json:"attempts,omitempty"`
	Fallbacks  int               `json:"fallbacks,omitempty"`
	Spans      []Span            `json:"spans,omitempty"`
	Validation []string          `json:"validation,omitempty"` // validation failures, as paths and reasons
	Policy     []Decision        `json:"policy,omitempty"`
	Sources    []Source          `json:"sources,omitempty"`
	Input      string            `json:"input,omitempty"`  // redacted unless captured
	Output     string            `json:"output,omitempty"` // redacted unless captured
	Feedback   []Feedback        `json:"feedback,omitempty"`
	Attrs      map[string]string `json:"attrs,omitempty"`

	// EvalRun and EvalCase mark evaluation traffic: the run and case the
	// call was made for. Production counters leave such calls out.
	EvalRun  string `json:"eval_run,omitempty"`
	EvalCase string `json:"eval_case,omitempty"`
	// Evaluations are the gen_ai.evaluation.result events the run
	// attached once it judged the answer.
	Evaluations []Evaluation `json:"evaluations,omitempty"`

	// Compression is what the release's context policy did to the input,
	// when it did anything.
	Compression *Compression `json:"compression,omitempty"`
	// Tiers are the tiers a cascade route tried, in order; CostUSD is
	// their sum.
	Tiers []Tier `json:"tiers,omitempty"`
	// SemanticHit says the answer came from the semantic cache, and whose.
	SemanticHit *SemanticHit `json:"semantic_hit,omitempty"`
}

// Compression is what a context policy did to one call's input.
type Compression struct {
	Strategy     string `json:"strategy"`
	TokensBefore int    `json:"tokens_before"`
	TokensAfter  int    `json:"tokens_after"`
	TokensSaved  int    `json:"tokens_saved"`
	// Dropped counts the turns or chunks removed; Summarized the turns a
	// summary replaced.
	Dropped    int `json:"dropped,omitempty"`
	Summarized int `json:"summarized,omitempty"`
	// DroppedChunks names the retrieved chunks left out, lowest score
	// first.
	DroppedChunks []string `json:"dropped_chunks,omitempty"`
	// SummaryCached says the summary was reused; SummaryCostUSD is what
	// writing it cost this call (part of the call's cost).
	SummaryCached  bool    `json:"summary_cached,omitempty"`
	SummaryCostUSD float64 `json:"summary_cost_usd,omitempty"`
}

// Tier is one tier of a cascade: the model that answered it, what it cost,
// and why the cascade went on (empty for the tier that served).
type Tier struct {
	Route        string   `json:"route"`
	Model        string   `json:"model,omitempty"`
	InputTokens  int      `json:"input_tokens"`
	OutputTokens int      `json:"output_tokens"`
	CostUSD      float64  `json:"cost_usd"`
	Escalated    string   `json:"escalated,omitempty"` // invalid, empty, refusal, length, judge or error
	JudgeScore   *float64 `json:"judge_score,omitempty"`
	JudgeCostUSD float64  `json:"judge_cost_usd,omitempty"`
}

// SemanticHit is a semantic cache hit: how close the request was to the
// one whose answer was served, and that call's trace.
type SemanticHit struct {
	Similarity float64 `json:"similarity"`
	Source     string  `json:"source_trace"`
}

// BaseCostUSD is what the call would have cost without escalation: the
// first tier's cost for a cascade, the cost otherwise.
func (t *Trace) BaseCostUSD() float64 {
	if len(t.Tiers) == 0 {
		return t.CostUSD
	}
	base := t.Tiers[0].CostUSD + t.Tiers[0].JudgeCostUSD
	if c := t.Compression; c != nil {
		base += c.SummaryCostUSD
	}
	return base
}

// Validated reports whether the client got an answer that passed the
// release's validation: a streamed answer is recorded even when invalid.
func (t *Trace) Validated() bool {
	return t.Status == "ok" && (!t.Stream || len(t.Validation) == 0)
}

// Params are the sampling parameters of a call, as exporters report them.
type Params struct {
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
}

// Evaluation is a gen_ai.evaluation.result event of the OpenTelemetry
// GenAI conventions: one assertion's verdict on the call's answer. The
// JSON names of its attributes are the conventions' own.
type Evaluation struct {
	Time time.Time `json:"time"`
	// Name is the assertion's type, such as icontains or llm-rubric.
	Name string `json:"gen_ai.evaluation.name"`
	// ScoreValue is the score in 0..1, for kinds that grade.
	ScoreValue *float64 `json:"gen_ai.evaluation.score.value,omitempty"`
	// ScoreLabel is pass or fail; error when the assertion could not be
	// evaluated.
	ScoreLabel  string `json:"gen_ai.evaluation.score.label"`
	Explanation string `json:"gen_ai.evaluation.explanation,omitempty"`
	// ErrorType says why an assertion could not be evaluated.
	ErrorType string `json:"error.type,omitempty"`
}

// ErrorKind is what went wrong for the client: its error code, or
// http_STATUS for an error without one; "" for a call that succeeded.
func (t *Trace) ErrorKind() string {
	switch {
	case t.Status == "ok" || t.Status == "":
		return ""
	case t.ErrorCode != "":
		return t.ErrorCode
	}
	return "http_" + strconv.Itoa(t.HTTPStatus)
}

// LabelPinned is the label of a call an evaluation pinned to a release.
const LabelPinned = "pinned"

// Evaluation reports whether the call was evaluation traffic: pinned to a
// release or made for an evaluation run. Production counters and
// per-release metrics leave such calls out.
func (t *Trace) Evaluation() bool { return t.EvalRun != "" || t.Label == LabelPinned }

// EvaluationEvent is the name of the event an Evaluation is.
const EvaluationEvent = "gen_ai.evaluation.result"

// Score labels of an Evaluation.
const (
	EvalPass  = "pass"
	EvalFail  = "fail"
	EvalError = "error"
)

// Attempt is one provider call.
type Attempt struct {
	Model    string `json:"model"`
	Provider string `json:"provider"`
	Offset   Millis `json:"offset_ms"` // start, after the trace's start
	Duration Millis `json:"duration_ms"`
	Status   string `json:"status"`          // ok, or the failure kind
	Error    string `json:"error,omitempty"` // upstream's error, shortened
	Backoff  Millis `json:"backoff_ms,omitempty"`
}

// Span is one pipeline stage.
type Span struct {
	Name     string `json:"name"`
	Offset   Millis `json:"offset_ms"` // start, after the trace's start
	Duration Millis `json:"duration_ms"`
	Error    string `json:"error,omitempty"`
}

// Decision is one policy outcome: which rule, where in which field, and the
// action taken. It never holds the matched value.
type Decision struct {
	Rule   string  `json:"rule"`
	Field  string  `json:"field,omitempty"`
	Start  int     `json:"start,omitempty"`
	End    int     `json:"end,omitempty"`
	Action string  `json:"action"`
	Score  float64 `json:"score,omitempty"`
}

// Source is a retrieved chunk that went into the prompt.
type Source struct {
	Document string  `json:"document"`
	Chunk    string  `json:"chunk"`
	Score    float64 `json:"score"`
	Index    string  `json:"index,omitempty"`
}

// Feedback is a user signal attached to a trace.
type Feedback struct {
	Time       time.Time `json:"time"`
	Score      *float64  `json:"score,omitempty"`  // 0..1
	Thumbs     string    `json:"thumbs,omitempty"` // up or down
	Correction string    `json:"correction,omitempty"`
	Comment    string    `json:"comment,omitempty"`
}

// Millis is a duration in milliseconds, fractional, as JSON numbers.
type Millis float64

// Ms converts a duration.
func Ms(d time.Duration) Millis { return Millis(float64(d) / float64(time.Millisecond)) }

// D converts back.
func (m Millis) D() time.Duration { return time.Duration(float64(m) * float64(time.Millisecond)) }

// Summary is the short form the live feed and trace lists carry.
type Summary struct {
	ID       string    `json:"id"`                 // the call's id
	TraceID  string    `json:"trace_id,omitempty"` // the W3C trace it belongs to
	Start    time.Time `json:"start"`
	Duration Millis    `json:"duration_ms"`
	Node     string    `json:"node,omitempty"`
	Feature  string    `json:"feature,omitempty"`
	Release  string    `json:"release,omitempty"`
	Model    string    `json:"model,omitempty"`
	Team     string    `json:"team,omitempty"`
	Key      string    `json:"key,omitempty"` // virtual key name
	User     string    `json:"user,omitempty"`
	KeyFP    string    `json:"key_fp,omitempty"`
	Client   string    `json:"client_addr,omitempty"`
	Provider string    `json:"provider,omitempty"`
	// Failed is "model:kind" for each failed attempt, space-separated,
	// so a list can find a call by a model or a failure it did not end
	// with (a fallback answered, or the client got another code).
	Failed       string  `json:"failed,omitempty"`
	Status       string  `json:"status"`
	HTTPStatus   int     `json:"http_status"`
	ErrorCode    string  `json:"error_code,omitempty"`
	InputTokens  int     `json:"input_tokens"`
	OutputTokens int     `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
	Validation   int     `json:"validation_failures,omitempty"`
	Feedback     string  `json:"feedback,omitempty"` // up, down, or a score
	Cached       bool    `json:"cached,omitempty"`
	// PriceUnknown: CostUSD is 0 because the model has no known price.
	PriceUnknown bool `json:"price_unknown,omitempty"`
	// EvalRun names the evaluation run the call was made for, if any.
	EvalRun string `json:"eval_run,omitempty"`
}

// Pending is a trace's work left for later.
type Pending struct {
	once sync.Once
	work func(*Trace)
}

// Later returns work for Complete to run.
func Later(work func(*Trace)) *Pending { return &Pending{work: work} }

// Complete runs the trace's pending work, once; a concurrent caller waits
// for it to finish.
func (t *Trace) Complete() {
	if p := t.Pending; p != nil {
		p.once.Do(func() { p.work(t) })
	}
}
