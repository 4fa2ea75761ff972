package validate

import (
	"fmt"
	"sort"
	"strings"

	"gantry/config"
	"gantry/pipeline/chat"
)

// Tools holds the compiled parameter schemas of a release's tools.
type Tools struct {
	schemas map[string]*Schema // nil schema: any object
	names   []string
}

// CompileTools compiles every tool's parameter schema; a tool without one
// takes any JSON object. Errors name the tool.
func CompileTools(tools []config.Tool) (*Tools, error) {
	t := &Tools{schemas: make(map[string]*Schema, len(tools))}
	for i, tool := range tools {
		if _, dup := t.schemas[tool.Name]; dup {
			return nil, fmt.Errorf("tools[%d]: tool %q is defined twice", i, tool.Name)
		}
		var s *Schema
		if tool.Parameters != nil {
			var err error
			if s, err = Compile(tool.Parameters); err != nil {
				return nil, fmt.Errorf("tools[%d] (%s).parameters: %w", i, tool.Name, err)
			}
		}
		t.schemas[tool.Name] = s
		t.names = append(t.names, tool.Name)
	}
	sort.Strings(t.names)
	return t, nil
}

// Check validates one tool call: the tool must exist and its arguments must
// be a JSON object that satisfies the tool's parameters. Failure paths are
// prefixed with the tool's name, e.g. "lookup_order/order_id".
func (t *Tools) Check(call chat.ToolCall) []Failure {
	name := call.Function.Name
	s, ok := t.schemas[name]
	if !ok {
		return []Failure{{Path: name, Reason: fmt.Sprintf("unknown tool %q (offered: %s)", name, strings.Join(t.names, ", "))}}
	}
	args := call.Function.Arguments
	if strings.TrimSpace(args) == "" {
		args = "{}"
	}
	v, f := Decode([]byte(args))
	if f != nil {
		return []Failure{{Path: name, Reason: "arguments: " + f.Reason}}
	}
	if _, isObj := v.(map[string]any); !isObj {
		return []Failure{{Path: name, Reason: "arguments must be a JSON object, not " + jsonKind(v)}}
	}
	if s == nil {
		return nil
	}
	fs := s.ValidateValue(v)
	for i := range fs {
		fs[i].Path = name + fs[i].Path
	}
	return fs
}

// CheckAll validates every call of a response message.
func (t *Tools) CheckAll(calls []chat.ToolCall) []Failure {
	var out []Failure
	for _, c := range calls {
		out = append(out, t.Check(c)...)
	}
	return out
}
