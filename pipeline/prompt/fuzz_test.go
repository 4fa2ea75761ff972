package prompt

import (
	"errors"
	"testing"

	"gantry/config"
)

// FuzzCompile feeds arbitrary text to the template parser as a message. It
// must never panic; a template that compiles must render its sample
// variables, and a string value must come back verbatim.
func FuzzCompile(f *testing.F) {
	f.Add("Customer {{customer}} asks: {{question}}")
	f.Add("{{#if vip}}a{{else}}b{{/if}}")
	f.Add("{{#each items}}{{@index}}:{{.}}{{/each}}")
	f.Add("{{order.customer.name}}")
	f.Add("\\{{ literal")
	f.Add("{{#each items}}{{#each .}}{{.}}{{/each}}{{/each}}")
	f.Add("{{")
	f.Add("{{#if}}{{/if}}")
	f.Add("{{#each items}}{{#each items}}{{#each items}}{{/each}}{{/each}}{{/each}}")
	f.Add("{{#each items}}{{#each items}}{{#each items}}{{#each items}}{{@index}}{{/each}}{{/each}}{{/each}}{{/each}}")
	f.Fuzz(func(t *testing.T, src string) {
		rel := config.Release{
			System: "s",
			Template: []config.Message{
				{Role: "user", Content: src},
				{Role: "user", Content: "[{{customer}}]"},
			},
			Variables: []config.Variable{
				{Name: "customer", Required: true},
				{Name: "question"},
				{Name: "vip", Type: "boolean"},
				{Name: "items", Type: "list"},
				{Name: "order", Type: "object"},
			},
		}
		tpl, err := Compile(rel)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("compile error %v is not a *SyntaxError", err)
			}
			if se.Line < 1 || se.Column < 1 || se.Message != "template[0]" {
				t.Fatalf("bad position in %v", se)
			}
			return
		}
		// Enough items that nested loops meet the work budget.
		items := []any{"a", []any{"b"}, map[string]any{"k": "v"}}
		for i := range 200 {
			items = append(items, i)
		}
		vars := map[string]any{
			"customer": src,
			"question": "q",
			"vip":      true,
			"items":    items,
			"order":    map[string]any{"id": 1.0, "customer": map[string]any{"name": "n"}},
		}
		msgs, err := tpl.Render(vars)
		if err != nil {
			// Data can still disagree with the template at run time, e.g.
			// {{#each .}} over an item that is not a list; that is the
			// caller's error, never a crash.
			if !errors.Is(err, ErrVars) {
				t.Fatalf("render error %v does not wrap ErrVars", err)
			}
			var re *RenderLimitError
			if errors.As(err, &re) && (re.Message != "template[0]" || re.Limit != MaxRenderSteps) {
				t.Fatalf("the work limit names %q, want template[0]", re.Message)
			}
			return
		}
		if len(msgs) != 3 {
			t.Fatalf("%d messages, want 3", len(msgs))
		}
		want, _ := stripControls(src)
		if got := msgs[2].Content.Text; got != "["+want+"]" {
			t.Fatalf("value came back as %q, want it verbatim", got)
		}
	})
}
