// Package metrics is Gantry's Prometheus instrumentation: one non-global
// registry per agent and typed methods the request path calls, so label
// names and their cardinality are decided here and not at call sites.
//
// Labels only ever carry configured names (feature, release, model,
// provider, target) and small fixed vocabularies (status class, reason,
// direction, outcome), never user, key or trace ids. The gen_ai_* series
// follow the OpenTelemetry GenAI semantic conventions under their
// Prometheus names; deploy/METRICS.md lists every series and its bounds. As a last guard each
// metric keeps at most MaxSeries label combinations; further ones are
// counted under the value "other".
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gantry/pipeline/trace"
)

const namespace = "gantry"

// MaxSeries bounds the label combinations of each metric family.
const MaxSeries = 2000

// maxLabel bounds one label value.
const maxLabel = 96

// Overflow is the label value that stands in once a family is full, and
// None the value of an empty label.
const (
	Overflow = "other"
	None     = "none"
)

// Bucket layouts. Model calls take from milliseconds (a cache hit) to
// minutes (a long generation); the gateway's own overhead should sit in
// microseconds to a few milliseconds.
var (
	LatencyBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}
	TTFTBuckets     = []float64{.01, .025, .05, .1, .25, .5, .75, 1, 1.5, 2, 3, 5, 10, 30}
	OverheadBuckets = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3}
)

// BreakerState is a circuit breaker's state as the gauge reports it.
type BreakerState int

const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// Call is what the request path reports about one finished call.
type Call struct {
	Feature  string
	Release  string
	Model    string // the model that answered, or was last tried
	Provider string

	HTTPStatus  int    // what the client got
	ErrorReason string // a short code when the call failed, e.g. rate_limited

	Total    time.Duration // whole call as the gateway saw it
	Upstream time.Duration // time spent in provider calls
	Backoff  time.Duration // time waited between retries
	TTFT     time.Duration // time to first token, streams only

	InputTokens  int
	OutputTokens int
	CostUSD      float64

	Retries   int // attempts beyond the first on the same target
	Fallbacks int // moves to another target
}

// Metrics holds Gantry's collectors on its own registry.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	upstream   *prometheus.HistogramVec
	overhead   *prometheus.HistogramVec
	ttft       *prometheus.HistogramVec
	tokens     *prometheus.CounterVec
	cost       *prometheus.CounterVec
	errors     *prometheus.CounterVec
	fallbacks  *prometheus.CounterVec
	retries    *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	breaker    *prometheus.GaugeVec
	validation *prometheus.CounterVec
	cache      *prometheus.CounterVec
	feedback   *prometheus.CounterVec
	evalCalls  *prometheus.CounterVec
	evalCost   *prometheus.CounterVec
	dropped    prometheus.Counter
	inFlight   prometheus.Gauge
	build      *prometheus.GaugeVec
	gv         *genaiVecs

	calls    *seriesCache[callKey, *callSeries]
	errs     *seriesCache[[2]string, prometheus.Counter]
	atts     *seriesCache[[3]string, prometheus.Counter]
	valid    *seriesCache[[3]string, prometheus.Counter]
	caches   *seriesCache[[2]string, prometheus.Counter]
	fbs      *seriesCache[[3]string, prometheus.Counter]
	evals    *seriesCache[[3]string, prometheus.Counter]
	evalCs   *seriesCache[string, prometheus.Counter]
	breakers *seriesCache[string, prometheus.Gauge]
	genai    *seriesCache[genaiKey, *genaiSeries]
	costs    *costVecs
}

