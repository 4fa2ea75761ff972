package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gantry/pipeline/trace"
)

func TestGenAIOf(t *testing.T) {
	stream := &trace.Trace{Requested: "feature/support-answer", Route: "support-answer", Model: "gpt-4o-mini", Provider: "openai",
		Stream: true, Status: "ok", HTTPStatus: 200, Duration: 2000, TTFT: 500, InputTokens: 120, OutputTokens: 51,
		Attempts: []trace.Attempt{
			{Model: "gpt-4o", Provider: "openai", Offset: 5, Duration: 100, Status: "http_503"},
			{Model: "gpt-4o-mini", Provider: "openai", Offset: 110, Duration: 1890, Status: "ok"},
		}}
	tests := []struct {
		name string
		in   *trace.Trace
		ok   bool
		want GenAI
	}{
		{"stream", stream, true, GenAI{Operation: "chat", Provider: "openai", RequestModel: "feature/support-answer", ResponseModel: "gpt-4o-mini",
			Duration: 2, InputTokens: 120, OutputTokens: 51, TTFT: 0.5, TimePerOutput: (2.0 - 0.5) / 50}},
		{"refused before routing: the name is the caller's, never a label", &trace.Trace{Requested: "made-up-" + strings.Repeat("x", 50),
			Status: "error", HTTPStatus: 404, ErrorCode: "model_not_found"}, false, GenAI{}},
		{"refused by a budget before any attempt", &trace.Trace{Requested: "cheap", Route: "cheap", Status: "error", HTTPStatus: 429,
			ErrorCode: "budget_exceeded", Duration: 3}, true,
			GenAI{Operation: "chat", Provider: None, RequestModel: "cheap", ErrorType: "budget_exceeded", Duration: 0.003}},
		{"every attempt failed", &trace.Trace{Requested: "cheap", Route: "cheap", Status: "error", HTTPStatus: 502, Duration: 1000,
			Attempts: []trace.Attempt{{Model: "m", Provider: "sim", Status: "timeout"}}}, true,
			GenAI{Operation: "chat", Provider: "sim", RequestModel: "cheap", ErrorType: "http_502", Duration: 1}},
		{"cached answer used no tokens", &trace.Trace{Requested: "cheap", Route: "cheap", Model: "m", Provider: "sim", Cached: true,
			Status: "ok", InputTokens: 10, OutputTokens: 5, Duration: 1}, true,
			GenAI{Operation: "chat", Provider: "sim", RequestModel: "cheap", ResponseModel: "m", Duration: 0.001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := GenAIOf(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v", ok, tt.ok)
			}
			if d := got.TimePerOutput - tt.want.TimePerOutput; d > 1e-9 || d < -1e-9 {
				t.Fatalf("time per output token %v, want %v", got.TimePerOutput, tt.want.TimePerOutput)
			}
			got.TimePerOutput = tt.want.TimePerOutput
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestGenAISeries(t *testing.T) {
	m := New()
	m.ObserveTrace(&trace.Trace{Requested: "feature/support-answer", Route: "support-answer", Feature: "support-answer",
		Model: "gpt-4o-mini", Provider: "openai", Stream: true, Status: "ok", HTTPStatus: 200, Duration: 1500, TTFT: 300,
		InputTokens: 120, OutputTokens: 41,
		Attempts: []trace.Attempt{{Model: "gpt-4o-mini", Provider: "openai", Offset: 2, Duration: 1498, Status: "ok"}}})
	m.ObserveTrace(&trace.Trace{Requested: "cheap", Route: "cheap", Status: "error", HTTPStatus: 429, ErrorCode: "rate_limited", Duration: 1})
	m.ObserveTrace(&trace.Trace{Requested: "no-such-model", Status: "error", HTTPStatus: 404, ErrorCode: "model_not_found", Duration: 1})
	body := scrape(t, m)
	base := `gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="feature/support-answer",gen_ai_response_model="gpt-4o-mini"`
	wantLines(t, body,
		`gen_ai_client_operation_duration_seconds_count{error_type="",`+base+`} 1`,
		`gen_ai_client_operation_duration_seconds_bucket{error_type="",`+base+`,le="2.56"} 1`,
		`gen_ai_client_operation_duration_seconds_count{error_type="rate_limited",gen_ai_operation_name="chat",gen_ai_provider_name="none",gen_ai_request_model="cheap",gen_ai_response_model=""} 1`,
		`gen_ai_client_token_usage_sum{`+base+`,gen_ai_token_type="input"} 120`,
		`gen_ai_client_token_usage_sum{`+base+`,gen_ai_token_type="output"} 41`,
		`gen_ai_client_token_usage_bucket{`+base+`,gen_ai_token_type="output",le="64"} 1`,
		`gen_ai_server_time_to_first_token_seconds_sum{`+base+`} 0.3`,
		`gen_ai_server_time_per_output_token_seconds_count{`+base+`} 1`,
	)
	if strings.Contains(body, `gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="none"`) ||
		strings.Contains(body, `gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="none"`) {
		t.Fatalf("a failed call left empty series:\n%s", grepLines(body, "gen_ai_"))
	}
	if strings.Contains(body, "no-such-model") {
		t.Fatal("a name the caller made up became a label value")
	}
}

func TestNewSeries(t *testing.T) {
	m := New()
	m.CallStarted()
	m.CallStarted()
	m.CallEnded()
	m.SetBreaker("gpt-4o", BreakerOpen)
	m.DeclareBreakers("gpt-4o", "gpt-4o-mini")
	m.SetBuildInfo("v1.2.3")
	body := scrape(t, m)
	wantLines(t, body,
		`gantry_requests_in_flight 1`,
		`gantry_circuit_breaker_state{target="gpt-4o"} 2`,
		`gantry_circuit_breaker_state{target="gpt-4o-mini"} 0`,
	)
	if !strings.Contains(body, `gantry_build_info{goversion="go1.`) || !strings.Contains(body, `version="v1.2.3"} 1`) {
		t.Fatalf("build info missing or wrong:\n%s", grepLines(body, "gantry_build_info"))
	}
	if n := strings.Count(body, "\ngantry_build_info{"); n != 1 {
		t.Fatalf("%d build info series after SetBuildInfo, want 1", n)
	}
}

// The exposition passes the client library's lint, the checks promtool
// check metrics runs.
func TestExpositionLint(t *testing.T) {
	m := New()
	m.ObserveTrace(&trace.Trace{Requested: "cheap", Route: "cheap", Model: "m", Provider: "sim", Status: "ok", HTTPStatus: 200,
		Duration: 10, InputTokens: 3, OutputTokens: 4, Attempts: []trace.Attempt{{Model: "m", Provider: "sim", Status: "ok"}}})
	m.WatchCluster(func() ClusterStatus { return ClusterStatus{} })
	m.WatchBudgets(func() []BudgetStatus { return []BudgetStatus{{Name: "b", LimitUSD: 1}} })
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
