package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/config"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
	"gantry/pipeline/trace"
)

const testKey = "gk_test-key-0123456789"

// newTestGateway serves a config whose providers are the scripted ones,
// by name. Every trace lands in the returned slice.
func newTestGateway(t *testing.T, providers ...*scripted) (*Gateway, *[]*trace.Trace) {
	t.Helper()
	cfg := &config.Config{Keys: []config.Key{{Name: "test", Team: "qa", Hash: config.HashKey(testKey)}}}
	byName := map[string]*scripted{}
	var targets []config.Target
	var fallbacks []string
	for i, p := range providers {
		byName[p.name] = p
		cfg.Providers = append(cfg.Providers, config.Provider{Name: p.name, Kind: config.KindOpenAI})
		cfg.Models = append(cfg.Models, config.Model{Name: p.name, Provider: p.name, Price: config.Price{Input: 1, Output: 2}})
		if i == 0 {
			targets = append(targets, config.Target{Model: p.name, Weight: 1})
		} else {
			fallbacks = append(fallbacks, p.name)
		}
	}
	r := fast
	r.Name, r.Targets, r.Fallbacks = "main", targets, fallbacks
	cfg.Routes = []config.Route{r}
	set := NewProviderSet(func(p config.Provider) (provider.Provider, error) { return byName[p.Name], nil })
	snap, err := Compile(cfg, set)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	var mu sync.Mutex
	var traces []*trace.Trace
	g := NewGateway(Deps{Record: func(tr *trace.Trace) {
		mu.Lock()
		traces = append(traces, tr)
		mu.Unlock()
	}})
	g.Swap(snap)
	return g, &traces
}

func streamCall(model string) (*Call, *[]string) {
	var got []string
	c := &Call{ID: "r1", TraceID: trace.NewTraceID(), Received: time.Now(), Entry: EntryChat, Secret: testKey,
		Req: &chat.Request{Model: model, Stream: true, Messages: []chat.Message{{Role: "user", Content: chat.Text("hi")}}}}
	c.Emit = func(ch *chat.Chunk) error {
		got = append(got, *ch.Choices[0].Delta.Content)
		return nil
	}
	return c, &got
}

func TestStreamFailingBeforeFirstTokenFallsBack(t *testing.T) {
	primary := &scripted{name: "primary", steps: []step{{cut: &provider.Error{Kind: provider.KindCut}}}}
	backup := &scripted{name: "backup", steps: []step{{chunks: []string{"hel", "lo"}}}}
	g, traces := newTestGateway(t, primary, backup)
	c, got := streamCall("main")
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if strings.Join(*got, "") != "hello" {
		t.Fatalf("client got %q, want the backup's hello", strings.Join(*got, ""))
	}
	tr := (*traces)[0]
	if tr.Model != "backup" || tr.Fallbacks != 1 || tr.Status != "ok" {
		t.Fatalf("trace model %q fallbacks %d status %q; want backup, 1, ok", tr.Model, tr.Fallbacks, tr.Status)
	}
}

func TestStreamCutAfterFirstTokenIsAnError(t *testing.T) {
	primary := &scripted{name: "primary", steps: []step{{chunks: []string{"hel"}, cut: errors.New("connection reset")}}}
	backup := &scripted{name: "backup", steps: []step{{chunks: []string{"other"}}}}
	g, traces := newTestGateway(t, primary, backup)
	c, got := streamCall("main")
	err := g.Serve(context.Background(), c)
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Code != "stream_cut" || ce.Status != 502 {
		t.Fatalf("got %v, want a 502 stream_cut error", err)
	}
	if strings.Join(*got, "") != "hel" {
		t.Fatalf("client got %q; after output was sent nothing else may follow", strings.Join(*got, ""))
	}
	if backup.count() != 0 {
		t.Fatalf("backup was called after the client had output")
	}
	if tr := (*traces)[0]; tr.Status != "error" || tr.ErrorCode != "stream_cut" {
		t.Fatalf("trace status %q code %q, want error stream_cut", tr.Status, tr.ErrorCode)
	}
}

func TestServeRecordsEveryCall(t *testing.T) {
	primary := &scripted{name: "primary"}
	g, traces := newTestGateway(t, primary)
	cases := []struct {
		name   string
		secret string
		model  string
		status int
	}{
		{"ok", testKey, "main", 200},
		{"no key", "", "main", 401},
		{"wrong key", "gk_not-a-real-key-000", "main", 401},
		{"key of wrong shape", "sk-abc", "main", 401},
		{"unknown model", testKey, "gpt-nope", 404},
		{"unknown feature", testKey, "feature/nope", 404},
	}
	for i, tc := range cases {
		c := &Call{ID: tc.name, Received: time.Now(), Secret: tc.secret,
			Req: &chat.Request{Model: tc.model, Messages: []chat.Message{{Role: "user", Content: chat.Text("hi")}}}}
		err := g.Serve(context.Background(), c)
		tr := (*traces)[i]
		if tr.HTTPStatus != tc.status {
			t.Fatalf("%s: trace status %d (err %v), want %d", tc.name, tr.HTTPStatus, err, tc.status)
		}
		if (err == nil) != (tc.status == 200) {
			t.Fatalf("%s: err %v with status %d", tc.name, err, tc.status)
		}
	}
	ok := (*traces)[0]
	if ok.InputTokens != 10 || ok.OutputTokens != 5 {
		t.Fatalf("tokens %d/%d, want the provider's 10/5", ok.InputTokens, ok.OutputTokens)
	}
	if want := (10*1.0 + 5*2.0) / 1e6; ok.CostUSD != want {
		t.Fatalf("cost %v, want %v", ok.CostUSD, want)
	}
	if len(ok.Spans) != len(stages) {
		t.Fatalf("%d spans, want one per stage (%d)", len(ok.Spans), len(stages))
	}
}

