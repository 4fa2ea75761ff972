package telemetry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	oteltrace "go.opentelemetry.io/otel/trace"

	"gantry/pipeline/metrics"
	"gantry/pipeline/trace"
)

// Gantry's own span attributes.
const (
	AttrFeature     = "gantry.feature"
	AttrReleaseID   = "gantry.release.id"
	AttrReleaseHash = "gantry.release.hash"
	AttrLabel       = "gantry.label"
	AttrJourney     = "gantry.journey"
	AttrCostUSD     = "gantry.cost_usd"
	// What a call spent besides its answer, and how (see trace.Trace).
	AttrTiers          = "gantry.cascade.tiers" // route:model:why it escalated, per tier
	AttrBaseCostUSD    = "gantry.cost_without_escalation_usd"
	AttrContext        = "gantry.context.strategy"
	AttrTokensSaved    = "gantry.context.tokens_saved"
	AttrSemanticSim    = "gantry.semantic_cache.similarity"
	AttrSemanticSource = "gantry.semantic_cache.source_trace"
	AttrValidation     = "gantry.validation.failures"
	AttrRequestID      = "gantry.request_id"
	AttrNode           = "gantry.node"
	AttrEntry          = "gantry.entry"
	AttrRoute          = "gantry.route"
	AttrKey            = "gantry.key.name"
	AttrTeam           = "gantry.team"
	AttrCached         = "gantry.cached"
	AttrEstimated      = "gantry.usage.estimated"
	AttrFallbacks      = "gantry.fallbacks"
	AttrPolicy         = "gantry.policy.decisions"
	AttrSources        = "gantry.retrieval.sources"
	AttrHTTPStatus     = "http.response.status_code"
	AttrStage          = "gantry.stage"
	AttrAttempt        = "gantry.attempt"
	AttrBackoffMs      = "gantry.attempt.backoff_ms"
)

// idsKey carries the ids the next span must take: the gateway already
// told the caller which span is its (in the response's traceparent), so
// the exported span must have that id, not one the SDK invents.
type idsKey struct{}

type ids struct {
	trace oteltrace.TraceID
	span  oteltrace.SpanID
}

// idGenerator hands out the ids a context asks for, random ones otherwise.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (oteltrace.TraceID, oteltrace.SpanID) {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.trace, v.span
	}
	return oteltrace.TraceID(trace.NewTraceID()), oteltrace.SpanID(trace.NewSpanID())
}

func (idGenerator) NewSpanID(ctx context.Context, _ oteltrace.TraceID) oteltrace.SpanID {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.span
	}
	return oteltrace.SpanID(trace.NewSpanID())
}

// emit turns a finished call into spans, with the times it really had.
func emit(tracer oteltrace.Tracer, t *trace.Trace, capture bool) {
	tid, ok := parseTraceID(t.TraceID)
	if !ok {
		tid = oteltrace.TraceID(trace.NewTraceID())
	}
	sid, ok := parseSpanID(t.SpanID)
	if !ok {
		sid = oteltrace.SpanID(trace.NewSpanID())
	}
	ctx := context.Background()
	if pid, ok := parseSpanID(t.ParentID); ok {
		ctx = oteltrace.ContextWithRemoteSpanContext(ctx, oteltrace.NewSpanContext(oteltrace.SpanContextConfig{
			TraceID: tid, SpanID: pid, TraceFlags: oteltrace.FlagsSampled, Remote: true}))
	}
	ctx = context.WithValue(ctx, idsKey{}, ids{tid, sid})

	name := metrics.OperationChat
	if t.Requested != "" {
		name += " " + t.Requested
	}
	_, root := tracer.Start(ctx, name, oteltrace.WithSpanKind(oteltrace.SpanKindServer),
		oteltrace.WithTimestamp(t.Start), oteltrace.WithAttributes(callAttrs(t, capture)...))
	if t.Status != "ok" {
		root.SetStatus(codes.Error, t.Error)
	}
	// Children start from a context without the fixed ids.
	parent := oteltrace.ContextWithSpan(context.Background(), root)
	attemptParent := parent
	for _, s := range t.Spans {
		start := t.Start.Add(s.Offset.D())
		sctx, sp := tracer.Start(parent, "gantry."+s.Name, oteltrace.WithTimestamp(start),
			oteltrace.WithAttributes(attribute.String(AttrStage, s.Name)))
		if s.Error != "" {
			sp.SetStatus(codes.Error, s.Error)
		}
		if s.Name == "route" {
			attemptParent = sctx // attempts happen inside the route stage
		}
		sp.End(oteltrace.WithTimestamp(start.Add(s.Duration.D())))
	}
	for i, a := range t.Attempts {
		start := t.Start.Add(a.Offset.D())
		attrs := []attribute.KeyValue{
			semconv.GenAIOperationNameKey.String(metrics.OperationChat),
			semconv.GenAIProviderNameKey.String(a.Provider),
			semconv.GenAIRequestModelKey.String(a.Model),
			attribute.Int(AttrAttempt, i+1),
		}
		if a.Backoff > 0 {
			attrs = append(attrs, attribute.Float64(AttrBackoffMs, float64(a.Backoff)))
		}
		if a.Status != "ok" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(a.Status))
		}
		_, sp := tracer.Start(attemptParent, metrics.OperationChat+" "+a.Model, oteltrace.WithSpanKind(oteltrace.SpanKindClient),
			oteltrace.WithTimestamp(start), oteltrace.WithAttributes(attrs...))
		if a.Status != "ok" {
			sp.SetStatus(codes.Error, a.Error)
		}
		sp.End(oteltrace.WithTimestamp(start.Add(a.Duration.D())))
	}
	root.End(oteltrace.WithTimestamp(t.Start.Add(t.Duration.D())))
}

