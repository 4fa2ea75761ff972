package validate

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// nestedItems is n levels of {"items": …} around a string schema.
func nestedItems(n int) string {
	return strings.Repeat(`{"items":`, n) + `{"type":"string"}` + strings.Repeat("}", n)
}

// fanOut is a chain of n definitions, each an anyOf of two references to
// the next: small to write, 2ⁿ schemas to check a value against.
func fanOut(n int) string {
	var b strings.Builder
	b.WriteString(`{"$defs":{`)
	for i := range n {
		fmt.Fprintf(&b, `"d%d":{"type":"array","anyOf":[{"items":{"$ref":"#/$defs/d%d"}},{"items":{"$ref":"#/$defs/d%d"}}]},`, i, i+1, i+1)
	}
	fmt.Fprintf(&b, `"d%d":{"type":"string"}},"$ref":"#/$defs/d0"}`, n)
	return b.String()
}

func TestCallerSchemaRefused(t *testing.T) {
	cases := []struct {
		name, schema, want string
	}{
		{"invalid keyword value", `{"type":"object","minProperties":"x"}`, "minProperties"},
		{"remote $schema", `{"$schema":"http://evil.example/schema","type":"object"}`, "$schema"},
		{"remote $ref", `{"$ref":"https://evil.example/s.json"}`, "outside the schema"},
		{"relative $ref", `{"properties":{"a":{"$ref":"other.json#/x"}}}`, "outside the schema"},
		{"$id that moves the base", `{"$id":"https://evil.example/","$ref":"#/$defs/a","$defs":{"a":{}}}`, "$id"},
		{"ref to nothing", `{"$ref":"#/$defs/missing"}`, "points at nothing"},
		{"recursive", `{"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"}`, "refers to itself"},
		{"recursive to the root", `{"type":"array","items":{"$ref":"#"}}`, "refers to itself"},
		{"fan-out past the bound", fanOut(16), "expanded"},
		{"2,000 nested levels", nestedItems(2000), "deeper than 64"},
		{"huge number", `{"maximum":1e999999}`, "beyond the range"},
		{"long number", `{"maximum":` + strings.Repeat("9", 65) + `}`, "more than 64"},
		{"too large", `{"description":"` + strings.Repeat("x", 64<<10) + `"}`, "more than the limit"},
		{"not a schema", `"string"`, "mapping or a boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileCaller([]byte(tc.schema))
			if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid schema error saying %q", err, tc.want)
			}
		})
	}
}

func TestCallerSchemaAccepted(t *testing.T) {
	for _, s := range []string{
		`{"type":"object","properties":{"a":{"$ref":"#/$defs/pos"},"b":{"$ref":"#/$defs/pos"}},"$defs":{"pos":{"type":"integer","minimum":0}}}`,
		`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`,
		`{"properties":{"x":{"$ref":"#pt"}},"$defs":{"p":{"$anchor":"pt","type":"number"}}}`,
		fanOut(8), // 2⁸ expanded: within the bound
		nestedItems(60),
		`true`,
	} {
		if _, err := CompileCaller([]byte(s)); err != nil {
			t.Fatalf("%.80s: %v", s, err)
		}
	}
}

// TestReleaseSchemasKeepRecursion: the bounds on references are a caller's;
// a release's schema, which operators write, may still be recursive, but
// depth and numbers are bounded for every schema.
func TestReleaseSchemasKeepRecursion(t *testing.T) {
	if _, err := Compile([]byte(`{"type":"array","items":{"$ref":"#"}}`)); err != nil {
		t.Fatalf("a recursive release schema: %v", err)
	}
	if _, err := Compile([]byte(nestedItems(2000))); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("2,000 levels in a release schema: %v", err)
	}
}

func TestOutputShapeBounded(t *testing.T) {
	s := mustCompile(t, map[string]any{})
	for _, tc := range []struct{ out, want string }{
		{strings.Repeat("[", 130) + strings.Repeat("]", 130), "deeper than 128"},
		{`{"n":1e999999}`, "too large to check"},
		{`[` + strings.Repeat("1", 100) + `]`, "too large to check"},
	} {
		fs := s.Validate([]byte(tc.out))
		if len(fs) != 1 || !strings.Contains(fs[0].Reason, tc.want) {
			t.Fatalf("%.40s: failures %v, want one saying %q", tc.out, fs, tc.want)
		}
	}
	if fs := s.Validate([]byte(`{"n":1.5e300,"m":[[[1]]]}`)); fs != nil {
		t.Fatalf("an ordinary output failed: %v", fs)
	}
}

// BenchmarkAdversarialSchemas measures what a caller's schema can cost:
// compiling at the depth bound, refusing what lies past the bounds, the
// worst fan-out within them, and validation of growing outputs against one
// schema, whose MB/s should stay flat (linear in the output's size).
func BenchmarkAdversarialSchemas(b *testing.B) {
	compile := func(schema string, wantErr bool) func(b *testing.B) {
		return func(b *testing.B) {
			b.SetBytes(int64(len(schema)))
			for b.Loop() {
				if _, err := CompileCaller([]byte(schema)); (err != nil) != wantErr {
					b.Fatalf("compile: %v", err)
				}
			}
		}
	}
	b.Run("compile/items-60-levels", compile(nestedItems(60), false))
	b.Run("refuse/items-2000-levels", compile(nestedItems(2000), true))
	b.Run("refuse/fan-out-2^16", compile(fanOut(16), true))
	b.Run("refuse/64KiB-wide", compile(`{"enum":[`+strings.TrimSuffix(strings.Repeat(`"ab",`, 13000), ",")+`],"type":"string"}`, false))
	b.Run("validate/fan-out-2^8-failing", func(b *testing.B) {
		s, err := CompileCaller([]byte(fanOut(8)))
		if err != nil {
			b.Fatal(err)
		}
		out := []byte(strings.Repeat("[", 8) + "1" + strings.Repeat("]", 8))
		for b.Loop() {
			if fs := s.Validate(out); fs == nil {
				b.Fatal("a failing output passed")
			}
		}
	})
	s, err := CompileCaller([]byte(`{"type":"array","items":{"type":"object","required":["id","name"],"additionalProperties":false,
	  "properties":{"id":{"type":"integer","minimum":0},"name":{"type":"string","maxLength":64},"tags":{"type":"array","items":{"enum":["a","b","c"]}},"score":{"type":"number","multipleOf":0.5}}}}`))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1_000, 4_000, 16_000} {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"id":%d,"name":"item %d","tags":["a","c"],"score":%d.5}`, i, i, i)
		}
		out := []byte("[" + strings.Join(items, ",") + "]")
		b.Run(fmt.Sprintf("validate/output-%d-items", n), func(b *testing.B) {
			b.SetBytes(int64(len(out)))
			for b.Loop() {
				if fs := s.Validate(out); fs != nil {
					b.Fatal(fs)
				}
			}
		})
	}
}
