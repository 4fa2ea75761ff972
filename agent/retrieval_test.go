package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"gantry/agent/gateway"
	"gantry/api"
	"gantry/config"
	"gantry/pipeline/retrieval/blobs"
	"gantry/pipeline/trace"
)

// helpConfig has a collection and a feature whose releases 1 and 2 pin
// different chunking rules for it; production points at prod.
func helpConfig(prod int) *config.Config {
	cfg := quietConfig()
	cfg.Collections = []config.Collection{{Name: "help", Chunking: config.Chunking{SizeTokens: 64, Markdown: true}}}
	cfg.Features = append(cfg.Features, config.Feature{Name: "help-answer", Releases: []config.Release{helpRelease(1, 40), helpRelease(2, 200)},
		Labels: config.Labels{Production: prod}})
	return cfg
}

// helpRelease answers from the help collection cut into chunks of size
// tokens.
func helpRelease(v, size int) config.Release {
	return config.Release{
		Version:   v,
		System:    "Answer from the context.",
		Template:  []config.Message{{Role: "user", Content: "{{question}}"}},
		Variables: []config.Variable{{Name: "question", Required: true}},
		Route:     "cheap",
		Retrieval: &config.Retrieval{Collection: "help", Chunking: &config.Chunking{SizeTokens: size, Markdown: true}, TopK: 3},
	}
}

const helpDocs = `{"documents":[
 {"id":"reset","format":"markdown","text":"# Resetting the thermostat\n\nHold the dial for ten seconds until the ring blinks blue. The schedule is kept.\n\n## Factory reset\n\nHold the dial and the back button together for twenty seconds. This erases the schedule and the Wi-Fi settings."},
 {"id":"battery","format":"markdown","text":"# Battery\n\nThe thermostat charges from the heating wires. If the battery runs low the ring blinks red and the display dims."},
 {"id":"wifi","format":"markdown","text":"# Wi-Fi\n\nConnect the thermostat to a 2.4 GHz network. Networks on 5 GHz only are not supported."}]}`

// startHelpAgent runs a cluster agent seeded with helpConfig(1).
func startHelpAgent(t *testing.T, mutate func(*Options)) *clusterAgent {
	t.Helper()
	b, err := yaml.Marshal(helpConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "help.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	a := startClusterAgent(t, func(o *Options) {
		o.ConfigFile = file
		if mutate != nil {
			mutate(o)
		}
	})
	a.waitSeeded()
	return a
}

func (a *clusterAgent) askHelp(t *testing.T, question string) (string, []trace.Source) {
	t.Helper()
	var out gateway.InvokeResponse
	body, _ := json.Marshal(map[string]any{"vars": map[string]string{"question": question}})
	a.must(200, "POST", "/v1/features/help-answer/invoke", devKey, string(body), &out)
	var raw string
	eventually(t, "the trace reaches the store", func() bool {
		return a.do("GET", api.TracePath(out.TraceID), devAdmin, nil, &raw) == 200
	})
	var tr trace.Trace
	if err := json.Unmarshal([]byte(raw), &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Sources) == 0 || fmt.Sprint(tr.Sources) != fmt.Sprint(out.Sources) {
		t.Fatalf("trace sources %v, response sources %v", tr.Sources, out.Sources)
	}
	return out.Release, out.Sources
}

const factoryReset = "How do I do a factory reset of the thermostat?"

func TestReleasesKeepTheirSourcesAcrossPromoteAndRollback(t *testing.T) {
	a := startHelpAgent(t, nil)
	var ing api.Ingested
	a.must(200, "POST", api.DocumentsPath("help"), devAdmin, helpDocs, &ing)
	if !ing.Indexed || ing.Documents != 3 || len(ing.Indexes) != 3 {
		t.Fatalf("ingest answered %+v; want 3 documents indexed under the collection's rules and each release's", ing)
	}
	rel, first := a.askHelp(t, factoryReset)
	if rel != "help-answer@v1" || first[0].Document != "reset" {
		t.Fatalf("release %s sources %v; want v1 with the reset article first", rel, first)
	}
	a.must(200, "POST", api.LabelsPath("help-answer"), devAdmin, api.LabelMove{Action: config.MovePromote, To: 2}, nil)
	rel, second := a.askHelp(t, factoryReset)
	if rel != "help-answer@v2" || fmt.Sprint(second) == fmt.Sprint(first) || second[0].Index == first[0].Index {
		t.Fatalf("v2 served %s with %v: want its own index and chunks, not v1's %v", rel, second, first)
	}
	a.must(200, "POST", api.LabelsPath("help-answer"), devAdmin, api.LabelMove{Action: config.MovePromote, To: 1}, nil)
	rel, again := a.askHelp(t, factoryReset)
	if rel != "help-answer@v1" || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("after rollback %s served %v, want exactly v1's sources %v", rel, again, first)
	}
}

