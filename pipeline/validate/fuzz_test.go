package validate

import (
	"strings"
	"testing"
)

// fuzzSchemas are the schemas FuzzValidate checks outputs against: the
// triage schema and ones that exercise other keywords.
var fuzzSchemas = []string{
	`{"type":"array","items":{"type":"object","properties":{"id":{"type":"integer","minimum":0},"tags":{"type":"array","uniqueItems":true}}}}`,
	`{"oneOf":[{"type":"string","pattern":"^[a-z]+$","maxLength":8},{"type":"number","multipleOf":0.25}]}`,
	`{"$defs":{"p":{"type":"object","required":["x"],"properties":{"x":{"$ref":"#/$defs/n"}}},"n":{"type":"number","exclusiveMaximum":100}},"anyOf":[{"$ref":"#/$defs/p"},{"type":"null"}]}`,
	`{"type":"object","patternProperties":{"^k":{"type":"boolean"}},"additionalProperties":false,"minProperties":1,"dependentRequired":{"ka":["kb"]}}`,
	`{"type":"string","format":"date-time"}`,
}

// FuzzValidate feeds arbitrary model output to the decoder and validator
// against several schemas. It must never panic, and every failure of
// unparseable output must carry a position.
func FuzzValidate(f *testing.F) {
	f.Add(0, []byte(`{"category":"billing","priority":2}`))
	f.Add(0, []byte(`{"category":"refund","priority":9,"x":[1,{"y":null}]}`))
	f.Add(0, []byte("{\n\"category\":"))
	f.Add(1, []byte(`[{"id":1,"tags":["a","a"]},{"id":-1}]`))
	f.Add(2, []byte(`"abc"`))
	f.Add(2, []byte(`0.75`))
	f.Add(3, []byte(`{"x":99.5}`))
	f.Add(4, []byte(`{"ka":true}`))
	f.Add(5, []byte(`"2026-02-30T25:00:00Z"`))
	f.Add(1, []byte(`[[[[[[[[[[[[1e999999]]]]]]]]]]]]`))
	f.Add(0, []byte(`"just a string"`))
	f.Add(0, []byte{0xff, '{'})
	schemas := []*Schema{mustCompileF(f, triage)}
	for _, s := range fuzzSchemas {
		schemas = append(schemas, mustCompileF(f, []byte(s)))
	}
	f.Fuzz(func(t *testing.T, which int, out []byte) {
		s := schemas[uint(which)%uint(len(schemas))]
		fs := s.Validate(out)
		for _, fl := range fs {
			if fl.Reason == "" {
				t.Fatalf("failure without a reason: %+v", fl)
			}
			if fl.Path == "" && strings.HasPrefix(fl.Reason, "invalid JSON") && !strings.Contains(fl.Reason, "line ") {
				t.Fatalf("invalid JSON without a position: %q", fl.Reason)
			}
		}
		if len(fs) > MaxFailures+1 {
			t.Fatalf("%d failures, more than the bound", len(fs))
		}
	})
}

func mustCompileF(f *testing.F, schema any) *Schema {
	s, err := Compile(schema)
	if err != nil {
		f.Fatalf("compile %v: %v", schema, err)
	}
	return s
}

// FuzzCompileCaller compiles arbitrary schemas as a caller sends them and
// validates an output against those that compile. Neither may panic; a
// refusal must be an invalid-schema error; an accepted schema must keep
// the bounds a caller's schema is held to.
func FuzzCompileCaller(f *testing.F) {
	for _, s := range append(fuzzSchemas,
		`{"type":"object","minProperties":"x"}`,
		`{"$schema":"http://evil.example/s"}`,
		`{"$ref":"https://evil.example/s.json"}`,
		`{"type":"array","items":{"$ref":"#"}}`,
		`{"$id":"https://x/","$defs":{"a":{"$anchor":"a"}},"$ref":"#a"}`,
		fanOut(12),
		nestedItems(70),
		`{"maximum":1e999999}`,
		`{"enum":[1,1.0,"1"],"uniqueItems":true}`,
		`true`, `false`, `[]`, `null`,
	) {
		f.Add([]byte(s), []byte(`[1,{"a":"b"},"c",null,true]`))
	}
	f.Fuzz(func(t *testing.T, schema, out []byte) {
		s, err := CompileCaller(schema)
		if err != nil {
			if !strings.Contains(err.Error(), ErrInvalidSchema.Error()) {
				t.Fatalf("a refusal that is not an invalid schema: %v", err)
			}
			return
		}
		if len(schema) > MaxCallerSchemaBytes {
			t.Fatalf("accepted a schema of %d bytes", len(schema))
		}
		if fs := s.Validate(out); len(fs) > MaxFailures+1 {
			t.Fatalf("%d failures", len(fs))
		}
	})
}
