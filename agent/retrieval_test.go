package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"gantry/agent/gateway"
	"gantry/api"
	"gantry/config"
	"gantry/pipeline/trace"
)

// helpConfig has a collection and a feature whose releases 1 and 2 pin
// different chunking rules for it; production points at prod.
func helpConfig(prod int) *config.Config {
	cfg := quietConfig()
	cfg.Collections = []config.Collection{{Name: "help", Chunking: config.Chunking{SizeTokens: 64, Markdown: true}}}
	rel := func(v, size int) config.Release {
		return config.Release{
			Version:   v,
			System:    "Answer from the context.",
			Template:  []config.Message{{Role: "user", Content: "{{question}}"}},
			Variables: []config.Variable{{Name: "question", Required: true}},
			Route:     "cheap",
			Retrieval: &config.Retrieval{Collection: "help", Chunking: &config.Chunking{SizeTokens: size, Markdown: true}, TopK: 3},
		}
	}
	cfg.Features = append(cfg.Features, config.Feature{Name: "help-answer", Releases: []config.Release{rel(1, 40), rel(2, 200)},
		Labels: config.Labels{Production: prod}})
	return cfg
}

const helpDocs = `{"documents":[
 {"id":"reset","format":"markdown","text":"# Resetting the thermostat\n\nHold the dial for ten seconds until the ring blinks blue. The schedule is kept.\n\n## Factory reset\n\nHold the dial and the back button together for twenty seconds. This erases the schedule and the Wi-Fi settings."},
 {"id":"battery","format":"markdown","text":"# Battery\n\nThe thermostat charges from the heating wires. If the battery runs low the ring blinks red and the display dims."},
 {"id":"wifi","format":"markdown","text":"# Wi-Fi\n\nConnect the thermostat to a 2.4 GHz network. Networks on 5 GHz only are not supported."}]}`

func (a *testAgent) adminPost(path, body string) (int, string) {
	a.t.Helper()
	req := mustRequest(a.t, "POST", a.srv.URL+path, body)
	req.Header.Set("Authorization", "Bearer "+devAdmin)
	resp, err := defaultClient().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (a *testAgent) askHelp(t *testing.T) (string, []trace.Source) {
	t.Helper()
	resp := a.post("/v1/features/help-answer/invoke", `{"vars":{"question":"How do I do a factory reset of the thermostat?"}}`)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("invoke: %d %s", resp.StatusCode, b)
	}
	out := decode[gateway.InvokeResponse](t, resp)
	tr := a.waitTrace(out.TraceID)
	if len(tr.Sources) == 0 || fmt.Sprint(tr.Sources) != fmt.Sprint(out.Sources) {
		t.Fatalf("trace sources %v, response sources %v", tr.Sources, out.Sources)
	}
	return out.Release, out.Sources
}

func TestReleasesKeepTheirSourcesAcrossPromoteAndRollback(t *testing.T) {
	a := startAgent(t, helpConfig(1))
	if code, body := a.adminPost("/admin/v1/collections/help/documents", helpDocs); code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}
	rel, first := a.askHelp(t)
	if rel != "help-answer@v1" || first[0].Document != "reset" {
		t.Fatalf("release %s sources %v; want v1 with the reset article first", rel, first)
	}
	if err := a.s.Reload(withDevKey(helpConfig(2))); err != nil {
		t.Fatal(err)
	}
	rel, second := a.askHelp(t)
	if rel != "help-answer@v2" || fmt.Sprint(second) == fmt.Sprint(first) || second[0].Index == first[0].Index {
		t.Fatalf("v2 served %s with %v: want its own index and chunks, not v1's %v", rel, second, first)
	}
	if err := a.s.Reload(withDevKey(helpConfig(1))); err != nil {
		t.Fatal(err)
	}
	rel, again := a.askHelp(t)
	if rel != "help-answer@v1" || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("after rollback %s served %v, want exactly v1's sources %v", rel, again, first)
	}
}

func TestIngestRefusesBadDocuments(t *testing.T) {
	a := startAgent(t, helpConfig(1))
	for name, body := range map[string]string{
		"unknown collection": "",
		"binary":             `{"documents":[{"id":"bin","text":"a\u0000b"}]}`,
		"not JSON":           `{"documents":`,
		"empty":              `{"documents":[]}`,
	} {
		path := "/admin/v1/collections/help/documents"
		if name == "unknown collection" {
			path, body = "/admin/v1/collections/nope/documents", helpDocs
		}
		code, out := a.adminPost(path, body)
		var e api.ErrorResponse
		if code < 400 || json.Unmarshal([]byte(out), &e) != nil || e.Error.Message == "" {
			t.Fatalf("%s: status %d body %s; want a clear error", name, code, out)
		}
		if !strings.Contains(out, "error") {
			t.Fatalf("%s: %s", name, out)
		}
	}
}
