package telemetry

import (
	"flag"
	"strings"
	"testing"
)

// clearEnv empties every variable resolve reads, so the machine's own
// settings cannot decide a case.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{envEndpoint, envTracesEndpoint, envMetricsEndpoint, envProtocol, envTracesProtocol,
		envMetricsProtocol, envDisabled, envTracesExporter, envMetricsExporter, envServiceName, envCapture} {
		t.Setenv(v, "")
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		env        map[string]string
		traces     string // "off" or protocol+" "+endpoint
		metrics    string
		capture    bool
		wantErrSub string
	}{
		{name: "nothing set exports nothing", traces: "off", metrics: "off"},
		{name: "explicit HTTP endpoint gets the signal paths", cfg: Config{Endpoint: "http://otel:4318/"},
			traces: "http/protobuf http://otel:4318/v1/traces", metrics: "http/protobuf http://otel:4318/v1/metrics"},
		{name: "explicit gRPC", cfg: Config{Endpoint: "http://otel:4317", Protocol: ProtocolGRPC},
			traces: "grpc http://otel:4317", metrics: "grpc http://otel:4317"},
		{name: "environment endpoint, exporter reads it itself", env: map[string]string{envEndpoint: "http://otel:4318"},
			traces: "http/protobuf ", metrics: "http/protobuf "},
		{name: "per-signal protocol from the environment", env: map[string]string{envTracesEndpoint: "http://otel:4317", envTracesProtocol: "grpc"},
			traces: "grpc ", metrics: "off"},
		{name: "explicit protocol beats the environment", cfg: Config{Endpoint: "http://otel:4318", Protocol: ProtocolHTTP},
			env: map[string]string{envProtocol: "grpc"}, traces: "http/protobuf http://otel:4318/v1/traces", metrics: "http/protobuf http://otel:4318/v1/metrics"},
		{name: "one signal turned off by the standard variable", cfg: Config{Endpoint: "http://otel:4318"},
			env: map[string]string{envMetricsExporter: "none"}, traces: "http/protobuf http://otel:4318/v1/traces", metrics: "off"},
		{name: "one signal turned off by option", cfg: Config{Endpoint: "http://otel:4318", NoTraces: true},
			traces: "off", metrics: "http/protobuf http://otel:4318/v1/metrics"},
		{name: "SDK disabled wins", cfg: Config{Endpoint: "http://otel:4318"}, env: map[string]string{envDisabled: "true"},
			traces: "off", metrics: "off"},
		{name: "content capture by the GenAI variable", cfg: Config{Endpoint: "http://otel:4318"}, env: map[string]string{envCapture: "true"},
			traces: "http/protobuf http://otel:4318/v1/traces", metrics: "http/protobuf http://otel:4318/v1/metrics", capture: true},
		{name: "JSON is refused with the reason", env: map[string]string{envEndpoint: "http://otel:4318", envProtocol: "http/json"},
			wantErrSub: `OTEL_EXPORTER_OTLP_PROTOCOL "http/json": Gantry's OTLP exporters speak`},
		{name: "unknown protocol", cfg: Config{Endpoint: "http://otel:4318", Protocol: "thrift"}, wantErrSub: `protocol "thrift": want`},
		{name: "endpoint without scheme", cfg: Config{Endpoint: "otel:4318"}, wantErrSub: `OTLP endpoint "otel:4318": want a URL`},
		{name: "bad environment endpoint", env: map[string]string{envTracesEndpoint: "::"},
			wantErrSub: `OTLP OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "::"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r, err := tt.cfg.resolve()
			if tt.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSub) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErrSub)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			str := func(s signal) string {
				if !s.on {
					return "off"
				}
				return s.protocol + " " + s.endpoint
			}
			if got := str(r.traces); got != tt.traces {
				t.Fatalf("traces %q, want %q", got, tt.traces)
			}
			if got := str(r.metrics); got != tt.metrics {
				t.Fatalf("metrics %q, want %q", got, tt.metrics)
			}
			if r.capture != tt.capture {
				t.Fatalf("capture %v, want %v", r.capture, tt.capture)
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	clearEnv(t)
	var c Config
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--otlp-endpoint", "http://otel:4317", "--otlp-protocol", "grpc", "--otlp-capture-content"}); err != nil {
		t.Fatal(err)
	}
	r, err := c.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if !r.traces.on || r.traces.protocol != ProtocolGRPC || r.traces.endpoint != "http://otel:4317" || !r.capture {
		t.Fatalf("flags resolved to %+v", r)
	}
}
