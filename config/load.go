package config

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes bounds a configuration file.
const MaxFileBytes = 16 << 20

// Aliases may repeat parts of a document, but never make it much larger
// than it is: with its aliases expanded, a document may hold at most twice
// its own nodes plus MaxAliasSlack. The billion laughs (a few kilobytes
// whose aliases expand to a billion nodes) are refused before anything
// walks or decodes them, so parsing takes time and memory linear in the
// file. MaxAliases bounds the aliases themselves.
const (
	MaxAliasSlack = 10_000
	MaxAliases    = 10_000
)

// Problem is one thing wrong with a configuration, with where it is.
type Problem struct {
	File   string
	Line   int
	Path   string
	Reason string
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Reason)
	return b.String()
}

// LoadFile reads and validates a YAML configuration file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a YAML configuration. Unknown fields, values of
// the wrong type and invalid references are all reported, each with the file,
// line, path and reason, joined into one error.
func Parse(file string, data []byte) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, Problem{File: file, Reason: fmt.Sprintf("file is %d bytes, more than the limit of %d", len(data), MaxFileBytes)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problem{File: file, Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var cfg Config
	if len(doc.Content) == 0 {
		return &cfg, nil
	}
	root := doc.Content[0]
	if err := checkAliases(root); err != nil {
		return nil, Problem{File: file, Reason: err.Error()}
	}
	lines := map[string]int{}
	var problems []error
	strict(root, reflect.TypeOf(cfg), "", lines, func(line int, path, reason string) {
		problems = append(problems, Problem{File: file, Line: line, Path: path, Reason: reason})
	})
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if err := root.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				problems = append(problems, Problem{File: file, Reason: e})
			}
			return nil, errors.Join(problems...)
		}
		return nil, Problem{File: file, Reason: err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		var v ValidationError
		if errors.As(err, &v) {
			for _, p := range v {
				p.File = file
				p.Line = lineOf(lines, p.Path)
				problems = append(problems, p)
			}
			return nil, errors.Join(problems...)
		}
		return nil, err
	}
	return &cfg, nil
}

// lineOf finds the line of path or of its nearest recorded parent.
func lineOf(lines map[string]int, path string) int {
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

// strict walks a YAML node against the Go type it will decode into, reports
// fields the type does not have, and records the line of every path.
func strict(n *yaml.Node, t reflect.Type, path string, lines map[string]int, report func(line int, path, reason string)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		lines[path] = n.Line
	}
	if n.Tag == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) || t.Kind() == reflect.Interface {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			report(n.Line, path, fmt.Sprintf("want a mapping, found %s", kindName(n)))
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
				report(k.Line, p, fmt.Sprintf("unknown field %q", k.Value))
				continue
			}
			if seen[k.Value] {
				report(k.Line, p, "field appears twice")
			}
			seen[k.Value] = true
			strict(v, ft, p, lines, report)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			report(n.Line, path, fmt.Sprintf("want a list, found %s", kindName(n)))
			return
		}
		for i, c := range n.Content {
			strict(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, report)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			report(n.Line, path, fmt.Sprintf("want a mapping, found %s", kindName(n)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			strict(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), lines, report)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			report(n.Line, path, fmt.Sprintf("want a %s, found %s", t.Kind(), kindName(n)))
		}
	}
}

// checkAliases measures what the document holds with its aliases expanded,
// without expanding them: sizes of aliased nodes are kept, so the
// measuring is linear in the document.
func checkAliases(root *yaml.Node) error {
	nodes, aliases := 0, 0
	var count func(n *yaml.Node)
	count = func(n *yaml.Node) {
		nodes++
		if n.Kind == yaml.AliasNode {
			aliases++
			return
		}
		for _, c := range n.Content {
			count(c)
		}
	}
	count(root)
	if aliases > MaxAliases {
		return fmt.Errorf("%d aliases, more than the limit of %d", aliases, MaxAliases)
	}
	if aliases == 0 {
		return nil
	}
	limit := 2*nodes + MaxAliasSlack
	sizes := map[*yaml.Node]int{}
	var size func(n *yaml.Node, depth int) (int, error)
	size = func(n *yaml.Node, depth int) (int, error) {
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return 0, fmt.Errorf("line %d: an alias to nothing", n.Line)
			}
			if depth > nodes {
				return 0, fmt.Errorf("line %d: alias *%s refers to itself", n.Line, n.Value)
			}
			if s, ok := sizes[n.Alias]; ok {
				return s, nil
			}
			s, err := size(n.Alias, depth+1)
			sizes[n.Alias] = s
			return s, err
		}
		total := 1
		for _, c := range n.Content {
			s, err := size(c, depth+1)
			if err != nil {
				return 0, err
			}
			if total += s; total > limit {
				return total, nil // enough to refuse; stop adding
			}
		}
		return total, nil
	}
	expanded, err := size(root, 0)
	if err != nil {
		return err
	}
	if expanded > limit {
		return fmt.Errorf("aliases expand the document past %d nodes (it has %d); repeat less, or write the parts out", limit, nodes)
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}
