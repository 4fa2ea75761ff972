package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	oteltrace "go.opentelemetry.io/otel/trace"

	"gantry/pipeline/metrics"
	"gantry/pipeline/trace"
)

// scope names the instrumentation in every span and metric exported.
const scope = "gantry"

// Exporter sends finished calls over OTLP. Record never blocks: the call
// waits in a bounded queue for one goroutine, owned by the Exporter, to
// record its metrics and turn it into spans for the SDK's batch
// processor, off the request's path. A nil *Exporter is
// valid and exports nothing, so an agent with telemetry off needs no
// checks.
type Exporter struct {
	tp      *sdktrace.TracerProvider
	tracer  oteltrace.Tracer
	mp      *sdkmetric.MeterProvider
	inst    *instruments
	capture bool

	queue   chan *trace.Trace
	abandon chan struct{} // closed when Shutdown gives up: drop the rest
	done    chan struct{}
	once    sync.Once
	mu      sync.RWMutex // guards closed against Record's send
	closed  bool
	dropped prometheus.Counter
	failed  prometheus.Counter
}

// Series the Exporter adds to the agent's registry.
const (
	DroppedSeries = "gantry_otlp_calls_dropped_total"
	FailedSeries  = "gantry_otlp_export_failures_total"
	QueueSeries   = "gantry_otlp_queue_length"
)

// New starts an exporter for cfg, or returns nil and no error when cfg and
// the environment name no collector. reg receives the exporter's own
// series (drops, failures, queue length); nil skips them. Exports go out
// in the background; a collector that is down costs failed exports,
// counted and logged, never a call's time.
func New(ctx context.Context, cfg Config, reg prometheus.Registerer) (*Exporter, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if !r.traces.on && !r.metrics.on {
		return nil, nil
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The SDK reports export failures to one process-wide handler; by
	// default it writes them to stderr outside the agent's log.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("OTLP export failed", "err", err) }))
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e := &Exporter{
		capture: r.capture,
		abandon: make(chan struct{}),
		done:    make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: DroppedSeries,
			Help: "Calls whose spans were not exported because the export queue was full."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: FailedSeries,
			Help: "OTLP exports that failed, spans and metrics; the agent's log says why."}),
	}
	if r.traces.on {
		exp, err := newSpanExporter(ctx, r.traces, cfg)
		if err != nil {
			return nil, err
		}
		e.tp = sdktrace.NewTracerProvider(
			sdktrace.WithResource(res),
			sdktrace.WithIDGenerator(idGenerator{}),
			// Blocking applies to the exporter's own goroutine only: the
			// queue in front of it is where calls are dropped and counted.
			sdktrace.WithBatcher(&countingSpans{SpanExporter: exp, e: e}, sdktrace.WithBlocking()),
		)
		e.tracer = e.tp.Tracer(scope, oteltrace.WithInstrumentationVersion(cfg.Version))
	}
	n := cfg.Queue
	if n <= 0 {
		n = DefaultQueue
	}
	e.queue = make(chan *trace.Trace, n)
	if r.metrics.on {
		exp, err := newMetricExporter(ctx, r.metrics, cfg)
		if err != nil {
			e.shutdownProviders(ctx)
			return nil, err
		}
		e.mp = sdkmetric.NewMeterProvider(
			sdkmetric.WithResource(res),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(&countingMetrics{Exporter: exp, e: e})),
			sdkmetric.WithCardinalityLimit(metrics.MaxSeries),
		)
		if e.inst, err = newInstruments(e.mp.Meter(scope)); err != nil {
			e.shutdownProviders(ctx)
			return nil, err
		}
	}
	if reg != nil {
		queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: QueueSeries,
			Help: "Calls waiting for their spans and metrics to be exported."}, func() float64 { return float64(len(e.queue)) })
		for _, c := range []prometheus.Collector{e.dropped, e.failed, queued} {
			if err := reg.Register(c); err != nil {
				e.shutdownProviders(ctx)
				return nil, fmt.Errorf("telemetry series: %w", err)
			}
		}
	}
	go e.run()
	log.Info("OTLP export on", "traces", describe(r.traces), "metrics", describe(r.metrics), "capture_content", r.capture)
	return e, nil
}