// New returns a Metrics on a fresh registry that also carries the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(v)
		return v
	}
	m.requests = counter("requests_total", "Calls served, by feature, release, model and HTTP status class.", "feature", "release", "model", "code")
	m.duration = histogram("request_duration_seconds", "Whole call latency as the gateway saw it.", LatencyBuckets, "feature", "model")
	m.upstream = histogram("upstream_duration_seconds", "Time spent in provider calls per call.", LatencyBuckets, "provider", "model")
	m.overhead = histogram("gateway_overhead_seconds", "Call latency not spent upstream: the gateway's own cost.", OverheadBuckets, "feature")
	m.ttft = histogram("time_to_first_token_seconds", "Time to the first streamed token.", TTFTBuckets, "model")
	m.tokens = counter("tokens_total", "Tokens by direction (input, output) and model.", "direction", "model")
	m.cost = counter("cost_usd_total", "Spend in US dollars by feature and model.", "feature", "model")
	m.errors = counter("errors_total", "Failed calls by feature and reason.", "feature", "reason")
	m.fallbacks = counter("fallbacks_total", "Moves to a fallback target.", "feature")
	m.retries = counter("retries_total", "Retried provider attempts.", "feature")
	m.attempts = counter("upstream_attempts_total", "Provider attempts by outcome (ok or failure kind).", "provider", "model", "outcome")
	m.validation = counter("validation_failures_total", "Outputs that failed validation, by reason.", "feature", "release", "reason")
	m.feedback = counter("feedback_total", "User feedback by feature, release and signal (up, down, score).", "feature", "release", "signal")
	m.evalCalls = counter("eval_calls_total", "Evaluation calls (pinned to a release or made for a run), kept out of the production series above, by feature, release and status (ok, error).", "feature", "release", "status")
	m.evalCost = counter("eval_cost_usd_total", "Spend of evaluation calls in US dollars, by feature.", "feature")
	m.cache = counter("cache_requests_total", "Response cache lookups by result (hit, miss).", "feature", "result")
	m.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "circuit_breaker_state",
		Help: "Circuit breaker state per target: 0 closed, 1 half-open, 2 open."}, []string{"target"})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "traces_dropped_total",
		Help: "Traces dropped because the recording queue was full."})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "requests_in_flight",
		Help: "Calls the gateway is serving now, streams included."})
	m.build = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "Always 1; its labels name the running build: version, VCS revision and Go version."}, []string{"version", "revision", "goversion"})
	m.reg.MustRegister(m.breaker, m.dropped, m.inFlight, m.build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.calls = newSeriesCache(overflowCall, m.newCallSeries)
	m.errs = newSeriesCache([2]string{Overflow, Overflow}, func(k [2]string) prometheus.Counter {
		return m.errors.WithLabelValues(k[0], k[1])
	})
	m.atts = newSeriesCache([3]string{Overflow, Overflow, Overflow}, func(k [3]string) prometheus.Counter {
		return m.attempts.WithLabelValues(k[0], k[1], k[2])
	})
	m.fbs = newSeriesCache([3]string{Overflow, Overflow, Overflow}, func(k [3]string) prometheus.Counter {
		return m.feedback.WithLabelValues(k[0], k[1], k[2])
	})
	m.valid = newSeriesCache([3]string{Overflow, Overflow, Overflow}, func(k [3]string) prometheus.Counter {
		return m.validation.WithLabelValues(k[0], k[1], k[2])
	})
	m.caches = newSeriesCache([2]string{Overflow, Overflow}, func(k [2]string) prometheus.Counter {
		return m.cache.WithLabelValues(k[0], k[1])
	})
	m.evals = newSeriesCache([3]string{Overflow, Overflow, Overflow}, func(k [3]string) prometheus.Counter {
		return m.evalCalls.WithLabelValues(k[0], k[1], k[2])
	})
	m.evalCs = newSeriesCache(Overflow, func(k string) prometheus.Counter {
		return m.evalCost.WithLabelValues(k)
	})
	m.breakers = newSeriesCache(Overflow, func(k string) prometheus.Gauge {
		return m.breaker.WithLabelValues(k)
	})
	m.gv = newGenAIVecs(m.reg)
	m.genai = newSeriesCache(overflowGenAI, m.gv.series)
	m.costs = newCostVecs(m.reg)
	m.SetBuildInfo("")
	return m
}

// Registry is the registry behind Handler, for collectors added elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the exposition for a /metrics endpoint.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// callKey selects the series one call touches.
type callKey struct {
	feature, release, model, provider string
	class                             int8
}

var overflowCall = callKey{Overflow, Overflow, Overflow, Overflow, 0}

// callSeries is every series one callKey touches, resolved once so a call
// costs one map lookup and a handful of atomic adds.
type callSeries struct {
	requests            prometheus.Counter
	duration            prometheus.Observer
	upstream            prometheus.Observer
	overhead            prometheus.Observer
	ttft                prometheus.Observer
	tokensIn, tokensOut prometheus.Counter
	cost                prometheus.Counter
	fallbacks, retries  prometheus.Counter
}

