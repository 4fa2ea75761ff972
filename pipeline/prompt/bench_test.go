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