// callAttrs are the call span's attributes: the GenAI conventions' and
// Gantry's own. Usage sits here only, not on the attempt that answered,
// so a backend that sums usage over spans counts each call once.
func callAttrs(t *trace.Trace, capture bool) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 32)
	str := func(k, v string) {
		if v != "" {
			a = append(a, attribute.String(k, v))
		}
	}
	provider := t.Provider
	if provider == "" && len(t.Attempts) > 0 {
		provider = t.Attempts[len(t.Attempts)-1].Provider
	}
	a = append(a, semconv.GenAIOperationNameKey.String(metrics.OperationChat))
	str(string(semconv.GenAIProviderNameKey), provider)
	str(string(semconv.GenAIRequestModelKey), t.Requested)
	if p := t.Params; p != nil {
		if p.MaxTokens > 0 {
			a = append(a, semconv.GenAIRequestMaxTokens(p.MaxTokens))
		}
		if p.Temperature != nil {
			a = append(a, semconv.GenAIRequestTemperature(*p.Temperature))
		}
		if p.TopP != nil {
			a = append(a, semconv.GenAIRequestTopP(*p.TopP))
		}
		if p.Seed != nil {
			a = append(a, semconv.GenAIRequestSeed(int(*p.Seed)))
		}
	}
	if t.Stream {
		a = append(a, semconv.GenAIRequestStream(true))
	}
	str(string(semconv.GenAIResponseModelKey), t.Model)
	str(string(semconv.GenAIResponseIDKey), t.ResponseID)
	if len(t.FinishReasons) > 0 {
		a = append(a, semconv.GenAIResponseFinishReasons(t.FinishReasons...))
	}
	if t.Model != "" {
		a = append(a, semconv.GenAIUsageInputTokens(t.InputTokens), semconv.GenAIUsageOutputTokens(t.OutputTokens))
		if t.CachedTokens > 0 {
			a = append(a, semconv.GenAIUsageCacheReadInputTokens(t.CachedTokens))
		}
	}
	if t.TTFT > 0 {
		a = append(a, semconv.GenAIResponseTimeToFirstChunk(t.TTFT.D().Seconds()))
	}
	if t.Status != "ok" {
		if g, ok := metrics.GenAIOf(t); ok {
			str(string(semconv.ErrorTypeKey), g.ErrorType)
		} else {
			str(string(semconv.ErrorTypeKey), t.ErrorCode)
		}
	}
	a = append(a, attribute.Int(AttrHTTPStatus, t.HTTPStatus))

	str(AttrFeature, t.Feature)
	str(AttrReleaseID, t.Release)
	str(AttrReleaseHash, t.ReleaseHash)
	str(AttrLabel, t.Label)
	str(AttrJourney, t.Journey)
	str(AttrRequestID, t.RequestID)
	str(AttrNode, t.Node)
	str(AttrEntry, t.Entry)
	str(AttrRoute, t.Route)
	str(AttrKey, t.Key)
	str(AttrTeam, t.Team)
	a = append(a, attribute.Float64(AttrCostUSD, t.CostUSD))
	if len(t.Tiers) > 0 {
		tiers := make([]string, len(t.Tiers))
		for i, tier := range t.Tiers {
			tiers[i] = tier.Route + ":" + tier.Model + ":" + tier.Escalated
		}
		a = append(a, attribute.StringSlice(AttrTiers, tiers), attribute.Float64(AttrBaseCostUSD, t.BaseCostUSD()))
	}
	if c := t.Compression; c != nil {
		a = append(a, attribute.String(AttrContext, c.Strategy), attribute.Int(AttrTokensSaved, c.TokensSaved))
	}
	if h := t.SemanticHit; h != nil {
		a = append(a, attribute.Float64(AttrSemanticSim, h.Similarity), attribute.String(AttrSemanticSource, h.Source))
	}
	if t.Cached {
		a = append(a, attribute.Bool(AttrCached, true))
	}
	if t.TokensEstimate {
		a = append(a, attribute.Bool(AttrEstimated, true))
	}
	if t.Fallbacks > 0 {
		a = append(a, attribute.Int(AttrFallbacks, t.Fallbacks))
	}
	if len(t.Validation) > 0 {
		a = append(a, attribute.StringSlice(AttrValidation, t.Validation))
	}
	if len(t.Policy) > 0 {
		d := make([]string, len(t.Policy))
		for i, p := range t.Policy {
			d[i] = p.Rule + ":" + p.Action
		}
		a = append(a, attribute.StringSlice(AttrPolicy, d))
	}
	if len(t.Sources) > 0 {
		s := make([]string, len(t.Sources))
		for i, src := range t.Sources {
			s[i] = src.Document + "#" + src.Chunk
		}
		a = append(a, attribute.StringSlice(AttrSources, s))
	}
	if capture {
		if in := inputMessages(t.Input); in != "" {
			a = append(a, attribute.String(string(semconv.GenAIInputMessagesKey), in))
		}
		if out := outputMessages(t); out != "" {
			a = append(a, attribute.String(string(semconv.GenAIOutputMessagesKey), out))
		}
	}
	return a
}