func TestIngestRefusesBadDocuments(t *testing.T) {
	a := startHelpAgent(t, nil)
	var before api.Status
	a.must(200, "GET", api.PathStatus, devAdmin, nil, &before)
	// More chunks at 40 tokens (release v1's rules) than a document may
	// have, though each line and the whole are within bounds.
	tooManyChunks := strings.Repeat(strings.Repeat("a ", 8000)+"\n", 120)
	for name, tc := range map[string]struct{ path, body, want string }{
		"unknown collection": {api.DocumentsPath("nope"), helpDocs, "no collection nope"},
		"binary":             {api.DocumentsPath("help"), `{"documents":[{"id":"bin","text":"a\u0000b"}]}`, "NUL byte"},
		"not JSON":           {api.DocumentsPath("help"), `{"documents":`, "documents"},
		"empty":              {api.DocumentsPath("help"), `{"documents":[]}`, "no documents"},
		"bad id":             {api.DocumentsPath("help"), `{"documents":[{"id":"../x","text":"a"}]}`, "id may hold"},
		"uncuttable":         {api.DocumentsPath("help"), `{"documents":[{"id":"ok","text":"fine"},{"id":"big","text":"` + strings.ReplaceAll(tooManyChunks, "\n", `\n`) + `"}]}`, "chunks"},
	} {
		var e api.ErrorResponse
		code := a.do("POST", tc.path, devAdmin, tc.body, &e)
		if code < 400 || !strings.Contains(e.Error.Message, tc.want) {
			t.Fatalf("%s: status %d message %q; want a clear error naming %q", name, code, e.Error.Message, tc.want)
		}
	}
	// Nothing was committed: the state moves on only with the agent's own
	// counters and spend batches, never a document command.
	var audit api.AuditList
	a.must(200, "GET", api.PathAudit+"?limit=1000", devAdmin, nil, &audit)
	for _, e := range audit.Entries {
		if e.Index > before.StateIndex && strings.Contains(e.Command, "documents") {
			t.Fatalf("a refused upload was committed: %+v", e)
		}
	}
	var list api.DocumentList
	a.must(200, "GET", api.DocumentsPath("help"), devAdmin, nil, &list)
	if len(list.Documents) != 0 {
		t.Fatalf("refused uploads left documents %v", list.Documents)
	}
}

// Raw documents are kept, so a release with chunking rules no index was
// built for gets its index from them, without uploading anything again.
func TestNewChunkingRulesAreBuiltFromKeptDocuments(t *testing.T) {
	a := startHelpAgent(t, nil)
	a.must(200, "POST", api.DocumentsPath("help"), devAdmin, helpDocs, nil)
	var cols api.Collections
	a.must(200, "GET", api.PathCollections, devAdmin, nil, &cols)
	old := map[string]bool{}
	for _, x := range cols.Collections[0].Indexes {
		old[x.RulesHash] = true
	}

	rel := helpRelease(0, 24)
	var created api.Release
	a.must(201, "POST", api.ReleasesPath("help-answer"), devAdmin, rel, &created)
	a.must(200, "POST", api.LabelsPath("help-answer"), devAdmin, api.LabelMove{Action: config.MovePromote, To: created.Version}, nil)
	eventually(t, "the new rules' index catches up", func() bool {
		cols = api.Collections{}
		a.must(200, "GET", api.PathCollections, devAdmin, nil, &cols)
		return len(cols.Collections) == 1 && cols.Collections[0].CaughtUp && len(cols.Collections[0].Indexes) == 4
	})
	got, sources := a.askHelp(t, factoryReset)
	if got != created.ID || sources[0].Document != "reset" {
		t.Fatalf("%s served %v; want the reset article from the index built for 24-token chunks", got, sources)
	}
	var ix *api.CollectionIndex
	for i, x := range cols.Collections[0].Indexes {
		if x.Version == sources[0].Index {
			ix = &cols.Collections[0].Indexes[i]
		}
	}
	if ix == nil || old[ix.RulesHash] || ix.Applied != cols.Collections[0].ManifestIndex || ix.Chunks == 0 {
		t.Fatalf("sources name index %s; want the new rules' caught-up index among %+v (before: %v)", sources[0].Index, cols.Collections[0].Indexes, old)
	}
}

