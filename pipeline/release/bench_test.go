package release

import (
	"testing"

	"gantry/config"
)

// BenchmarkFeatureCall is the per-call work of a typical structured feature
// once its release is compiled: render the prompt from the caller's
// variables, then validate the model's JSON output against the schema.
func BenchmarkFeatureCall(b *testing.B) {
	rel := config.Release{
		Version:  1,
		System:   "Classify the support ticket for {{shop}}. Reply with JSON only.",
		Template: []config.Message{{Role: "user", Content: "Customer {{customer.name}} ({{#if customer.vip}}VIP{{else}}standard{{/if}}), order {{order}}:\n{{ticket}}\nRecent items:{{#each items}} {{.}}{{/each}}"}},
		Variables: []config.Variable{
			{Name: "shop", Required: true}, {Name: "customer", Type: "object", Required: true},
			{Name: "order", Required: true}, {Name: "ticket", Required: true}, {Name: "items", Type: "list"},
		},
		Route: "cheap",
		Schema: map[string]any{
			"type": "object", "required": []any{"category", "priority"}, "additionalProperties": false,
			"properties": map[string]any{
				"category": map[string]any{"type": "string", "enum": []any{"billing", "shipping", "returns", "other"}},
				"priority": map[string]any{"type": "integer", "minimum": 1, "maximum": 3},
				"summary":  map[string]any{"type": "string", "maxLength": 200},
			},
		},
	}
	c, err := Compile(rel)
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]any{
		"shop":     "Lumen Home",
		"customer": map[string]any{"name": "Ada", "vip": true},
		"order":    "A-1001",
		"ticket":   "My kettle arrived with a cracked lid and the toaster is missing. Can I get a replacement before the weekend?",
		"items":    []any{"kettle", "mug", "toaster"},
	}
	output := []byte(`{"category":"returns","priority":2,"summary":"Cracked kettle lid and missing toaster; wants replacement."}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Template.Render(vars); err != nil {
			b.Fatal(err)
		}
		if fs := c.Schema.Validate(output); fs != nil {
			b.Fatal(fs)
		}
	}
}