func (m *Metrics) newCallSeries(k callKey) *callSeries {
	return &callSeries{
		requests:  m.requests.WithLabelValues(k.feature, k.release, k.model, codeClass[k.class]),
		duration:  m.duration.WithLabelValues(k.feature, k.model),
		upstream:  m.upstream.WithLabelValues(k.provider, k.model),
		overhead:  m.overhead.WithLabelValues(k.feature),
		ttft:      m.ttft.WithLabelValues(k.model),
		tokensIn:  m.tokens.WithLabelValues("input", k.model),
		tokensOut: m.tokens.WithLabelValues("output", k.model),
		cost:      m.cost.WithLabelValues(k.feature, k.model),
		fallbacks: m.fallbacks.WithLabelValues(k.feature),
		retries:   m.retries.WithLabelValues(k.feature),
	}
}

// codeClass names HTTP status classes; index 0 is anything out of range,
// such as a client that went away before a status was sent.
var codeClass = [...]string{Overflow, "1xx", "2xx", "3xx", "4xx", "5xx"}

func classOf(status int) int8 {
	if status >= 100 && status < 600 {
		return int8(status / 100)
	}
	return 0
}

// ObserveCall records one finished call.
func (m *Metrics) ObserveCall(c *Call) {
	k := callKey{label(c.Feature), label(c.Release), label(c.Model), label(c.Provider), classOf(c.HTTPStatus)}
	s := m.calls.get(k)
	s.requests.Inc()
	if c.Total > 0 {
		s.duration.Observe(c.Total.Seconds())
		// The gateway's own time: neither the upstream's nor the waits
		// between retries the route asked for.
		s.overhead.Observe(max(c.Total-c.Upstream-c.Backoff, 0).Seconds())
	}
	if c.Upstream > 0 {
		s.upstream.Observe(c.Upstream.Seconds())
	}
	if c.TTFT > 0 {
		s.ttft.Observe(c.TTFT.Seconds())
	}
	if c.InputTokens > 0 {
		s.tokensIn.Add(float64(c.InputTokens))
	}
	if c.OutputTokens > 0 {
		s.tokensOut.Add(float64(c.OutputTokens))
	}
	if c.CostUSD > 0 {
		s.cost.Add(c.CostUSD)
	}
	if c.Fallbacks > 0 {
		s.fallbacks.Add(float64(c.Fallbacks))
	}
	if c.Retries > 0 {
		s.retries.Add(float64(c.Retries))
	}
	if c.HTTPStatus >= 400 || c.ErrorReason != "" {
		reason := c.ErrorReason
		if reason == "" {
			reason = "http_" + strconv.Itoa(c.HTTPStatus)
		}
		m.errs.get([2]string{k.feature, label(reason)}).Inc()
	}
}

// ObserveTrace records a finished trace: the call and each of its
// provider attempts. It is the one call the recording stage needs.
func (m *Metrics) ObserveTrace(t *trace.Trace) {
	c := Call{
		Feature:      t.Feature,
		Release:      t.Release,
		Model:        t.Model,
		Provider:     t.Provider,
		HTTPStatus:   t.HTTPStatus,
		Total:        t.Duration.D(),
		Upstream:     t.Upstream.D(),
		TTFT:         t.TTFT.D(),
		InputTokens:  t.InputTokens,
		OutputTokens: t.OutputTokens,
		CostUSD:      t.CostUSD,
		Fallbacks:    t.Fallbacks,
		Retries:      max(len(t.Attempts)-1-t.Fallbacks, 0),
	}
	for _, a := range t.Attempts {
		c.Backoff += a.Backoff.D()
	}
	if t.Status != "" && t.Status != "ok" {
		c.ErrorReason = t.ErrorCode
		if c.ErrorReason == "" {
			c.ErrorReason = t.Status
		}
	}
	m.ObserveCall(&c)
	m.costs.observeCost(t)
	if g, ok := GenAIOf(t); ok {
		m.ObserveGenAI(&g)
	}
	for i := range t.Attempts {
		a := &t.Attempts[i]
		m.ObserveAttempt(a.Provider, a.Model, a.Status)
	}
}