func TestPanicInStageIsRecordedAs500(t *testing.T) {
	primary := &scripted{name: "primary"}
	g, traces := newTestGateway(t, primary)
	c := &Call{ID: "p", Received: time.Now(), Secret: testKey, Req: &chat.Request{Model: "main", Stream: true,
		Messages: []chat.Message{{Role: "user", Content: chat.Text("hi")}}}}
	c.Emit = func(*chat.Chunk) error { panic("boom") }
	primary.steps = []step{{chunks: []string{"x"}}}
	err := g.Serve(context.Background(), c)
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Status != 500 {
		t.Fatalf("got %v, want a 500", err)
	}
	if len(*traces) != 1 || (*traces)[0].HTTPStatus != 500 {
		t.Fatalf("the panicking call was not recorded as a 500")
	}
}

// TestCallsOfOneTraceKeepTheirOwnIDs: two calls sent with the same W3C
// trace id (by two keys, or two steps of one distributed trace) produce two
// trace records keyed by their own request ids, both in that trace.
func TestCallsOfOneTraceKeepTheirOwnIDs(t *testing.T) {
	g, traces := newTestGateway(t, &scripted{name: "primary"})
	w3c := trace.NewTraceID()
	for _, id := range []string{"call-a", "call-b"} {
		c := &Call{ID: id, TraceID: w3c, Received: time.Now(), Secret: testKey,
			Req: &chat.Request{Model: "main", Messages: []chat.Message{{Role: "user", Content: chat.Text("hi")}}}}
		if err := g.Serve(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	store, err := trace.Open("", trace.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range *traces {
		store.Add(tr)
	}
	for _, id := range []string{"call-a", "call-b"} {
		if tr, ok := store.Get(id); !ok || tr.ID != id || tr.TraceID != w3c.String() {
			t.Fatalf("Get(%s) = %+v, %v", id, tr, ok)
		}
	}
	if n := len(store.Search(trace.Query{TraceID: w3c.String()})); n != 2 {
		t.Fatalf("%d calls listed in the shared trace, want 2", n)
	}
}

// An exporter builds its spans from the trace alone: the trace carries the
// caller's span, the gateway's, the sampling parameters and the answer's id.
func TestTraceCarriesWhatExportersNeed(t *testing.T) {
	g, traces := newTestGateway(t, &scripted{name: "primary"})
	temp := 0.3
	parent, span := trace.NewSpanID(), trace.NewSpanID()
	c := &Call{ID: "r7", TraceID: trace.NewTraceID(), ParentID: parent, SpanID: span, Received: time.Now(), Secret: testKey,
		Req: &chat.Request{Model: "main", MaxTokens: 64, Temperature: &temp, Messages: []chat.Message{{Role: "user", Content: chat.Text("hi")}}}}
	if err := g.Serve(context.Background(), c); err != nil {
		t.Fatalf("serve: %v", err)
	}
	tr := (*traces)[0]
	if tr.ParentID != parent.String() || tr.SpanID != span.String() {
		t.Fatalf("parent %q span %q, want %s and %s", tr.ParentID, tr.SpanID, parent, span)
	}
	if tr.Params == nil || tr.Params.MaxTokens != 64 || tr.Params.Temperature == nil || *tr.Params.Temperature != 0.3 || tr.Params.TopP != nil {
		t.Fatalf("params %+v, want max_tokens 64 and temperature 0.3 only", tr.Params)
	}
	if tr.ResponseID != "chatcmpl-r7" || strings.Join(tr.FinishReasons, ",") != "stop" {
		t.Fatalf("response id %q finish reasons %v, want chatcmpl-r7 and [stop]", tr.ResponseID, tr.FinishReasons)
	}
}

// countingObserver records what the gateway tells an Observer.
type countingObserver struct {
	mu             sync.Mutex
	started, ended int
	models         []string
}

func (o *countingObserver) CallStarted()                { o.mu.Lock(); o.started++; o.mu.Unlock() }
func (o *countingObserver) CallEnded()                  { o.mu.Lock(); o.ended++; o.mu.Unlock() }
func (o *countingObserver) SemanticLookup(string, bool) {}

func (o *countingObserver) DeclareBreakers(models ...string) {
	o.mu.Lock()
	o.models = models
	o.mu.Unlock()
}
func (o *countingObserver) CacheLookup(string, bool)         {}
func (o *countingObserver) ValidationFailure(_, _, _ string) {}

func TestObserverHearsCallsAndModels(t *testing.T) {
	g, _ := newTestGateway(t, &scripted{name: "primary"}, &scripted{name: "backup"})
	obs := &countingObserver{}
	g.obs = obs
	g.Swap(g.Snapshot())
	if strings.Join(obs.models, ",") != "primary,backup" {
		t.Fatalf("declared %v, want the configured models", obs.models)
	}
	for _, secret := range []string{testKey, "wrong"} {
		c := &Call{ID: "r", Received: time.Now(), Secret: secret,
			Req: &chat.Request{Model: "main", Messages: []chat.Message{{Role: "user", Content: chat.Text("hi")}}}}
		g.Serve(context.Background(), c)
	}
	if obs.started != 2 || obs.ended != 2 {
		t.Fatalf("started %d ended %d, want 2 and 2 whatever the outcome", obs.started, obs.ended)
	}
}
