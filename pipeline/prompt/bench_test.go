package prompt

import (
	"testing"

	"gantry/config"
)

func BenchmarkRender(b *testing.B) {
	rel := config.Release{
		System:   "You are a concise, friendly support agent for {{shop}}. Answer in at most three sentences.",
		Template: []config.Message{{Role: "user", Content: "Customer {{customer.name}} ({{#if customer.vip}}VIP{{else}}standard{{/if}}) asks about order {{order}}:\n{{question}}\nRecent items:{{#each items}} {{.}}{{/each}}"}},
		Variables: []config.Variable{
			{Name: "shop", Required: true}, {Name: "customer", Type: "object", Required: true},
			{Name: "order", Required: true}, {Name: "question", Required: true}, {Name: "items", Type: "list"},
		},
	}
	tpl, err := Compile(rel)
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]any{
		"shop":     "Lumen Home",
		"customer": map[string]any{"name": "Ada", "vip": true},
		"order":    "A-1001",
		"question": "My kettle arrived with a cracked lid. Can I get a replacement before the weekend?",
		"items":    []any{"kettle", "mug", "toaster"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.Render(vars); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderWorkLimit is the most work a caller's variables can ask
// of one rendering: nested loops that print nothing, stopped at
// MaxRenderSteps.
func BenchmarkRenderWorkLimit(b *testing.B) {
	rel := config.Release{
		Template:  []config.Message{{Role: "user", Content: "{{#each a}}{{#each b}}{{#each c}}{{/each}}{{/each}}{{/each}}"}},
		Variables: []config.Variable{{Name: "a", Type: "list"}, {Name: "b", Type: "list"}, {Name: "c", Type: "list"}},
	}
	tpl, err := Compile(rel)
	if err != nil {
		b.Fatal(err)
	}
	items := make([]any, MaxListItems)
	vars := map[string]any{"a": items, "b": items, "c": items}
	for b.Loop() {
		if _, err := tpl.Render(vars); err == nil {
			b.Fatal("rendered past the work limit")
		}
	}
}