// ObserveEvalTrace counts a finished evaluation call apart from production
// traffic, so evaluation runs do not move a release's request, error,
// latency and cost series that dashboards and canary analysis read. Its
// provider attempts are counted as any: the providers served them.
func (m *Metrics) ObserveEvalTrace(t *trace.Trace) {
	status := "ok"
	if t.Status != "" && t.Status != "ok" {
		status = "error"
	}
	m.evals.get([3]string{label(t.Feature), label(t.Release), status}).Inc()
	if t.CostUSD > 0 {
		m.evalCs.get(label(t.Feature)).Add(t.CostUSD)
	}
	for i := range t.Attempts {
		a := &t.Attempts[i]
		m.ObserveAttempt(a.Provider, a.Model, a.Status)
	}
}

// ObserveAttempt counts one provider attempt; outcome is "ok" or the
// failure kind.
func (m *Metrics) ObserveAttempt(provider, model, outcome string) {
	m.atts.get([3]string{label(provider), label(model), label(outcome)}).Inc()
}

// ValidationFailure counts an output that failed validation. reason is a
// kind such as schema, repair_failed or output_policy, not the message.
func (m *Metrics) ValidationFailure(feature, release, reason string) {
	m.valid.get([3]string{label(feature), label(release), label(reason)}).Inc()
}

// Feedback counts a user signal on a release's output: thumbs up or down,
// or a score.
func (m *Metrics) Feedback(feature, release string, fb trace.Feedback) {
	signal := fb.Thumbs
	if signal == "" {
		signal = "score"
	}
	m.fbs.get([3]string{label(feature), label(release), signal}).Inc()
}

// CacheLookup counts a response cache lookup.
func (m *Metrics) CacheLookup(feature string, hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	m.caches.get([2]string{label(feature), result}).Inc()
}

// SetBreaker sets a target's circuit breaker state.
func (m *Metrics) SetBreaker(target string, state BreakerState) {
	m.breakers.get(label(target)).Set(float64(state))
}

// DeclareBreakers shows each target's breaker as closed until it first
// changes: the router reports changes only, and a series that appears
// only once a circuit opens cannot be graphed or alerted on beside its
// peers. Targets already reported keep their state. Call it with the
// configured model names after each configuration swap.
func (m *Metrics) DeclareBreakers(targets ...string) {
	for _, t := range targets {
		m.breakers.get(label(t)) // a new gauge starts at 0, closed
	}
}

// CallStarted and CallEnded bracket a call for the in-flight gauge; the
// gateway calls both, whatever the call's outcome.
func (m *Metrics) CallStarted() { m.inFlight.Inc() }

// CallEnded ends what CallStarted began.
func (m *Metrics) CallEnded() { m.inFlight.Dec() }

// SetBuildInfo names the running build in gantry_build_info. version is
// what the binary was stamped with; when empty, the module version Go
// recorded is used ("(devel)" for a build from a checkout). The revision
// and Go version come from the build itself.
func (m *Metrics) SetBuildInfo(version string) {
	rev, gover := "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	m.build.Reset()
	m.build.WithLabelValues(label(version), label(rev), gover).Set(1)
}

// TraceDropped counts a trace the recording queue dropped. Its method
// value is meant as trace.NewRecorder's onDrop.
func (m *Metrics) TraceDropped() { m.dropped.Inc() }

// label makes v safe and bounded as a label value: never empty, valid
// UTF-8 (the client library panics otherwise), at most maxLabel bytes.
func label(v string) string {
	if v == "" {
		return None
	}
	if len(v) > maxLabel {
		n := maxLabel
		for n > 0 && !utf8.RuneStart(v[n]) {
			n--
		}
		v = v[:n]
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	return v
}

// seriesCache maps label tuples to resolved series, up to MaxSeries; later
// tuples share the overflow series.
type seriesCache[K comparable, V any] struct {
	mu       sync.RWMutex
	m        map[K]V
	overflow K
	make     func(K) V
}

func newSeriesCache[K comparable, V any](overflow K, mk func(K) V) *seriesCache[K, V] {
	return &seriesCache[K, V]{m: make(map[K]V), overflow: overflow, make: mk}
}

func (c *seriesCache[K, V]) get(k K) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	if len(c.m) >= MaxSeries {
		k = c.overflow
		if v, ok := c.m[k]; ok {
			return v
		}
	}
	v = c.make(k)
	c.m[k] = v
	return v
}
