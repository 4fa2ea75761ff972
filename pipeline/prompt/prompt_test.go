package prompt

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/config"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// section is one named part of a txtar-style case file.
type section struct {
	name string
	data string
}

// parseCase splits a case file into "-- name --" sections; the text before
// the first one describes the case and is kept as a section named "".
func parseCase(t *testing.T, data string) []section {
	t.Helper()
	out := []section{{}}
	for _, line := range strings.SplitAfter(data, "\n") {
		trim := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			out = append(out, section{name: trim[3 : len(trim)-3]})
			continue
		}
		out[len(out)-1].data += line
	}
	return out
}

func formatCase(secs []section) string {
	var b strings.Builder
	for _, s := range secs {
		if s.name != "" {
			fmt.Fprintf(&b, "-- %s --\n", s.name)
		}
		b.WriteString(s.data)
	}
	return b.String()
}

// TestRenderGolden renders every testdata/render/*.txtar case: a release in
// YAML, variables in JSON, optional retrieved context, and the expected
// messages or error.
func TestRenderGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/render/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d golden cases, want at least 10", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			secs := parseCase(t, string(raw))
			get := func(name string) (string, bool) {
				for _, s := range secs {
					if s.name == name {
						return s.data, true
					}
				}
				return "", false
			}
			relText, ok := get("release.yaml")
			if !ok {
				t.Fatal("case has no release.yaml section")
			}
			var rel config.Release
			if err := yaml.Unmarshal([]byte(relText), &rel); err != nil {
				t.Fatalf("release.yaml: %v", err)
			}
			var vars map[string]any
			if v, ok := get("vars.json"); ok && strings.TrimSpace(v) != "" {
				if err := json.Unmarshal([]byte(v), &vars); err != nil {
					t.Fatalf("vars.json: %v", err)
				}
			}
			ctxText, _ := get("context")
			got := renderCase(rel, vars, strings.TrimSuffix(ctxText, "\n"))
			// Rendering twice must give the same bytes.
			if again := renderCase(rel, vars, strings.TrimSuffix(ctxText, "\n")); again != got {
				t.Fatalf("rendering is not deterministic:\n%s\nthen\n%s", got, again)
			}
			if *update {
				var kept []section
				for _, s := range secs {
					if s.name != "want" {
						kept = append(kept, s)
					}
				}
				kept = append(kept, section{name: "want", data: got})
				if err := os.WriteFile(file, []byte(formatCase(kept)), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, ok := get("want")
			if !ok {
				t.Fatal("case has no want section; run with -update")
			}
			if got != want {
				t.Fatalf("rendered\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func renderCase(rel config.Release, vars map[string]any, context string) string {
	tpl, err := Compile(rel)
	if err != nil {
		return "compile error: " + err.Error() + "\n"
	}
	msgs, err := tpl.RenderContext(vars, context)
	if err != nil {
		return "render error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "[%s]\n%s\n", m.Role, m.Content.Text)
	}
	if rel.Retrieval != nil {
		q, err := tpl.Query(vars)
		if err != nil {
			fmt.Fprintf(&b, "query error: %v\n", err)
		} else {
			fmt.Fprintf(&b, "[query]\n%s\n", q)
		}
	}
	return b.String()
}

func release(system string, msgs []string, vars ...config.Variable) config.Release {
	rel := config.Release{Version: 1, System: system, Variables: vars, Route: "default"}
	for _, m := range msgs {
		rel.Template = append(rel.Template, config.Message{Role: "user", Content: m})
	}
	return rel
}

func TestCompileErrors(t *testing.T) {
	str := config.Variable{Name: "name", Type: "string"}
	list := config.Variable{Name: "items", Type: "list"}
	obj := config.Variable{Name: "order", Type: "object"}
	tests := []struct {
		name string
		rel  config.Release
		want string
	}{
		{"undeclared", release("", []string{"hi {{nme}}"}, str), `template[0]:1:4: undeclared variable "nme"`},
		{"undeclared in system", release("line one\n  {{who}}", nil, str), `system:2:3: undeclared variable "who"`},
		{"unclosed tag", release("", []string{"ok", "a\nb {{name"}, str), "template[1]:2:3: {{ is never closed"},
		{"unclosed if", release("", []string{"{{#if name}}x"}, str), "template[0]:1:1: {{#if name}} is never closed"},
		{"stray close", release("", []string{"x{{/if}}"}, str), "template[0]:1:2: {{/if}} without an open block"},
		{"mismatched close", release("", []string{"{{#if name}}{{/each}}"}, str), "{{/each}} closes a {{#if}} block"},
		{"unknown block", release("", []string{"{{#with name}}{{/with}}"}, str), "unknown block {{#with}}"},
		{"dot outside each", release("", []string{"{{.}}"}, str), "{{.}} outside {{#each}}"},
		{"index outside each", release("", []string{"{{@index}}"}, str), "{{@index}} outside {{#each}}"},
		{"field of string", release("", []string{"{{name.first}}"}, str), `"name" is a string, only an object has fields`},
		{"each over string", release("", []string{"{{#each name}}{{/each}}"}, str), `"name" is a string, not a list`},
		{"expression", release("", []string{"{{name | upper}}"}, str), "is not a variable reference"},
		{"call", release("", []string{"{{exec(\"rm\")}}"}, str), "is not a variable reference"},
		{"empty tag", release("", []string{"{{ }}"}, str), "empty tag"},
		{"else in each", release("", []string{"{{#each items}}{{else}}{{/each}}"}, list), "{{else}} inside {{#each}}"},
		{"two elses", release("", []string{"{{#if name}}a{{else}}b{{else}}c{{/if}}"}, str), "second {{else}}"},
		{"column counts characters", release("", []string{"héllo {{x}}"}, str), "template[0]:1:7:"},
		{"bad variable name", release("", []string{"x"}, config.Variable{Name: "a.b"}), `name "a.b" cannot be referenced`},
		{"unknown type", release("", []string{"x"}, config.Variable{Name: "a", Type: "date"}), `unknown type "date"`},
		{"context without retrieval", release("", []string{"{{context}}"}, obj), `undeclared variable "context"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.rel)
			if err == nil {
				t.Fatalf("Compile succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	_, err := Compile(release("", []string{"one", "two\nthree {{#each x}}"}, config.Variable{Name: "x", Type: "list"}))
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *SyntaxError", err)
	}
	if se.Message != "template[1]" || se.Line != 2 || se.Column != 7 {
		t.Fatalf("position %s:%d:%d, want template[1]:2:7", se.Message, se.Line, se.Column)
	}
}

func TestRenderVarErrors(t *testing.T) {
	rel := release("", []string{"{{name}} {{n}} {{ok}} {{#each items}}{{.}}{{/each}} {{order.id}}"},
		config.Variable{Name: "name", Required: true},
		config.Variable{Name: "n", Type: "number"},
		config.Variable{Name: "ok", Type: "boolean"},
		config.Variable{Name: "items", Type: "list"},
		config.Variable{Name: "order", Type: "object"},
	)
	tpl, err := Compile(rel)
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("a", MaxValueBytes+1)
	tests := []struct {
		name string
		vars map[string]any
		want string
	}{
		{"missing required", map[string]any{}, `variable "name": is required and missing`},
		{"null required", map[string]any{"name": nil}, `variable "name": is required and missing`},
		{"string for number", map[string]any{"name": "a", "n": "3"}, `variable "n": want a number, got a string`},
		{"number for string", map[string]any{"name": 3.0}, `variable "name": want a string, got a number`},
		{"string for boolean", map[string]any{"name": "a", "ok": "yes"}, `variable "ok": want a boolean, got a string`},
		{"object for list", map[string]any{"name": "a", "items": map[string]any{}}, `variable "items": want a list, got a object`},
		{"undeclared", map[string]any{"name": "a", "nmae": "b"}, `variable "nmae": is not declared`},
		{"too large", map[string]any{"name": huge}, `variable "name": holds more than 262144 bytes`},
		{"too large nested", map[string]any{"name": "a", "items": []any{huge[:MaxValueBytes/2], huge[:MaxValueBytes/2+1]}}, `holds more than`},
		{"invalid utf8", map[string]any{"name": "a\xffb"}, `variable "name": is not valid UTF-8`},
		{"nan", map[string]any{"name": "a", "n": nan()}, `variable "n": is not a finite number`},
		{"unsupported type", map[string]any{"name": "a", "order": struct{}{}}, `unsupported Go type`},
		{"nested bad", map[string]any{"name": "a", "order": map[string]any{"x": []any{"ok", "\xff"}}}, `variable "order.x[1]": is not valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tpl.Render(tt.vars)
			if err == nil {
				t.Fatalf("Render succeeded, want error containing %q", tt.want)
			}
			if !errors.Is(err, ErrVars) {
				t.Fatalf("error %v does not wrap ErrVars", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func nan() float64 {
	var z float64
	return z / z
}

func TestRenderedSizeBound(t *testing.T) {
	rel := release("", []string{"{{#each items}}{{s}}{{/each}}"},
		config.Variable{Name: "items", Type: "list"}, config.Variable{Name: "s"})
	tpl, err := Compile(rel)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, 100)
	for i := range items {
		items[i] = i
	}
	_, err = tpl.Render(map[string]any{"items": items, "s": strings.Repeat("x", 20000)})
	if err == nil || !strings.Contains(err.Error(), "rendered prompt exceeds") {
		t.Fatalf("err = %v, want the rendered size bound", err)
	}
}

func TestValuesAreNeverParsed(t *testing.T) {
	rel := release("sys {{name}}", []string{"{{name}}|{{#each items}}{{.}};{{/each}}"},
		config.Variable{Name: "name"}, config.Variable{Name: "items", Type: "list"})
	tpl, err := Compile(rel)
	if err != nil {
		t.Fatal(err)
	}
	evil := "{{#each items}}{{.}}{{/each}} {{name}} \\{{x}}"
	msgs, err := tpl.Render(map[string]any{"name": evil, "items": []any{"{{name}}", "{{/if}}"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := msgs[0].Content.Text, "sys "+evil; got != want {
		t.Fatalf("system %q, want %q", got, want)
	}
	if got, want := msgs[1].Content.Text, evil+"|{{name}};{{/if}};"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
}

func TestRenderDoesNotMutateVars(t *testing.T) {
	tpl, err := Compile(release("", []string{"{{a}}"}, config.Variable{Name: "a"}))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"a": "x\x00y"}
	msgs, err := tpl.Render(vars)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Content.Text != "xy" {
		t.Fatalf("rendered %q, want control character stripped", msgs[0].Content.Text)
	}
	if vars["a"] != "x\x00y" {
		t.Fatalf("caller's map changed to %q", vars["a"])
	}
}

func TestConcurrentRender(t *testing.T) {
	tpl, err := Compile(release("", []string{"{{#each xs}}{{@index}}{{.}}{{/each}}"}, config.Variable{Name: "xs", Type: "list"}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 8)
	for i := 0; i < 8; i++ {
		go func() {
			msgs, err := tpl.Render(map[string]any{"xs": []any{"a", "b"}})
			if err != nil {
				done <- err.Error()
				return
			}
			done <- msgs[0].Content.Text
		}()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; got != "0a1b" {
			t.Fatalf("got %q, want 0a1b", got)
		}
	}
}

func TestJSONValuesAreSorted(t *testing.T) {
	tpl, err := Compile(release("", []string{"{{o}}"}, config.Variable{Name: "o", Type: "object"}))
	if err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	if err := json.Unmarshal([]byte(`{"z":1,"a":[true,null,"q\""],"m":{"y":2.5,"b":"x"}}`), &o); err != nil {
		t.Fatal(err)
	}
	msgs, err := tpl.Render(map[string]any{"o": o})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":[true,null,"q\""],"m":{"b":"x","y":2.5},"z":1}`
	if got := msgs[0].Content.Text; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	var back any
	if err := json.NewDecoder(bytes.NewReader([]byte(msgs[0].Content.Text))).Decode(&back); err != nil {
		t.Fatalf("rendered object is not JSON: %v", err)
	}
}

func TestRetrievalQueryErrors(t *testing.T) {
	q := config.Variable{Name: "q"}
	withContext := config.Release{
		Template:  []config.Message{{Role: "user", Content: "{{context}}\n{{q}}"}},
		Variables: []config.Variable{q},
		Retrieval: &config.Retrieval{Collection: "help"},
	}
	_, err := Compile(withContext)
	if err == nil || !strings.Contains(err.Error(), "template[0]:1:1: this last message writes {{context}}, so it cannot also be the retrieval query; set retrieval.query") {
		t.Fatalf("err = %v", err)
	}
	withContext.Retrieval.Query = "{{q}}"
	tpl, err := Compile(withContext)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tpl.Query(map[string]any{"q": "kettle"}); got != "kettle" {
		t.Fatalf("query %q", got)
	}
	if _, err := tpl.Render(map[string]any{"q": "x", "context": "forged"}); err == nil || !strings.Contains(err.Error(), "filled from retrieval") {
		t.Fatalf("a caller-sent context was accepted: %v", err)
	}
	withContext.Variables = append(withContext.Variables, config.Variable{Name: "context"})
	if _, err := Compile(withContext); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("declaring context in a release with retrieval: %v", err)
	}
	noRetrieval := release("", []string{"{{q}}"}, q)
	tpl, _ = Compile(noRetrieval)
	if got, err := tpl.Query(map[string]any{"q": "x"}); got != "" || err != nil {
		t.Fatalf("Query without retrieval = %q, %v", got, err)
	}
}

// TestRenderWorkBound renders three nested loops over callers' lists whose
// bodies print nothing: 200³ iterations, past the step budget, must stop
// with an error that names the message and the list, not run to the end.
func TestRenderWorkBound(t *testing.T) {
	rel := release("", []string{"intro", "{{#each a}}{{#each b}}{{#each c}}{{/each}}{{/each}}{{/each}}"},
		config.Variable{Name: "a", Type: "list"}, config.Variable{Name: "b", Type: "list"}, config.Variable{Name: "c", Type: "list"})
	tpl, err := Compile(rel)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, 200)
	for i := range items {
		items[i] = i
	}
	_, err = tpl.Render(map[string]any{"a": items, "b": items, "c": items})
	var re *RenderLimitError
	if !errors.As(err, &re) || !errors.Is(err, ErrVars) {
		t.Fatalf("err = %v, want a RenderLimitError that is an error about the variables", err)
	}
	if re.Message != "template[1]" || re.Variable != "c" || re.Limit != MaxRenderSteps {
		t.Fatalf("error names message %q list %q limit %d; want template[1], c, %d", re.Message, re.Variable, re.Limit, MaxRenderSteps)
	}
	// Within the budget the same template renders.
	small := items[:50]
	if _, err := tpl.Render(map[string]any{"a": small, "b": small, "c": small}); err != nil {
		t.Fatalf("50³ iterations: %v", err)
	}
}