// A deleted document is no longer retrieved, and its body is collected
// once no manifest names it.
func TestDeleteDocumentAndCollectItsBody(t *testing.T) {
	a := startHelpAgent(t, func(o *Options) {
		// The grace covers the moment between an upload storing its
		// bodies and its manifest change reaching this agent's state.
		o.docTimings = docTimings{gcEvery: time.Millisecond, gcGrace: 2 * time.Second}
	})
	a.must(200, "POST", api.DocumentsPath("help"), devAdmin, helpDocs, nil)
	var list api.DocumentList
	a.must(200, "GET", api.DocumentsPath("help"), devAdmin, nil, &list)
	if len(list.Documents) != 3 || list.Documents[1].ID != "reset" || !blobs.ValidHash(list.Documents[1].Hash) || list.Documents[1].Origin != "a1" {
		t.Fatalf("manifest %+v", list)
	}
	reset := list.Documents[1]
	dir := filepath.Join(a.dataDir, "documents")
	if !hasBlob(t, dir, reset.Hash) {
		t.Fatal("the uploaded body is not in the blob store")
	}

	var ing api.Ingested
	a.must(200, "DELETE", api.DocumentsPath("help")+"/reset", devAdmin, nil, &ing)
	if !ing.Indexed {
		t.Fatalf("delete answered %+v", ing)
	}
	_, sources := a.askHelp(t, factoryReset+" Hold the dial?")
	for _, s := range sources {
		if s.Document == "reset" {
			t.Fatalf("a deleted document is still retrieved: %v", sources)
		}
	}
	if code := a.do("DELETE", api.DocumentsPath("help")+"/reset", devAdmin, nil, nil); code != 404 {
		t.Fatalf("deleting it again: status %d, want 404", code)
	}
	eventually(t, "the deleted document's body is collected", func() bool { return !hasBlob(t, dir, reset.Hash) })
	for _, d := range list.Documents {
		if d.ID != "reset" && !hasBlob(t, dir, d.Hash) {
			t.Fatalf("the body of %s, still in the manifest, was collected", d.ID)
		}
	}
}

func hasBlob(t *testing.T, dir, hash string) bool {
	t.Helper()
	s, err := blobs.Open(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return s.Has(hash)
}

// An agent that lacks a body says so and keeps answering from its indexes
// as they are; once the body is back it catches up on its own.
func TestMissingBodyIsReportedUntilItIsBack(t *testing.T) {
	// A retry a minute away: the upload below must not wait for it.
	a := startHelpAgent(t, func(o *Options) { o.docTimings = docTimings{retry: time.Minute} })
	a.must(200, "POST", api.DocumentsPath("help"), devAdmin, helpDocs, nil)
	var list api.DocumentList
	a.must(200, "GET", api.DocumentsPath("help"), devAdmin, nil, &list)
	battery := list.Documents[0]
	if battery.ID != "battery" {
		t.Fatalf("manifest %+v", list.Documents)
	}
	hx := strings.TrimPrefix(battery.Hash, blobs.Prefix)
	if err := os.Remove(filepath.Join(a.dataDir, "documents", hx[:2], hx)); err != nil {
		t.Fatal(err)
	}

	// New rules need every body; this lone agent has nowhere to fetch
	// the lost one from.
	var created api.Release
	a.must(201, "POST", api.ReleasesPath("help-answer"), devAdmin, helpRelease(0, 24), &created)
	a.must(200, "POST", api.LabelsPath("help-answer"), devAdmin, api.LabelMove{Action: config.MovePromote, To: created.Version}, nil)
	var cols api.Collections
	eventually(t, "the collection is reported behind", func() bool {
		cols = api.Collections{}
		a.must(200, "GET", api.PathCollections, devAdmin, nil, &cols)
		c := cols.Collections[0]
		return len(c.Indexes) == 4 && !c.CaughtUp && c.Missing == 1 && strings.Contains(c.Error, battery.Hash)
	})
	var metrics string
	a.do("GET", "/metrics", "", nil, &metrics)
	for _, want := range []string{`gantry_collection_behind{collection="help"} 1`, `gantry_collection_documents_missing{collection="help"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	if rel, sources := a.askHelp(t, factoryReset); rel != created.ID || sources[0].Document != "reset" {
		t.Fatalf("while behind, %s served %v; want the new release answering from what its index has", rel, sources)
	}

	// The same upload again brings the body back; the manifest does not
	// change, and the agent takes it up at once.
	var ing api.Ingested
	a.must(200, "POST", api.DocumentsPath("help"), devAdmin, helpDocs, &ing)
	cols = api.Collections{}
	a.must(200, "GET", api.PathCollections, devAdmin, nil, &cols)
	if c := cols.Collections[0]; !ing.Indexed || !c.CaughtUp || c.Missing != 0 || c.Error != "" {
		t.Fatalf("after the body came back: upload %+v, collection %+v", ing, c)
	}
	for _, ix := range cols.Collections[0].Indexes {
		if ix.Applied != cols.Collections[0].ManifestIndex || ix.Chunks == 0 {
			t.Fatalf("index %+v has not applied manifest %d", ix, cols.Collections[0].ManifestIndex)
		}
	}
	a.do("GET", "/metrics", "", nil, &metrics)
	if !strings.Contains(metrics, `gantry_collection_behind{collection="help"} 0`) {
		t.Fatal("gantry_collection_behind stays 1 after catching up")
	}
}
