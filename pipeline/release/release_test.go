package release

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"gantry/config"
)

func ptr[T any](v T) *T { return &v }

func example(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Example()
	cfg.Collections = []config.Collection{{Name: "help", Chunking: config.Chunking{SizeTokens: 200, Markdown: true}}}
	return cfg
}

func feature(t *testing.T, cfg *config.Config, name string) config.Feature {
	t.Helper()
	for _, f := range cfg.Features {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no feature %s", name)
	return config.Feature{}
}

func TestDiff(t *testing.T) {
	cfg := example(t)
	f := feature(t, cfg, "support-answer")
	v1, _ := f.Release(1)
	v2, _ := f.Release(2)
	got := Format(Diff(v1, v2))
	want := `params.max_tokens (changed)
  - 300
  + 200
params.temperature (changed)
  - 0.3
  + 0.2
system (changed)
  - You are a concise, friendly support agent for an online shop.
  + You are a concise, friendly support agent for an online shop. Answer in at most three sentences.
`
	if got != want {
		t.Fatalf("diff\n%s\nwant\n%s", got, want)
	}
	if d := Diff(v1, v1); len(d) != 0 {
		t.Fatalf("a release differs from itself: %v", d)
	}
	v1b := v1
	v1b.Version = 9
	if d := Diff(v1, v1b); len(d) != 0 {
		t.Fatalf("version alone made a difference: %v", d)
	}
}

func TestDiffFields(t *testing.T) {
	a := config.Release{
		Version: 1, System: "line one\nline two\nline three", Route: "default",
		Template: []config.Message{{Role: "user", Content: "{{q}}"}},
		Schema:   map[string]any{"type": "object", "properties": map[string]any{"p": map[string]any{"maximum": 3}}},
	}
	b := config.Release{
		Version: 2, System: "line one\nline 2\nline three\nline four", Route: "cheap",
		Template:  []config.Message{{Role: "user", Content: "{{q}}"}, {Role: "user", Content: "again"}},
		Schema:    map[string]any{"type": "object", "properties": map[string]any{"p": map[string]any{"maximum": 5}}},
		Retrieval: &config.Retrieval{Collection: "help", TopK: 3},
		Tools:     []config.Tool{{Name: "lookup"}},
	}
	changes := Diff(a, b)
	var paths []string
	for _, c := range changes {
		paths = append(paths, c.Path+":"+c.Kind)
	}
	want := "retrieval:added route:changed schema.properties.p.maximum:changed system:changed template[1]:added tools:added"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("changes %s\nwant %s", got, want)
	}
	var sys Change
	for _, c := range changes {
		if c.Path == "system" {
			sys = c
		}
	}
	var lines []string
	for _, l := range sys.Lines {
		lines = append(lines, string(l.Op)+l.Text)
	}
	if got, want := strings.Join(lines, "|"), " line one|-line two|+line 2| line three|+line four"; got != want {
		t.Fatalf("system lines %s, want %s", got, want)
	}
}

func TestLineDiff(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"", "", ""},
		{"", "x", "+x"},
		{"x", "", "-x"},
		{"a\nb\nc", "a\nc", " a|-b| c"},
		{"a\nb\nc\nd", "a\nx\nc\ny", " a|-b|+x| c|-d|+y"},
		{"same\n", "same", " same"},
	}
	for _, tt := range tests {
		var got []string
		for _, l := range LineDiff(tt.a, tt.b) {
			got = append(got, string(l.Op)+l.Text)
		}
		if g := strings.Join(got, "|"); g != tt.want {
			t.Fatalf("LineDiff(%q, %q) = %s, want %s", tt.a, tt.b, g, tt.want)
		}
	}
	// Past the table bound the diff degrades to a whole replacement.
	var a, b []string
	for i := 0; i < 3000; i++ {
		a = append(a, fmt.Sprintf("a%d", i))
		b = append(b, fmt.Sprintf("b%d", i))
	}
	if n := len(LineDiff(strings.Join(a, "\n"), strings.Join(b, "\n"))); n != 6000 {
		t.Fatalf("large diff has %d lines, want 6000", n)
	}
}

