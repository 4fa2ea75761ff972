// Package pipeline is Gantry's request path: one Call record carried through
// small stages (authenticate, resolve, policy, context, prompt, route and
// provider call, validate, record). It knows nothing of Raft or of HTTP
// servers: the agent builds a Call from a request and writes out what the
// pipeline leaves in it.
package pipeline

import (
	"strings"
	"time"

	"gantry/config"
	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/limit"
	"gantry/pipeline/trace"
	"gantry/pipeline/validate"
)

// Entry points into the pipeline.
const (
	EntryChat   = "chat"
	EntryInvoke = "invoke"
	// Entries of the other client APIs, which run the same stages.
	EntryMessages   = "messages"   // Anthropic's Messages API
	EntryResponses  = "responses"  // OpenAI's Responses API
	EntryEmbeddings = "embeddings" // POST /v1/embeddings; see NewEmbeddingCall
)

// Call is the record of one request as it moves through the stages. Stages
// read what earlier stages wrote and add their own part; the record stage
// turns it into a trace.
type Call struct {
	// Set by the caller of Serve.
	ID       string        // request id, unique per call
	TraceID  trace.TraceID // W3C trace id
	ParentID trace.SpanID  // caller's span id from traceparent, if any
	SpanID   trace.SpanID  // the gateway's span, as the response's traceparent names it
	Received time.Time
	Entry    string
	Secret   string // the presented key; cleared by authenticate
	// Client is the caller's network address and Agent its User-Agent,
	// so a refused call can be traced to its caller.
	Client string
	Agent  string
	// KeyFP is the fingerprint of the presented key (config.KeyFingerprint),
	// set by authenticate whether or not the key is valid.
	KeyFP   string
	Req     *chat.Request
	Vars    map[string]any // feature variables (invoke, or chat metadata)
	User    string
	Journey string
	// Emit, when set, streams chunks to the client. It is called from the
	// goroutine running Serve.
	Emit func(*chat.Chunk) error
	// NoCache bypasses the response cache for this call.
	NoCache bool
	// Embed, when set, makes this an embeddings call: the route's
	// provider is asked for vectors, which land in Embedding.
	Embed     *chat.EmbeddingRequest
	Embedding *chat.EmbeddingResponse
	// Evaluation traffic, honoured only for keys allowed to evaluate
	// (config.Key.Eval): Pin serves that release version of the feature
	// instead of the one its labels assign, and EvalRun and EvalCase name
	// the run and case the call belongs to. Such calls stay out of the
	// production counters; see Evaluation.
	Pin      int
	EvalRun  string
	EvalCase string

	// Snap is the configuration the call is served from: set by the
	// caller that decoded the request against it, else by Serve.
	Snap *Snapshot

	// Filled by the stages.
	Key         *config.Key
	Feature     *Feature
	Release     *Release
	Label       string // production or canary
	Route       *Route
	Messages    []chat.Message // what goes upstream
	InputTokens int            // counted before the call
	Resp        *chat.Response // the answer, assembled for streams
	Usage       chat.Usage
	UsageKnown  bool // the provider reported usage
	Answered    *Target
	Outcomes    []Outcome
	Streamed    bool // output reached the client
	TTFT        time.Duration
	Upstream    time.Duration
	Validation  []string
	Decisions   []trace.Decision // policy outcomes
	RateStatus  *limit.Status    // for the x-ratelimit-* headers
	Cached      bool             // answered from the response cache
	Context     string           // retrieved context block for the prompt
	Sources     []trace.Source   // retrieved chunks that went into the prompt
	Spans       []Span
	Err         *chat.Error // what the client got, nil for an answer
	Spent       Spent       // tokens the call used, once Serve returns
	CostUSD     float64     // what the call cost, once Serve returns
	// ExtraCostUSD is what the call spent besides the answer it returns:
	// cascade tiers it escalated past, judges, summaries, embeddings.
	ExtraCostUSD float64
	Compression  *trace.Compression // what the context policy did
	Tiers        []trace.Tier       // the cascade's tiers, as tried
	Semantic     *trace.SemanticHit // answered from the semantic cache

	permit        *limit.Permit      // rate-limit permit, returned in end
	callerSchema  *validate.Schema   // the caller's response_format, compiled in resolve
	held          bool               // a budget hold to settle or release in end
	cacheKey      *cache.Key         // the response cache's key, computed once at lookup
	canary        string             // leak canary planted in the system message
	reformat      func([]int) string // writes the context block from some sources
	tier          *Route             // the cascade tier being tried
	semantic      *semanticEntry     // where to keep the answer in the semantic cache
	repairCostUSD float64            // what the invalid answers a repair replaced cost
}

// Spent is what an answered call used: the provider's count, or the
// gateway's estimate when the provider reported none.
type Spent struct {
	InputTokens, OutputTokens, CachedTokens, ReasoningTokens int
	Estimated                                                bool
}

// Span is a stage's timing.
type Span struct {
	Name  string
	Start time.Time
	Dur   time.Duration
	Err   error
}

// Output is the text of the first choice, or of its tool calls' arguments
// when it has no text.
func (c *Call) Output() string {
	if c.Resp == nil || len(c.Resp.Choices) == 0 {
		return ""
	}
	m := c.Resp.Choices[0].Message
	if m.Content.Text != "" || len(m.ToolCalls) == 0 {
		return m.Content.Text
	}
	var b strings.Builder
	for _, tc := range m.ToolCalls {
		b.WriteString(tc.Function.Arguments)
	}
	return b.String()
}

// countOutput counts the output tokens of every choice, for an upstream
// that reported no usage: with n choices the output is paid n times.
func (c *Call) countOutput(count func(string) int) int {
	if c.Resp == nil {
		return 0
	}
	n := 0
	for _, ch := range c.Resp.Choices {
		m := ch.Message
		n += count(m.Content.Text)
		for _, tc := range m.ToolCalls {
			n += count(tc.Function.Arguments)
		}
	}
	return n
}

// LabelPinned is the label of a call pinned to a release: no label chose
// it.
const LabelPinned = trace.LabelPinned

// Evaluation reports whether the call is evaluation traffic: pinned to a
// release or marked as part of a run. Production counters, canary
// analysis and per-release metrics leave such calls out.
func (c *Call) Evaluation() bool { return c.Pin != 0 || c.EvalRun != "" }