// message and part are the GenAI conventions' JSON shape for content.
type message struct {
	Role         string `json:"role"`
	Parts        []part `json:"parts"`
	FinishReason string `json:"finish_reason,omitempty"`
}

type part struct {
	Type    string `json:"type"`
	Content string `json:"content"`
}

// roles that start a message in a trace's input text.
var roles = []string{"system", "developer", "user", "assistant", "tool"}

// inputMessages rebuilds the prompt's messages from the trace's input,
// which holds one "role: content" block a message. A content line that
// itself begins with a role name and a colon is read as a new message.
func inputMessages(text string) string {
	var msgs []message
	for line := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
		role, rest := "", line
		for _, r := range roles {
			if after, ok := strings.CutPrefix(line, r+": "); ok {
				role, rest = r, after
				break
			}
		}
		switch {
		case role != "":
			msgs = append(msgs, message{Role: role, Parts: []part{{Type: "text", Content: rest}}})
		case len(msgs) > 0:
			p := &msgs[len(msgs)-1].Parts[0]
			p.Content += "\n" + line
		case line != "":
			msgs = append(msgs, message{Role: "user", Parts: []part{{Type: "text", Content: line}}})
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	b, _ := json.Marshal(msgs)
	return string(b)
}

func outputMessages(t *trace.Trace) string {
	if t.Output == "" {
		return ""
	}
	m := message{Role: "assistant", Parts: []part{{Type: "text", Content: t.Output}}}
	if len(t.FinishReasons) > 0 {
		m.FinishReason = t.FinishReasons[0]
	}
	b, _ := json.Marshal([]message{m})
	return string(b)
}

func parseTraceID(s string) (oteltrace.TraceID, bool) {
	var id oteltrace.TraceID
	if len(s) != 2*len(id) {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, false
	}
	return id, id.IsValid()
}

func parseSpanID(s string) (oteltrace.SpanID, bool) {
	var id oteltrace.SpanID
	if len(s) != 2*len(id) {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, false
	}
	return id, id.IsValid()
}