func TestAssignSticky(t *testing.T) {
	labels := config.Labels{Production: 1, Canary: 2, CanaryWeight: 10}
	for i := 0; i < 1000; i++ {
		u := fmt.Sprintf("user-%d", i)
		v1, l1 := Assign("support-answer", labels, u)
		v2, l2 := Assign("support-answer", labels, u)
		if v1 != v2 || l1 != l2 {
			t.Fatalf("user %s moved from %d to %d", u, v1, v2)
		}
		if (l1 == config.LabelCanary) != (v1 == 2) {
			t.Fatalf("label %s does not match version %d", l1, v1)
		}
		// Growing the canary keeps its users on it.
		if l1 == config.LabelCanary {
			if _, l := Assign("support-answer", config.Labels{Production: 1, Canary: 2, CanaryWeight: 50}, u); l != config.LabelCanary {
				t.Fatalf("user %s left the canary when its weight grew", u)
			}
		}
	}
	if v, l := Assign("f", labels, ""); v != 1 || l != config.LabelProduction {
		t.Fatalf("empty user got %d %s, want production", v, l)
	}
	if v, l := Assign("f", config.Labels{Production: 3}, "u"); v != 3 || l != config.LabelProduction {
		t.Fatalf("no canary got %d %s", v, l)
	}
}

func TestAssignDistribution(t *testing.T) {
	const n = 20000
	for _, w := range []int{1, 5, 10, 25, 50, 90} {
		labels := config.Labels{Production: 1, Canary: 2, CanaryWeight: w}
		canary := 0
		for i := 0; i < n; i++ {
			if _, l := Assign("ticket-triage", labels, fmt.Sprintf("u%07d", i)); l == config.LabelCanary {
				canary++
			}
		}
		// Binomial: allow four standard deviations.
		p := float64(w) / 100
		sd := math.Sqrt(n * p * (1 - p))
		if math.Abs(float64(canary)-n*p) > 4*sd {
			t.Fatalf("weight %d: %d of %d users on the canary, want about %.0f ± %.0f", w, canary, n, n*p, 4*sd)
		}
	}
	// Features split users independently.
	labels := config.Labels{Production: 1, Canary: 2, CanaryWeight: 50}
	both := 0
	for i := 0; i < n; i++ {
		u := fmt.Sprintf("u%d", i)
		_, a := Assign("feature-a", labels, u)
		_, b := Assign("feature-b", labels, u)
		if a == config.LabelCanary && b == config.LabelCanary {
			both++
		}
	}
	if math.Abs(float64(both)-n/4) > 4*math.Sqrt(n*0.25*0.75) {
		t.Fatalf("%d users on both canaries, want about %d", both, n/4)
	}
}

