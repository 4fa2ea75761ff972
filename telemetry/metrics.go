package telemetry

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"gantry/pipeline/metrics"
)

// instruments are the GenAI conventions' histograms, with the bucket
// layouts the conventions advise, fed from the same description of a call
// (metrics.GenAIOf) as the Prometheus series, so both agree.
type instruments struct {
	duration, ttft, perToken metric.Float64Histogram
	tokens                   metric.Int64Histogram

	mu   sync.RWMutex
	sets map[setKey]*attrSets
}

type setKey struct{ provider, reqModel, respModel, errType string }

// attrSets are a call's attribute sets, built once per label combination:
// building a set sorts and allocates, recording with one does not.
type attrSets struct {
	base, duration, input, output metric.MeasurementOption
}

func newInstruments(m metric.Meter) (*instruments, error) {
	in := &instruments{sets: map[setKey]*attrSets{}}
	var err error
	f := func(name, unit, help string, buckets []float64) metric.Float64Histogram {
		if err != nil {
			return nil
		}
		var h metric.Float64Histogram
		h, err = m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(help), metric.WithExplicitBucketBoundaries(buckets...))
		return h
	}
	in.duration = f(metrics.OpDurationName, "s", "GenAI operation duration.", metrics.GenAIDurationBuckets)
	in.ttft = f(metrics.TTFTName, "s", "Time to generate first token for successful responses.", metrics.GenAITTFTBuckets)
	in.perToken = f(metrics.TimePerTokenName, "s", "Time per output token generated after the first token for successful responses.", metrics.GenAITimePerTokenBuckets)
	if err != nil {
		return nil, err
	}
	in.tokens, err = m.Int64Histogram(metrics.TokenUsageName, metric.WithUnit("{token}"),
		metric.WithDescription("Number of input and output tokens used."), metric.WithExplicitBucketBoundaries(metrics.GenAITokenBuckets...))
	if err != nil {
		return nil, err
	}
	return in, nil
}

// overflowKey stands in once MaxSeries combinations exist, as the
// Prometheus series do.
var overflowKey = setKey{metrics.Overflow, metrics.Overflow, metrics.Overflow, ""}

func (in *instruments) setsFor(g *metrics.GenAI) *attrSets {
	k := setKey{g.Provider, g.RequestModel, g.ResponseModel, g.ErrorType}
	in.mu.RLock()
	s, ok := in.sets[k]
	in.mu.RUnlock()
	if ok {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.sets[k]; ok {
		return s
	}
	if len(in.sets) >= metrics.MaxSeries {
		k = overflowKey
		if s, ok := in.sets[k]; ok {
			return s
		}
	}
	base := []attribute.KeyValue{
		semconv.GenAIOperationNameKey.String(metrics.OperationChat),
		semconv.GenAIProviderNameKey.String(k.provider),
		semconv.GenAIRequestModelKey.String(k.reqModel),
	}
	if k.respModel != "" {
		base = append(base, semconv.GenAIResponseModelKey.String(k.respModel))
	}
	with := func(extra ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(append([]attribute.KeyValue(nil), base...), extra...)...))
	}
	s = &attrSets{base: with(), duration: with(), input: with(semconv.GenAITokenTypeInput), output: with(semconv.GenAITokenTypeOutput)}
	if k.errType != "" {
		s.duration = with(semconv.ErrorTypeKey.String(k.errType))
	}
	in.sets[k] = s
	return s
}

func (in *instruments) record(g *metrics.GenAI) {
	ctx := context.Background()
	s := in.setsFor(g)
	in.duration.Record(ctx, g.Duration, s.duration)
	if g.InputTokens > 0 {
		in.tokens.Record(ctx, int64(g.InputTokens), s.input)
	}
	if g.OutputTokens > 0 {
		in.tokens.Record(ctx, int64(g.OutputTokens), s.output)
	}
	if g.TTFT > 0 {
		in.ttft.Record(ctx, g.TTFT, s.base)
	}
	if g.TimePerOutput > 0 {
		in.perToken.Record(ctx, g.TimePerOutput, s.base)
	}
}
