package config

import (
	"errors"
	"fmt"
	"os"
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
	var cfg Config
	lines, err := DecodeYAML(file, data, &cfg, YAMLOptions{})
	if errors.Is(err, ErrEmptyYAML) {
		return &cfg, nil
	}
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		var v ValidationError
		if errors.As(err, &v) {
			var problems []error
			for _, p := range v {
				p.File = file
				p.Line = LineOf(lines, p.Path)
				problems = append(problems, p)
			}
			return nil, errors.Join(problems...)
		}
		return nil, err
	}
	return &cfg, nil
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
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
}
