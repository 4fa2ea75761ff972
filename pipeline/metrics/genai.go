package metrics

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/pipeline/trace"
)

// The OpenTelemetry GenAI semantic conventions name these metrics and
// attributes; the Prometheus series below are their names under the
// OpenTelemetry-to-Prometheus rules (dots become underscores, the unit
// "s" becomes a "_seconds" suffix, "{token}" adds nothing), so a query
// reads the same whether the figures came by scrape or through a
// collector. OTLP exporters use the dotted names.
const (
	OpDurationName   = "gen_ai.client.operation.duration"
	TokenUsageName   = "gen_ai.client.token.usage"
	TTFTName         = "gen_ai.server.time_to_first_token"
	TimePerTokenName = "gen_ai.server.time_per_output_token"

	AttrOperation     = "gen_ai.operation.name"
	AttrProvider      = "gen_ai.provider.name"
	AttrRequestModel  = "gen_ai.request.model"
	AttrResponseModel = "gen_ai.response.model"
	AttrTokenType     = "gen_ai.token.type"
	AttrErrorType     = "error.type"

	// OperationChat is the operation of every call through the gateway:
	// both entries make chat completions.
	OperationChat = "chat"
)

// Bucket layouts the GenAI conventions advise for each histogram.
var (
	GenAIDurationBuckets     = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	GenAITokenBuckets        = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	GenAITTFTBuckets         = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	GenAITimePerTokenBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5}
)

// PromName maps an OpenTelemetry attribute name to its Prometheus label.
func PromName(attr string) string {
	b := []byte(attr)
	for i, c := range b {
		if c == '.' {
			b[i] = '_'
		}
	}
	return string(b)
}

// GenAI is one call described by the GenAI conventions' metric
// attributes. An empty field is an attribute the call does not have; as a
// Prometheus label it is the empty value, which Prometheus treats as
// absent, as the OpenTelemetry exporter would.
type GenAI struct {
	Operation     string
	Provider      string
	RequestModel  string
	ResponseModel string
	ErrorType     string // empty when the call succeeded

	Duration      float64 // seconds, the whole call as the gateway saw it
	InputTokens   int     // as the trace counts them; 0 for a cached answer, which used none
	OutputTokens  int
	TTFT          float64 // seconds; streams only, else 0
	TimePerOutput float64 // seconds per token after the first; streams only, else 0
}

// GenAIOf describes a finished call for the GenAI metrics. ok is false
// for a call that named nothing the gateway serves (refused before a
// route was resolved): it was not a model operation, and its requested
// name, which the caller chose freely, must not become a label. Values
// are bounded like every label here.
func GenAIOf(t *trace.Trace) (g GenAI, ok bool) {
	if t.Route == "" {
		return g, false
	}
	g = GenAI{
		Operation:     OperationChat,
		Provider:      t.Provider,
		RequestModel:  label(t.Requested),
		ResponseModel: t.Model,
		Duration:      t.Duration.D().Seconds(),
	}
	if g.Provider == "" && len(t.Attempts) > 0 {
		g.Provider = t.Attempts[len(t.Attempts)-1].Provider
	}
	// The provider is a required attribute; a call refused before any
	// attempt (a budget, a policy) had none.
	g.Provider = label(g.Provider)
	if g.ResponseModel != "" {
		g.ResponseModel = label(g.ResponseModel)
	}
	if t.Status != "ok" {
		g.ErrorType = t.ErrorCode
		if g.ErrorType == "" {
			g.ErrorType = "http_" + strconv.Itoa(t.HTTPStatus)
		}
		g.ErrorType = label(g.ErrorType)
	}
	if t.Model != "" && !t.Cached {
		g.InputTokens, g.OutputTokens = t.InputTokens, t.OutputTokens
	}
	if t.Stream && t.TTFT > 0 {
		g.TTFT = t.TTFT.D().Seconds()
		if t.Status == "ok" && t.OutputTokens > 1 {
			if end := answerEnd(t); end > t.TTFT {
				g.TimePerOutput = (end - t.TTFT).D().Seconds() / float64(t.OutputTokens-1)
			}
		}
	}
	return g, true
}

