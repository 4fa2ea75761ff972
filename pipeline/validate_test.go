package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
)

// answers is a provider that replies with the given texts in turn.
type answers struct {
	mu    sync.Mutex
	texts []string
	seen  [][]chat.Message
}

func (a *answers) Complete(_ context.Context, req *chat.Request) (*chat.Response, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, req.Messages)
	text := a.texts[0]
	if len(a.texts) > 1 {
		a.texts = a.texts[1:]
	}
	return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: chat.Text(text)}}}}, nil
}

func (a *answers) Stream(context.Context, *chat.Request) (provider.Stream, error) {
	return nil, errors.New("not streamed in these tests")
}

func schemaGateway(t *testing.T, repair int, texts ...string) (*Gateway, *answers) {
	t.Helper()
	up := &answers{texts: texts}
	cfg := &config.Config{
		Providers: []config.Provider{{Name: "p", Kind: config.KindOpenAI}},
		Models:    []config.Model{{Name: "m", Provider: "p"}},
		Keys:      []config.Key{{Name: "test", Hash: config.HashKey(testKey)}},
		Features: []config.Feature{{Name: "triage", Labels: config.Labels{Production: 1}, Releases: []config.Release{{
			Version: 1, Route: "m", Repair: repair,
			Template: []config.Message{{Role: "user", Content: "classify"}},
			Schema: map[string]any{"type": "object", "required": []any{"priority"},
				"properties": map[string]any{"priority": map[string]any{"type": "integer", "maximum": 3}}},
		}}}},
	}
	snap, err := Compile(cfg, NewProviderSet(func(config.Provider) (provider.Provider, error) { return up, nil }))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGateway(Deps{})
	g.Swap(snap)
	return g, up
}

func invokeCall() *Call {
	return &Call{ID: "v", Received: time.Now(), Entry: EntryInvoke, Secret: testKey, Req: &chat.Request{Model: "feature/triage"}}
}

func TestValidationRepairsOnce(t *testing.T) {
	g, up := schemaGateway(t, 1, `{"priority": 9}`, `{"priority": 2}`)
	c := invokeCall()
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if c.Output() != `{"priority": 2}` {
		t.Fatalf("output %q, want the repaired answer", c.Output())
	}
	if len(c.Validation) != 1 || !strings.HasPrefix(c.Validation[0], "schema /priority") {
		t.Fatalf("validation %q, want one schema failure at /priority", c.Validation)
	}
	repair := up.seen[1]
	if last := repair[len(repair)-1].Content.Text; !strings.Contains(last, "/priority") {
		t.Fatalf("the repair request does not name the failing path: %q", last)
	}
}

func TestValidationFailsAfterRepairBudget(t *testing.T) {
	g, up := schemaGateway(t, 1, `not json`, `{"priority": "high"}`)
	c := invokeCall()
	err := g.Serve(context.Background(), c)
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Code != "output_validation_failed" || !strings.Contains(ce.Message, "/priority") {
		t.Fatalf("got %v, want output_validation_failed naming /priority", err)
	}
	if len(up.seen) != 2 {
		t.Fatalf("%d upstream calls, want the first and one repair", len(up.seen))
	}
	if len(c.Validation) != 2 || !strings.HasPrefix(c.Validation[0], "json ") || !strings.HasPrefix(c.Validation[1], "schema ") {
		t.Fatalf("validation %q, want a json failure then a schema failure", c.Validation)
	}
}

func TestValidationWithoutRepairFailsAtOnce(t *testing.T) {
	g, up := schemaGateway(t, 0, `{}`)
	if err := g.Serve(context.Background(), invokeCall()); err == nil {
		t.Fatal("an output missing a required field was accepted")
	}
	if len(up.seen) != 1 {
		t.Fatalf("%d upstream calls with no repair budget, want 1", len(up.seen))
	}
}

// TestCallerSchemaRefusedBeforeAnythingIsSpent: a response_format schema
// the validator cannot use (an invalid keyword, a remote $schema, 2,000
// nested levels) is the caller's 400 before the upstream is called.
func TestCallerSchemaRefusedBeforeAnythingIsSpent(t *testing.T) {
	g, up := schemaGateway(t, 0, `{"priority":1}`)
	for _, schema := range []string{
		`{"type":"object","minProperties":"x"}`,
		`{"$schema":"http://schemas.example/s","type":"object"}`,
		strings.Repeat(`{"items":`, 2000) + `{}` + strings.Repeat("}", 2000),
	} {
		c := &Call{ID: newTestID(), Received: time.Now(), Secret: testKey, Req: &chat.Request{Model: "m",
			Messages:       []chat.Message{{Role: "user", Content: chat.Text("hi")}},
			ResponseFormat: &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: "x", Schema: []byte(schema)}}}}
		err := g.Serve(context.Background(), c)
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "invalid_schema" || ce.Param != "response_format.json_schema.schema" {
			t.Fatalf("%.60s: got %v, want a 400 invalid_schema", schema, err)
		}
	}
	if len(up.seen) != 0 {
		t.Fatalf("the upstream was called %d times for refused schemas", len(up.seen))
	}
	// A good schema is enforced on the answer.
	c := &Call{ID: newTestID(), Received: time.Now(), Secret: testKey, Req: &chat.Request{Model: "m",
		Messages:       []chat.Message{{Role: "user", Content: chat.Text("hi")}},
		ResponseFormat: &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: "x", Schema: []byte(`{"type":"object","required":["other"]}`)}}}}
	if err := g.Serve(context.Background(), c); err == nil || !strings.Contains(err.Error(), "other") {
		t.Fatalf("an answer missing a required field: %v", err)
	}
}

// TestRepairedAnswerIsCachedUnderTheRequest: an answer that needed a
// repair is filed under the key the caller's request was looked up by, so
// the same request next time is a cache hit and calls nothing upstream.
func TestRepairedAnswerIsCachedUnderTheRequest(t *testing.T) {
	g, up := schemaGateway(t, 1, `{"priority": 9}`, `{"priority": 2}`)
	snap := g.Snapshot()
	snap.features["triage"].releases[1].Cache = &config.CachePolicy{TTL: config.Duration(time.Minute)}
	g.cache = cache.New(1<<20, time.Now)
	if err := g.Serve(context.Background(), invokeCall()); err != nil {
		t.Fatalf("first call: %v", err)
	}
	c := invokeCall()
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if !c.Cached || c.Output() != `{"priority": 2}` || len(up.seen) != 2 {
		t.Fatalf("second call cached %v output %q after %d upstream calls; want the repaired answer from the cache after 2", c.Cached, c.Output(), len(up.seen))
	}
}

// TestACallIsServedFromItsOwnSnapshot: a request decoded against one
// configuration is served from it even when another is installed before
// Serve runs.
func TestACallIsServedFromItsOwnSnapshot(t *testing.T) {
	g, _ := schemaGateway(t, 0, `{"priority": 1}`)
	decodedAgainst := g.Snapshot()
	empty, err := Compile(&config.Config{Providers: []config.Provider{{Name: "p", Kind: config.KindOpenAI}}, Models: []config.Model{{Name: "m", Provider: "p"}}},
		NewProviderSet(func(config.Provider) (provider.Provider, error) { return &answers{texts: []string{"x"}}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	c := invokeCall()
	c.Snap = decodedAgainst
	g.Swap(empty) // no key, no feature
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatalf("serve: %v (the call saw the newer configuration)", err)
	}
	if err := g.Serve(context.Background(), invokeCall()); err == nil || err.Status != 401 {
		t.Fatalf("a call without a snapshot of its own: got %v, want the new configuration's 401", err)
	}
}
