//go:build integration

package deploy

import (
	"gantry/internal/jaegertest"

	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gantry/internal/proctest"
)

// TestDemoClusterReachesJaegerAndPrometheus runs `gantry demo --headless`
// (three agents, simulated users) exporting spans over OTLP to a real
// Jaeger, scraped by a real Prometheus. A call sent with the caller's
// traceparent arrives in Jaeger as a span with the GenAI attributes, under
// the caller's span, with its stage spans under it; Prometheus holds the
// cost, latency, token and breaker series of every agent.
func TestDemoClusterReachesJaegerAndPrometheus(t *testing.T) {
	promBin := needBinary(t, "prometheus", "apt-get install prometheus")
	bin := buildGantry(t)
	dir := t.TempDir()

	j := jaegertest.Start(t)

	// The agents inherit the demo's environment: spans go to Jaeger over
	// gRPC, batched for a short moment; Jaeger takes no metrics.
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + j.OTLPGRPC, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_METRICS_EXPORTER": "none", "OTEL_BSP_SCHEDULE_DELAY": "200", "TMPDIR": dir,
	} {
		t.Setenv(k, v)
	}
	d := startDemo(t, bin)

	promAddr := proctest.FreeAddr(t)
	promCfg := filepath.Join(dir, "prometheus.yml")
	var targets []string
	for _, a := range d.agents {
		targets = append(targets, strings.TrimPrefix(a, "http://"))
	}
	writeFile(t, promCfg, fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gantry\n    static_configs:\n      - targets: [%s]\n",
		`"`+strings.Join(targets, `", "`)+`"`))
	proctest.Start(t, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	prom := "http://" + promAddr
	waitOK(t, prom+"/-/ready", 30*time.Second)

	// One call of our own, as a traced service would make it.
	const traceID, caller = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	var trace string
	for i := 0; trace == ""; i++ {
		req, _ := http.NewRequest("POST", d.agents[1]+"/v1/features/support-answer/invoke",
			strings.NewReader(`{"vars":{"customer":"Ana","question":"How long does a refund take?"},"user":"it-user","journey":"refund"}`))
		req.Header.Set("Authorization", "Bearer "+d.key)
		req.Header.Set("traceparent", "00-"+traceID+"-"+caller+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			trace = traceID
		} else if i > 20 {
			t.Fatalf("support-answer answered %s 20 times", resp.Status)
		}
	}
	spans := j.Spans(t, trace, 3)
	var call *jaegertest.Span
	for _, s := range spans {
		if s.Parent() == caller {
			call = s
		}
	}
	if call == nil {
		t.Fatalf("no span of trace %s has the caller's span %s as parent (%d spans)", trace, caller, len(spans))
	}
	tags := call.Attrs()
	if call.OperationName != "chat feature/support-answer" {
		t.Errorf("call span named %q", call.OperationName)
	}
	for k, want := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.request.model": "feature/support-answer",
		"gantry.feature": "support-answer", "gantry.journey": "refund", "gantry.node": "agent-2"} {
		if tags[k] != want {
			t.Errorf("call span tag %s = %q, want %q", k, tags[k], want)
		}
	}
	for _, k := range []string{"gen_ai.provider.name", "gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
		"gantry.release.id", "gantry.release.hash", "gantry.label", "gantry.cost_usd", "gantry.retrieval.sources"} {
		if tags[k] == "" {
			t.Errorf("call span lacks tag %s", k)
		}
	}
	children := 0
	for _, s := range spans {
		if s.Parent() == call.SpanID {
			children++
		}
	}
	if children == 0 {
		t.Errorf("no stage span under the call span")
	}

	// Each agent's series, once Prometheus has scraped traffic twice.
	series := []string{
		`sum by (instance) (rate(gantry_cost_usd_total[30s])) > 0`,
		`histogram_quantile(0.9, sum by (instance, le) (rate(gen_ai_client_operation_duration_seconds_bucket[30s])))`,
		`sum by (instance) (rate(gen_ai_client_token_usage_sum{gen_ai_token_type="output"}[30s])) > 0`,
		`count by (instance) (gantry_circuit_breaker_state)`,
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, q := range series {
		for {
			n, err := promQuery(t, prom, q)
			if err != nil {
				t.Fatalf("Prometheus refused %s: %v", q, err)
			}
			if n == len(d.agents) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d agents have data after 60s", q, n, len(d.agents))
			}
			time.Sleep(time.Second)
		}
	}
}

type demoRun struct {
	agents []string
	key    string
}

var demoAgent = regexp.MustCompile(`^\s*agent-\d\s+(http://\S+)$`)

// startDemo runs `gantry demo --headless` until the test ends.
func startDemo(t *testing.T, bin string) demoRun {
	t.Helper()
	cmd := exec.Command(bin, "demo", "--headless")
	var logs strings.Builder
	cmd.Stderr = &logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("demo output:\n%s", proctest.Tail(logs.String(), 4000))
		}
	})
	var d demoRun
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if m := demoAgent.FindStringSubmatch(line); m != nil {
			d.agents = append(d.agents, m[1])
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "export GANTRY_KEY="); ok {
			d.key = v
		}
		if strings.HasPrefix(line, "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, out)
	if len(d.agents) != 3 || d.key == "" {
		t.Fatalf("the demo printed %d agents and key %q", len(d.agents), d.key)
	}
	return d
}
