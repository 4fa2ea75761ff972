package release

import (
	"fmt"

	"gantry/config"
)

func ExampleCheck() {
	cfg := config.Example()
	rel := config.Release{
		Version:   3,
		Route:     "fastest",
		System:    "Hello {{name}}",
		Template:  []config.Message{{Role: "user", Content: "{{#if q}}{{q}}"}},
		Variables: []config.Variable{{Name: "q"}},
		Schema:    map[string]any{"type": "objekt"},
		Retrieval: &config.Retrieval{Collection: "faq"},
	}
	fmt.Println(Check(cfg, "support-answer", rel))
	// Output:
	// support-answer@v3.route: unknown route or model "fastest"
	// support-answer@v3.retrieval.collection: unknown collection "faq"
	// support-answer@v3.system: line 1, column 7: undeclared variable "name" (declare it under variables)
	// support-answer@v3.schema: the schema does not follow the meta-schema: at /type: got string, want array; at /type: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'
}
