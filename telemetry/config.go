// Package telemetry exports Gantry's finished calls over OTLP: a span per
// call with a child per pipeline stage and per upstream attempt, and the
// GenAI metrics, both named by the OpenTelemetry GenAI semantic
// conventions. It is its own top-level package because the OpenTelemetry
// SDK and its gRPC and HTTP exporters are a concern and a dependency the
// request path must not carry: the pipeline hands over finished
// trace.Trace values and never waits on an exporter.
//
// deploy/TELEMETRY.md documents the configuration an operator sets.
package telemetry

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
)

// Protocols an exporter speaks.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// DefaultQueue is how many finished calls may wait for span export.
const DefaultQueue = 2048

// Config chooses what is exported and where. Fields left zero fall back to
// the standard OTEL_* environment variables, read when New runs; an
// explicit field wins over the environment. With no endpoint set either
// way, nothing is exported.
type Config struct {
	// Endpoint is the collector's base URL: http://collector:4318 for
	// OTLP/HTTP (the signal paths /v1/traces and /v1/metrics are added) or
	// http://collector:4317 for gRPC. An http:// URL is sent in clear text,
	// https:// over TLS.
	Endpoint string
	// Protocol is ProtocolHTTP or ProtocolGRPC for both signals.
	Protocol string
	// Headers go with every export, e.g. a backend's API key; they are
	// never logged.
	Headers map[string]string
	// Timeout bounds one export.
	Timeout time.Duration

	// NoTraces and NoMetrics turn one signal off.
	NoTraces, NoMetrics bool
	// CaptureContent adds the prompt and the answer to call spans, as the
	// trace holds them: redacted unless the feature captures its bodies.
	CaptureContent bool

	// ServiceName defaults to OTEL_SERVICE_NAME, else "gantry"; Version
	// and Node name the build and the agent (service.instance.id).
	ServiceName string
	Version     string
	Node        string

	// Queue bounds the calls waiting for span export (DefaultQueue when
	// 0); past it calls are dropped and counted, never waited for.
	Queue int
	// Log hears export failures; nil discards them.
	Log *slog.Logger
}

// signal is one resolved exporter: where and how.
type signal struct {
	on       bool
	protocol string
	endpoint string // explicit URL with the signal's path for HTTP; empty leaves it to the environment
}

// resolved is a Config with the environment applied.
type resolved struct {
	traces, metrics signal
	capture         bool
}

// env variable names, in one place for the docs and the tests.
const (
	envEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envMetricsEndpoint = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envMetricsProtocol = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
	envDisabled        = "OTEL_SDK_DISABLED"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envMetricsExporter = "OTEL_METRICS_EXPORTER"
	envServiceName     = "OTEL_SERVICE_NAME"
	envCapture         = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
)

// resolve applies the environment to c and checks the result.
func (c Config) resolve() (resolved, error) {
	var r resolved
	if strings.EqualFold(os.Getenv(envDisabled), "true") {
		return r, nil
	}
	var err error
	r.capture = c.CaptureContent || strings.EqualFold(os.Getenv(envCapture), "true")
	if c.Endpoint != "" {
		if err := checkURL("endpoint", c.Endpoint); err != nil {
			return r, err
		}
	}
	r.traces, err = c.signal(!c.NoTraces, envTracesExporter, envTracesEndpoint, envTracesProtocol, "/v1/traces")
	if err != nil {
		return r, err
	}
	r.metrics, err = c.signal(!c.NoMetrics, envMetricsExporter, envMetricsEndpoint, envMetricsProtocol, "/v1/metrics")
	return r, err
}

func (c Config) signal(wanted bool, exporterVar, endpointVar, protocolVar, path string) (signal, error) {
	var s signal
	if !wanted || os.Getenv(exporterVar) == "none" {
		return s, nil
	}
	switch {
	case c.Endpoint != "":
		s.on = true
	case os.Getenv(endpointVar) != "":
		s.on = true
		if err := checkURL(endpointVar, os.Getenv(endpointVar)); err != nil {
			return s, err
		}
	case os.Getenv(envEndpoint) != "":
		s.on = true
		if err := checkURL(envEndpoint, os.Getenv(envEndpoint)); err != nil {
			return s, err
		}
	default:
		return s, nil // nowhere to send it
	}
	s.protocol = c.Protocol
	from := "protocol"
	if s.protocol == "" {
		for _, v := range []string{protocolVar, envProtocol} {
			if s.protocol = os.Getenv(v); s.protocol != "" {
				from = v
				break
			}
		}
	}
	switch s.protocol {
	case "":
		s.protocol = ProtocolHTTP
	case ProtocolHTTP, ProtocolGRPC:
	case "http/json":
		return s, fmt.Errorf("%s %q: Gantry's OTLP exporters speak %s and %s, not JSON", from, s.protocol, ProtocolHTTP, ProtocolGRPC)
	default:
		return s, fmt.Errorf("%s %q: want %s or %s", from, s.protocol, ProtocolHTTP, ProtocolGRPC)
	}
	if c.Endpoint != "" {
		s.endpoint = strings.TrimRight(c.Endpoint, "/")
		if s.protocol == ProtocolHTTP {
			s.endpoint += path
		}
	}
	return s, nil
}

// checkURL refuses what the exporters would silently replace with their
// localhost default.
func checkURL(what, v string) error {
	u, err := url.Parse(v)
	if err == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
		err = errors.New("want a URL such as http://collector:4318")
	}
	if err != nil {
		return fmt.Errorf("OTLP %s %q: %w", what, v, err)
	}
	return nil
}

// RegisterFlags adds the agent's OTLP flags to fs, writing into c. Each
// flag left unset leaves the matching OTEL_* variable in charge.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Endpoint, "otlp-endpoint", "", "OpenTelemetry collector base URL, e.g. http://collector:4318 (default $OTEL_EXPORTER_OTLP_ENDPOINT; unset: no export)")
	fs.StringVar(&c.Protocol, "otlp-protocol", "", "OTLP protocol: http/protobuf or grpc (default $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf)")
	fs.StringVar(&c.ServiceName, "otlp-service-name", "", "service.name of exported spans and metrics (default $OTEL_SERVICE_NAME, else gantry)")
	fs.BoolVar(&c.CaptureContent, "otlp-capture-content", false, "export prompts and answers on spans, as traces hold them (redacted unless the feature captures)")
}