func describe(s signal) string {
	switch {
	case !s.on:
		return "off"
	case s.endpoint != "":
		return s.protocol + " " + s.endpoint
	}
	return s.protocol + " (endpoint from the environment)"
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	name := cfg.ServiceName
	if name == "" {
		name = os.Getenv(envServiceName)
	}
	if name == "" {
		name = "gantry"
	}
	attrs := []resource.Option{resource.WithFromEnv(), resource.WithAttributes(semconv.ServiceName(name))}
	if cfg.Version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(cfg.Version)))
	}
	if cfg.Node != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceInstanceID(cfg.Node)))
	}
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("OTLP resource (check OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	return res, nil
}

func newSpanExporter(ctx context.Context, s signal, cfg Config) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	if s.protocol == ProtocolGRPC {
		var opts []otlptracegrpc.Option
		if s.endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(s.endpoint))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
		}
		if cfg.Timeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(cfg.Timeout))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		if s.endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(s.endpoint))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
		}
		if cfg.Timeout > 0 {
			opts = append(opts, otlptracehttp.WithTimeout(cfg.Timeout))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return exp, nil
}

func newMetricExporter(ctx context.Context, s signal, cfg Config) (sdkmetric.Exporter, error) {
	var (
		exp sdkmetric.Exporter
		err error
	)
	if s.protocol == ProtocolGRPC {
		var opts []otlpmetricgrpc.Option
		if s.endpoint != "" {
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(s.endpoint))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlpmetricgrpc.WithHeaders(cfg.Headers))
		}
		if cfg.Timeout > 0 {
			opts = append(opts, otlpmetricgrpc.WithTimeout(cfg.Timeout))
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	} else {
		var opts []otlpmetrichttp.Option
		if s.endpoint != "" {
			opts = append(opts, otlpmetrichttp.WithEndpointURL(s.endpoint))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlpmetrichttp.WithHeaders(cfg.Headers))
		}
		if cfg.Timeout > 0 {
			opts = append(opts, otlpmetrichttp.WithTimeout(cfg.Timeout))
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP metric exporter: %w", err)
	}
	return exp, nil
}

// Record hands a finished call to the exporter and returns at once. t must
// not change afterwards; the trace store's copy is never changed, so the
// agent passes the same pointer to both. When the queue is full the
// call's spans are dropped and counted, but its metrics are recorded here
// and now, so OTLP metrics stay exact under overload.
func (e *Exporter) Record(t *trace.Trace) {
	if e == nil || t == nil {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.closed {
		select {
		case e.queue <- t:
			return
		default:
		}
	}
	e.record(t)
	if e.tracer != nil {
		e.dropped.Inc()
	}
}

// record adds a call to the GenAI metrics.
func (e *Exporter) record(t *trace.Trace) {
	if e.inst == nil {
		return
	}
	if g, ok := metrics.GenAIOf(t); ok {
		e.inst.record(&g)
	}
}

func (e *Exporter) run() {
	defer close(e.done)
	for t := range e.queue {
		e.record(t)
		if e.tracer == nil {
			continue
		}
		select {
		case <-e.abandon:
			e.dropped.Inc()
		default:
			t.Complete() // the bodies are redacted before a span carries them
			emit(e.tracer, t, e.capture)
		}
	}
}

// Shutdown stops taking calls, turns those queued into spans, and flushes
// spans and metrics to the collector. When ctx ends first, what is left is
// dropped and Shutdown returns ctx's error. Safe to call more than once.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if e == nil {
		return nil
	}
	e.once.Do(func() {
		e.mu.Lock()
		e.closed = true
		close(e.queue)
		e.mu.Unlock()
	})
	select {
	case <-e.done:
		return e.shutdownProviders(ctx)
	case <-ctx.Done():
		close(e.abandon)
		// Stopping the batch processor also frees the goroutine if it
		// waits for room there.
		err := e.shutdownProviders(ctx)
		<-e.done
		return errors.Join(ctx.Err(), err)
	}
}

func (e *Exporter) shutdownProviders(ctx context.Context) error {
	var errs []error
	if e.tp != nil {
		errs = append(errs, e.tp.Shutdown(ctx))
	}
	if e.mp != nil {
		errs = append(errs, e.mp.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// countingSpans counts failed span exports.
type countingSpans struct {
	sdktrace.SpanExporter
	e *Exporter
}

func (c *countingSpans) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		c.e.failed.Inc() // the SDK reports the error to the handler New set
	}
	return err
}

// countingMetrics counts failed metric exports.
type countingMetrics struct {
	sdkmetric.Exporter
	e *Exporter
}

func (c *countingMetrics) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := c.Exporter.Export(ctx, rm)
	if err != nil {
		c.e.failed.Inc()
	}
	return err
}
