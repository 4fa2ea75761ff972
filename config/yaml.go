package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrEmptyYAML: the document holds nothing, not even an empty mapping.
var ErrEmptyYAML = errors.New("the document is empty")

// YAMLOptions tune DecodeYAML for one kind of file.
type YAMLOptions struct {
	// NoAliases refuses YAML aliases outright, for files whose values are
	// data a reader cares to see written out (datasets).
	NoAliases bool
	// MaxProblems bounds the problems reported [100].
	MaxProblems int
}

// maxYAMLDepth bounds how deeply a document nests.
const maxYAMLDepth = 64

// DecodeYAML decodes a YAML document into v strictly, as every file Gantry
// reads is decoded: its aliases are measured before anything walks them
// (see MaxAliasSlack), fields v's type does not have, repeated fields and
// keys, values of the wrong shape and nesting past a bound are reported
// with file, line and path, and nothing is decoded unless all is well. It
// returns the line of every path it saw, for later problems (LineOf).
func DecodeYAML(file string, data []byte, v any, o YAMLOptions) (map[string]int, error) {
	if o.MaxProblems <= 0 {
		o.MaxProblems = 100
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problem{File: file, Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, ErrEmptyYAML
	}
	root := doc.Content[0]
	if err := checkAliases(root); err != nil {
		return nil, Problem{File: file, Reason: err.Error()}
	}
	lines := map[string]int{}
	var problems []error
	w := walker{lines: lines, noAliases: o.NoAliases, report: func(line int, path, reason string) {
		if len(problems) < o.MaxProblems {
			problems = append(problems, Problem{File: file, Line: line, Path: path, Reason: reason})
		}
	}}
	w.strict(root, reflect.TypeOf(v).Elem(), "", 0)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if err := root.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				problems = append(problems, Problem{File: file, Reason: e})
			}
			return nil, errors.Join(problems...)
		}
		return nil, Problem{File: file, Reason: err.Error()}
	}
	return lines, nil
}

// LineOf finds the line of path or of its nearest recorded parent.
func LineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

// walker checks a YAML tree against the Go type it will decode into.
type walker struct {
	lines     map[string]int
	noAliases bool
	report    func(line int, path, reason string)
}

// strict walks node n against type t, reports fields the type does not
// have, repeated fields and wrong shapes, and records the line of every
// path.
func (w walker) strict(n *yaml.Node, t reflect.Type, path string, depth int) {
	if depth > maxYAMLDepth {
		w.report(n.Line, path, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		if w.noAliases {
			w.report(n.Line, path, "YAML aliases are not allowed here; write the value out")
			return
		}
		n = n.Alias
	}
	if path != "" {
		w.lines[path] = n.Line
	}
	if n.Tag == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		w.anyNode(n, path, depth)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.report(n.Line, path, fmt.Sprintf("want a mapping, found %s", kindName(n)))
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				w.report(k.Line, p, fmt.Sprintf("unknown field %q", k.Value))
				continue
			}
			if seen[k.Value] {
				w.report(k.Line, p, "field appears twice")
			}
			seen[k.Value] = true
			w.strict(v, ft, p, depth+1)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.report(n.Line, path, fmt.Sprintf("want a list, found %s", kindName(n)))
			return
		}
		for i, c := range n.Content {
			w.strict(c, t.Elem(), index(path, i), depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.report(n.Line, path, fmt.Sprintf("want a mapping, found %s", kindName(n)))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if seen[k] {
				w.report(n.Content[i].Line, join(path, k), "key appears twice")
			}
			seen[k] = true
			w.strict(n.Content[i+1], t.Elem(), join(path, k), depth+1)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.report(n.Line, path, fmt.Sprintf("want a %s, found %s", t.Kind(), kindName(n)))
		}
	}
}

// anyNode checks a free-form value: no repeated keys, bounded depth, and
// no aliases where they are refused.
func (w walker) anyNode(n *yaml.Node, path string, depth int) {
	if depth > maxYAMLDepth {
		w.report(n.Line, path, "nested too deeply")
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		if w.noAliases {
			w.report(n.Line, path, "YAML aliases are not allowed here; write the value out")
		}
	case yaml.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if seen[k] {
				w.report(n.Content[i].Line, join(path, k), "key appears twice")
			}
			seen[k] = true
			w.anyNode(n.Content[i+1], join(path, k), depth+1)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			w.anyNode(c, index(path, i), depth+1)
		}
	}
}