func TestCheck(t *testing.T) {
	cfg := example(t)
	good := config.Release{
		Version: 3, System: "Answer from the help centre.", Route: "default",
		Template:  []config.Message{{Role: "user", Content: "{{question}}"}},
		Variables: []config.Variable{{Name: "question", Required: true}},
		Schema:    map[string]any{"type": "object"},
		Retrieval: &config.Retrieval{Collection: "help", TopK: 4},
		Tools:     []config.Tool{{Name: "lookup", Parameters: map[string]any{"type": "object"}}},
	}
	if err := Check(cfg, "support-answer", good); err != nil {
		t.Fatalf("good release rejected: %v", err)
	}
	if err := Check(cfg, "brand-new", good); err != nil {
		t.Fatalf("release of a new feature rejected: %v", err)
	}
	existing, _ := feature(t, cfg, "support-answer").Release(2)
	if err := Check(cfg, "support-answer", existing); err != nil {
		t.Fatalf("re-creating an identical release rejected: %v", err)
	}
	mod := func(f func(r *config.Release)) config.Release {
		r := good
		r.Template = append([]config.Message(nil), good.Template...)
		r.Retrieval = ptr(*good.Retrieval)
		f(&r)
		return r
	}
	tests := []struct {
		name    string
		feature string
		rel     config.Release
		want    string
	}{
		{"unknown route", "support-answer", mod(func(r *config.Release) { r.Route = "fast" }), `support-answer@v3.route: unknown route or model "fast"`},
		{"unknown collection", "support-answer", mod(func(r *config.Release) { r.Retrieval.Collection = "faq" }), `support-answer@v3.retrieval.collection: unknown collection "faq"`},
		{"bad top_k", "support-answer", mod(func(r *config.Release) { r.Retrieval.TopK = 1000 }), `support-answer@v3.retrieval.top_k: 1000 is outside 0..100`},
		{"bad chunking", "support-answer", mod(func(r *config.Release) { r.Retrieval.Chunking = &config.Chunking{SizeTokens: 50, Overlap: 60} }), `support-answer@v3.retrieval.chunking.overlap`},
		{"template syntax", "support-answer", mod(func(r *config.Release) { r.Template[0].Content = "Q:\n {{#if question}}" }), `support-answer@v3.template[0]: line 2, column 2: {{#if question}} is never closed`},
		{"undeclared variable", "support-answer", mod(func(r *config.Release) { r.System = "Hi {{name}}" }), `support-answer@v3.system: line 1, column 4: undeclared variable "name"`},
		{"bad query template", "support-answer", mod(func(r *config.Release) { r.Retrieval.Query = "{{context}}" }), `support-answer@v3.retrieval.query: line 1, column 1: the retrieval query cannot use {{context}}`},
		{"invalid schema", "support-answer", mod(func(r *config.Release) { r.Schema = map[string]any{"type": "objekt"} }), `support-answer@v3.schema: the schema does not follow the meta-schema`},
		{"remote ref", "support-answer", mod(func(r *config.Release) { r.Schema = map[string]any{"$ref": "http://example.com/x"} }), `support-answer@v3.schema:`},
		{"tool schema", "support-answer", mod(func(r *config.Release) { r.Tools = []config.Tool{{Name: "t", Parameters: map[string]any{"type": 1}}} }), `support-answer@v3.tools: tools[0] (t).parameters`},
		{"duplicate tool", "support-answer", mod(func(r *config.Release) { r.Tools = []config.Tool{{Name: "t"}, {Name: "t"}} }), `support-answer@v3.tools[1].name: tool "t" is defined twice`},
		{"bad role", "support-answer", mod(func(r *config.Release) { r.Template[0].Role = "bot" }), `support-answer@v3.template[0].role: unknown role "bot"`},
		{"immutable", "support-answer", mod(func(r *config.Release) { r.Version = 2 }), `support-answer@v2.version: v2 already exists with other content`},
		{"bad version", "support-answer", mod(func(r *config.Release) { r.Version = -1 }), `support-answer@v-1.version: versions start at 1`},
		{"unnumbered, checked as the next", "support-answer", mod(func(r *config.Release) { r.Version = 0; r.Route = "nope" }), `support-answer@next.route: unknown route or model "nope"`},
		{"bad feature name", "no spaces", good, `no spaces@v3.feature: feature name "no spaces"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(cfg, tt.feature, tt.rel)
			if err == nil {
				t.Fatalf("Check accepted the release, want %q", tt.want)
			}
			var v config.ValidationError
			if !errors.As(err, &v) {
				t.Fatalf("error %T is not a config.ValidationError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPin(t *testing.T) {
	cfg := example(t)
	rel := config.Release{Version: 3, Route: "default", Retrieval: &config.Retrieval{Collection: "help"}}
	pinned, err := Pin(cfg, rel)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Retrieval.Chunking != nil {
		t.Fatal("Pin changed its input")
	}
	if c := pinned.Retrieval.Chunking; c == nil || c.SizeTokens != 200 || !c.Markdown || c.Overlap != 0 || c.Separators != nil {
		t.Fatalf("pinned rules %+v", pinned.Retrieval.Chunking)
	}
	if pinned.Hash() == rel.Hash() {
		t.Fatal("pinning the rules did not change the hash")
	}
	// Changing the collection's default afterwards does not change the release.
	cfg.Collections[0].Chunking.SizeTokens = 64
	again, _ := Pin(cfg, pinned)
	if again.Hash() != pinned.Hash() {
		t.Fatal("a pinned release changed with the collection")
	}
	if _, err := Pin(cfg, config.Release{Retrieval: &config.Retrieval{Collection: "nope"}}); err == nil {
		t.Fatal("unknown collection pinned")
	}
}

// A change of context policy or semantic cache shows in a release diff
// like any other field, so a reviewer sees a cost change before promoting.
func TestDiffShowsCostSettings(t *testing.T) {
	a := config.Release{Version: 1, Route: "cheap", Context: &config.ContextPolicy{MaxInputTokens: 2000, Strategy: config.ContextRefuse}}
	b := config.Release{Version: 2, Route: "cheap", Context: &config.ContextPolicy{MaxInputTokens: 4000, Strategy: config.ContextDropOldest, KeepLast: 6},
		SemanticCache: &config.SemanticCache{EmbeddingRoute: "embed", Threshold: 0.92, TTL: config.Duration(time.Hour)}}
	got := map[string]string{}
	for _, c := range Diff(a, b) {
		got[c.Path] = c.Kind + " " + c.Old + " -> " + c.New
	}
	want := map[string]string{
		"context.max_input_tokens": "changed 2000 -> 4000",
		"context.strategy":         `changed "refuse" -> "drop_oldest"`,
		"context.keep_last":        "added  -> 6",
	}
	for path, w := range want {
		if got[path] != w {
			t.Errorf("%s: got %q, want %q (all: %v)", path, got[path], w, got)
		}
	}
	if _, ok := got["semantic_cache"]; !ok {
		t.Errorf("semantic_cache added is not in the diff: %v", got)
	}
}