// answerEnd is when the attempt that answered ended, after the trace's
// start: the last attempt that succeeded.
func answerEnd(t *trace.Trace) trace.Millis {
	for i := len(t.Attempts) - 1; i >= 0; i-- {
		if a := &t.Attempts[i]; a.Status == "ok" {
			return a.Offset + a.Duration
		}
	}
	return 0
}

// genaiKey selects the GenAI series one call touches.
type genaiKey struct{ op, provider, reqModel, respModel, errType string }

var overflowGenAI = genaiKey{OperationChat, Overflow, Overflow, Overflow, ""}

// genaiSeries are the series one genaiKey touches. The duration exists
// for every key; the others are made on first use, so a key never shows
// an empty histogram it has no values for (a failed call has no tokens, a
// plain call no time to first token). Two calls may both make one: the
// vec returns the same series to both.
type genaiSeries struct {
	v              *genaiVecs
	k              genaiKey
	duration       prometheus.Observer
	tokens         atomic.Pointer[[2]prometheus.Observer] // input, output
	ttft, perToken atomic.Pointer[prometheus.Observer]
}

func (s *genaiSeries) tokenObservers() *[2]prometheus.Observer {
	if o := s.tokens.Load(); o != nil {
		return o
	}
	k := s.k
	o := &[2]prometheus.Observer{
		s.v.tokens.WithLabelValues(k.op, k.provider, k.reqModel, k.respModel, "input"),
		s.v.tokens.WithLabelValues(k.op, k.provider, k.reqModel, k.respModel, "output"),
	}
	s.tokens.Store(o)
	return o
}

func lazyObserver(p *atomic.Pointer[prometheus.Observer], vec *prometheus.HistogramVec, k genaiKey) prometheus.Observer {
	if o := p.Load(); o != nil {
		return *o
	}
	o := vec.WithLabelValues(k.op, k.provider, k.reqModel, k.respModel)
	p.Store(&o)
	return o
}

type genaiVecs struct {
	duration, tokens, ttft, perToken *prometheus.HistogramVec
}

func newGenAIVecs(reg prometheus.Registerer) *genaiVecs {
	l := func(attrs ...string) []string {
		out := make([]string, len(attrs))
		for i, a := range attrs {
			out[i] = PromName(a)
		}
		return out
	}
	base := []string{AttrOperation, AttrProvider, AttrRequestModel, AttrResponseModel}
	v := &genaiVecs{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_client_operation_duration_seconds",
			Help: "GenAI operation duration: each call through the gateway, with error_type when it failed.", Buckets: GenAIDurationBuckets},
			l(append(base, AttrErrorType)...)),
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_client_token_usage",
			Help: "Tokens used per call as the provider counted them, by gen_ai_token_type (input, output).", Buckets: GenAITokenBuckets},
			l(append(base, AttrTokenType)...)),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_server_time_to_first_token_seconds",
			Help: "Time from the call's arrival to the first streamed token.", Buckets: GenAITTFTBuckets}, l(base...)),
		perToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_server_time_per_output_token_seconds",
			Help: "Time per output token after the first, for successful streams.", Buckets: GenAITimePerTokenBuckets}, l(base...)),
	}
	reg.MustRegister(v.duration, v.tokens, v.ttft, v.perToken)
	return v
}

func (v *genaiVecs) series(k genaiKey) *genaiSeries {
	return &genaiSeries{v: v, k: k, duration: v.duration.WithLabelValues(k.op, k.provider, k.reqModel, k.respModel, k.errType)}
}

// ObserveGenAI records one call in the GenAI series.
func (m *Metrics) ObserveGenAI(g *GenAI) {
	s := m.genai.get(genaiKey{g.Operation, g.Provider, g.RequestModel, g.ResponseModel, g.ErrorType})
	s.duration.Observe(g.Duration)
	if g.InputTokens > 0 || g.OutputTokens > 0 {
		tok := s.tokenObservers()
		if g.InputTokens > 0 {
			tok[0].Observe(float64(g.InputTokens))
		}
		if g.OutputTokens > 0 {
			tok[1].Observe(float64(g.OutputTokens))
		}
	}
	if g.TTFT > 0 {
		lazyObserver(&s.ttft, s.v.ttft, s.k).Observe(g.TTFT)
	}
	if g.TimePerOutput > 0 {
		lazyObserver(&s.perToken, s.v.perToken, s.k).Observe(g.TimePerOutput)
	}
}
