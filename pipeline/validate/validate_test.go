package validate

import (
	"errors"
	"strings"
	"testing"

	"gantry/config"
	"gantry/pipeline/chat"
)

// triage is the ticket-triage schema of the example configuration.
var triage = map[string]any{
	"type":                 "object",
	"required":             []any{"category", "priority"},
	"additionalProperties": false,
	"properties": map[string]any{
		"category": map[string]any{"type": "string", "enum": []any{"billing", "shipping", "returns", "other"}},
		"priority": map[string]any{"type": "integer", "minimum": 1, "maximum": 3},
	},
}

func mustCompile(t *testing.T, schema any) *Schema {
	t.Helper()
	s, err := Compile(schema)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func TestValidate(t *testing.T) {
	s := mustCompile(t, triage)
	tests := []struct {
		name   string
		output string
		want   []string // "path: reason substring"
	}{
		{"valid", `{"category":"billing","priority":2}`, nil},
		{"valid with spaces", "\n {\"category\": \"other\", \"priority\": 3}\n", nil},
		{"missing", `{"category":"billing"}`, []string{"(root): missing property 'priority'"}},
		{"bad enum and range", `{"category":"refund","priority":7}`, []string{"/category: value must be one of", "/priority: maximum: got 7, want 3"}},
		{"wrong type", `{"category":"billing","priority":"high"}`, []string{"/priority: got string, want integer"}},
		{"extra", `{"category":"billing","priority":1,"why":"x"}`, []string{"(root): additional properties 'why' not allowed"}},
		{"not json", `Sure! {"category":"billing"}`, []string{"(root): invalid JSON at line 1, column 1"}},
		{"truncated", "{\"category\":\n\"billing\",", []string{"(root): invalid JSON at line 2, column 11: output ends before the JSON value does"}},
		{"bad token on line 2", "{\"category\": \"billing\",\n  \"priority\": tru}", []string{"(root): invalid JSON at line 2, column 18: invalid character '}' in literal true"}},
		{"empty", "  ", []string{"(root): invalid JSON at line 1, column 3: empty output"}},
		{"trailing", `{"category":"billing","priority":1} and more`, []string{"(root): invalid JSON at line 1, column 37: text after the JSON value"}},
		{"array", `[1]`, []string{"(root): got array, want object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := s.Validate([]byte(tt.output))
			if len(fs) != len(tt.want) {
				t.Fatalf("got %d failures %v, want %d %v", len(fs), Strings(fs), len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(fs[i].String(), w) && !strings.Contains(fs[i].String(), w) {
					t.Fatalf("failure %d is %q, want it to contain %q", i, fs[i], w)
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		schema any
		want   string
	}{
		{"nil", nil, "no schema"},
		{"string", "object", "not a string"},
		{"list", []any{1}, "not a list"},
		{"bad type", map[string]any{"type": "integr"}, "/type"},
		{"bad minimum", map[string]any{"minimum": "one"}, "/minimum"},
		{"bad required", map[string]any{"required": "x"}, "/required"},
		{"remote ref", map[string]any{"$ref": "https://example.com/s.json"}, "refused: schemas must be self-contained"},
		{"file ref", map[string]any{"$ref": "file:///etc/passwd"}, "refused"},
		{"dangling local ref", map[string]any{"$ref": "#/$defs/missing"}, "missing"},
		{"bad bytes", []byte("{"), "not JSON"},
		{"too big", map[string]any{"description": strings.Repeat("x", MaxSchemaBytes)}, "more than the limit"},
		{"bad pattern", map[string]any{"pattern": "("}, "pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.schema)
			if err == nil {
				t.Fatalf("Compile succeeded, want error containing %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidSchema) {
				t.Fatalf("error %v does not wrap ErrInvalidSchema", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLocalRefsAndFormats(t *testing.T) {
	s := mustCompile(t, map[string]any{
		"$defs": map[string]any{"email": map[string]any{"type": "string", "format": "email"}},
		"type":  "object",
		"properties": map[string]any{
			"to": map[string]any{"$ref": "#/$defs/email"},
			"cc": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/email"}},
		},
	})
	if fs := s.Validate([]byte(`{"to":"a@example.com","cc":["b@example.com"]}`)); fs != nil {
		t.Fatalf("valid output failed: %v", fs)
	}
	fs := s.Validate([]byte(`{"to":"a@example.com","cc":["ok@example.com","not-an-email"]}`))
	if len(fs) != 1 || fs[0].Path != "/cc/1" || !strings.Contains(fs[0].Reason, "email") {
		t.Fatalf("failures %v, want one at /cc/1 about email", fs)
	}
}

func TestBooleanSchemaAndYAMLNumbers(t *testing.T) {
	if fs := mustCompile(t, true).Validate([]byte(`{"any":1}`)); fs != nil {
		t.Fatalf("true schema rejected: %v", fs)
	}
	if fs := mustCompile(t, false).Validate([]byte(`1`)); len(fs) != 1 {
		t.Fatalf("false schema gave %v, want one failure", fs)
	}
	// YAML decodes integers as int; they must still compile.
	s := mustCompile(t, map[string]any{"type": "integer", "maximum": 3, "multipleOf": 1})
	if fs := s.Validate([]byte(`4`)); len(fs) != 1 {
		t.Fatalf("got %v, want one failure", fs)
	}
	// Large integers keep their precision.
	s = mustCompile(t, map[string]any{"type": "integer", "maximum": 9007199254740993})
	if fs := s.Validate([]byte(`9007199254740994`)); len(fs) != 1 {
		t.Fatalf("got %v, want one failure beyond 2^53", fs)
	}
}

func TestFailureBoundAndOrder(t *testing.T) {
	props := map[string]any{}
	var parts []string
	for _, c := range "abcdefghijklmnopqrstuvwxyz" {
		props[string(c)] = map[string]any{"type": "integer"}
		parts = append(parts, `"`+string(c)+`":"s"`)
	}
	s := mustCompile(t, map[string]any{"type": "object", "properties": props})
	out := "{" + strings.Join(parts, ",") + "}"
	fs := s.Validate([]byte(out))
	if len(fs) != MaxFailures+1 {
		t.Fatalf("got %d failures, want %d and a summary", len(fs), MaxFailures+1)
	}
	if fs[0].Path != "/a" || fs[MaxFailures-1].Path != "/t" || fs[MaxFailures].Reason != "and 6 more failures" {
		t.Fatalf("unexpected order or summary: %v", Strings(fs))
	}
}

func TestPointerEscapes(t *testing.T) {
	s := mustCompile(t, map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}})
	fs := s.Validate([]byte(`{"a/b~c":1}`))
	if len(fs) != 1 || fs[0].Path != "/a~1b~0c" {
		t.Fatalf("failures %v, want path /a~1b~0c", fs)
	}
}

func TestRepairMessage(t *testing.T) {
	s := mustCompile(t, triage)
	fs := s.Validate([]byte(`{"category":"refund"}`))
	m := RepairMessage(fs)
	if m.Role != "user" {
		t.Fatalf("role %q, want user", m.Role)
	}
	for _, want := range []string{"2 problems:", "- (root): missing property 'priority'", "- /category: value must be one of", "only the corrected JSON value"} {
		if !strings.Contains(m.Content.Text, want) {
			t.Fatalf("repair message\n%s\nlacks %q", m.Content.Text, want)
		}
	}
	msgs := Repair([]chat.Message{{Role: "user", Content: chat.Text("t")}}, `{"category":"refund"}`, fs)
	if len(msgs) != 3 || msgs[1].Role != "assistant" || msgs[1].Content.Text != `{"category":"refund"}` || msgs[2].Role != "user" {
		t.Fatalf("repair conversation %+v", msgs)
	}
}

func TestTools(t *testing.T) {
	tools, err := CompileTools([]config.Tool{
		{Name: "lookup_order", Parameters: map[string]any{
			"type": "object", "required": []any{"order_id"},
			"properties": map[string]any{"order_id": map[string]any{"type": "string", "pattern": "^A-[0-9]+$"}},
		}},
		{Name: "now"},
	})
	if err != nil {
		t.Fatal(err)
	}
	call := func(name, args string) chat.ToolCall {
		return chat.ToolCall{Type: "function", Function: chat.FunctionCall{Name: name, Arguments: args}}
	}
	tests := []struct {
		name string
		call chat.ToolCall
		want string // "" for valid
	}{
		{"valid", call("lookup_order", `{"order_id":"A-12"}`), ""},
		{"no params any object", call("now", `{"tz":"UTC"}`), ""},
		{"no params empty args", call("now", ``), ""},
		{"missing arg", call("lookup_order", `{}`), "lookup_order: missing property 'order_id'"},
		{"pattern", call("lookup_order", `{"order_id":"12"}`), "lookup_order/order_id: '12' does not match pattern"},
		{"unknown tool", call("delete_all", `{}`), `lookup_order: unknown tool "delete_all" (offered: lookup_order, now)`},
		{"not json", call("lookup_order", `{order_id: 1}`), "lookup_order: arguments: invalid JSON at line 1, column 2"},
		{"not object", call("now", `[1]`), "now: arguments must be a JSON object, not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := tools.Check(tt.call)
			if tt.want == "" {
				if fs != nil {
					t.Fatalf("got failures %v, want none", fs)
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("got %v, want one failure", Strings(fs))
			}
			got := fs[0].String()
			if tt.name == "unknown tool" {
				got = "lookup_order: " + fs[0].Reason
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Fatalf("failure %q, want prefix %q", got, tt.want)
			}
		})
	}
	if _, err := CompileTools([]config.Tool{{Name: "x", Parameters: map[string]any{"type": 3}}}); err == nil || !strings.Contains(err.Error(), "tools[0] (x).parameters") {
		t.Fatalf("bad tool schema error %v, want it to name the tool", err)
	}
}

func TestLines(t *testing.T) {
	l := Lines{mustCompile(t, triage)}
	if got := l.Validate([]byte(`{"category":"billing","priority":1}`)); got != nil {
		t.Fatalf("valid output gave %v", got)
	}
	got := l.Validate([]byte(`{"category":"billing","priority":0}`))
	if len(got) != 1 || got[0] != "/priority: minimum: got 0, want 1" {
		t.Fatalf("got %q", got)
	}
}
