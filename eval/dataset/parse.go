package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"gantry/config"
)

// Formats of a dataset file.
const (
	YAML  = "yaml"
	JSONL = "jsonl"
)

// FormatOf picks the format by the file's extension: .jsonl and .ndjson
// are JSONL, anything else YAML (of which JSON is a part).
func FormatOf(file string) string {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".jsonl", ".ndjson":
		return JSONL
	}
	return YAML
}

// Load reads and parses a dataset file.
func Load(file string) (Dataset, error) {
	f, err := os.Open(file)
	if err != nil {
		return Dataset{}, fmt.Errorf("read dataset: %w", err)
	}
	defer f.Close()
	// One byte past the limit tells a file at the limit from one over it
	// without reading all of a huge one.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return Dataset{}, fmt.Errorf("read dataset: %w", err)
	}
	return Parse(file, data)
}

// Parse decodes a dataset file in the format its name implies, fills
// derived case ids, normalises values and checks the result. Every
// problem is reported as a config.Problem with the file, line and field,
// joined into one error.
func Parse(file string, data []byte) (Dataset, error) {
	if len(data) > MaxFileBytes {
		return Dataset{}, config.Problem{File: file, Reason: fmt.Sprintf("file is more than the limit of %d bytes", MaxFileBytes)}
	}
	var (
		d     Dataset
		lines map[string]int
		err   error
	)
	if FormatOf(file) == JSONL {
		d, lines, err = parseJSONL(file, data)
	} else {
		d, lines, err = parseYAML(file, data)
	}
	if err != nil {
		return Dataset{}, err
	}
	if d.Name == "" {
		d.Name = defaultName(file)
	}
	var problems []error
	for i := range d.Cases {
		if err := normalizeCase(&d.Cases[i]); err != nil {
			problems = append(problems, config.Problem{File: file, Line: lineOf(lines, fmt.Sprintf("cases[%d]", i)), Path: fmt.Sprintf("cases[%d]", i), Reason: err.Error()})
		}
	}
	for i := range d.Assert {
		if v, err := normalize(d.Assert[i].Value); err == nil {
			d.Assert[i].Value = v
		}
	}
	if len(problems) > 0 {
		return Dataset{}, errors.Join(problems...)
	}
	for i := range d.Cases {
		if d.Cases[i].ID == "" {
			d.Cases[i].ID = caseID(d.Cases[i])
		}
	}
	if err := d.Check(); err != nil {
		var ps Problems
		if !errors.As(err, &ps) {
			return Dataset{}, config.Problem{File: file, Reason: err.Error()}
		}
		for _, p := range ps {
			problems = append(problems, config.Problem{File: file, Line: lineOf(lines, p.Path), Path: p.Path, Reason: p.Reason})
		}
		return Dataset{}, errors.Join(problems...)
	}
	return d, nil
}

// defaultName is the file's base name without extension, when it makes a
// valid name.
func defaultName(file string) string {
	base := strings.ToLower(strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)))
	if nameRE.MatchString(base) && len(base) <= MaxNameBytes {
		return base
	}
	return ""
}

// normalizeCase brings decoded values to the form encoding/json decodes
// into (so a YAML 1 and a JSON 1.0 hash alike) and refuses values that do
// not encode as JSON, such as YAML mappings with non-string keys.
func normalizeCase(c *Case) error {
	if c.Vars != nil {
		v, err := normalize(c.Vars)
		if err != nil {
			return fmt.Errorf("vars: %v", err)
		}
		m, _ := v.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		c.Vars = m
	}
	for i := range c.Assert {
		v, err := normalize(c.Assert[i].Value)
		if err != nil {
			return fmt.Errorf("assert[%d].value: %v", i, err)
		}
		c.Assert[i].Value = v
	}
	for i := range c.ToolCalls {
		if c.ToolCalls[i].Arguments == nil {
			continue
		}
		v, err := normalize(c.ToolCalls[i].Arguments)
		if err != nil {
			return fmt.Errorf("tool_calls[%d].arguments: %v", i, err)
		}
		c.ToolCalls[i].Arguments, _ = v.(map[string]any)
	}
	return nil
}

func normalize(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errors.New("not a JSON value (mapping keys must be strings)")
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func parseYAML(file string, data []byte) (Dataset, map[string]int, error) {
	var d Dataset
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return d, nil, yamlProblem(file, err)
	}
	if len(doc.Content) == 0 {
		return d, nil, config.Problem{File: file, Reason: "empty dataset file"}
	}
	root := doc.Content[0]
	lines := map[string]int{}
	var problems []error
	strict(root, reflect.TypeOf(d), "", lines, 0, func(line int, path, reason string) {
		if len(problems) < 100 {
			problems = append(problems, config.Problem{File: file, Line: line, Path: path, Reason: reason})
		}
	})
	if len(problems) > 0 {
		return d, nil, errors.Join(problems...)
	}
	if err := root.Decode(&d); err != nil {
		return d, nil, yamlProblem(file, err)
	}
	return d, lines, nil
}

// yamlProblem turns a YAML error into problems with lines.
func yamlProblem(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var ps []error
		for _, e := range te.Errors {
			ps = append(ps, config.Problem{File: file, Reason: e})
		}
		return errors.Join(ps...)
	}
	return config.Problem{File: file, Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// strict walks a YAML node against the Go type it will decode into: it
// reports unknown fields, repeated fields and wrong shapes with their
// lines, and records the line of every path.
func strict(n *yaml.Node, t reflect.Type, path string, lines map[string]int, depth int, report func(line int, path, reason string)) {
	if depth > 32 {
		report(n.Line, path, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		// Aliases could multiply a small file into a huge dataset.
		report(n.Line, path, "YAML aliases are not allowed in a dataset")
		return
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
	switch t.Kind() {
	case reflect.Interface:
		anyNode(n, path, depth, report)
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
			strict(v, ft, p, lines, depth+1, report)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			report(n.Line, path, fmt.Sprintf("want a list, found %s", kindName(n)))
			return
		}
		for i, c := range n.Content {
			strict(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, depth+1, report)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			report(n.Line, path, fmt.Sprintf("want a mapping, found %s", kindName(n)))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if seen[k] {
				report(n.Content[i].Line, join(path, k), "key appears twice")
			}
			seen[k] = true
			strict(n.Content[i+1], t.Elem(), join(path, k), lines, depth+1, report)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			report(n.Line, path, fmt.Sprintf("want a %s, found %s", t.Kind(), kindName(n)))
		}
	}
}

// anyNode checks a free-form value: no aliases, no repeated keys, bounded
// depth.
func anyNode(n *yaml.Node, path string, depth int, report func(line int, path, reason string)) {
	if depth > 32 {
		report(n.Line, path, "nested too deeply")
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		report(n.Line, path, "YAML aliases are not allowed in a dataset")
	case yaml.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if seen[k] {
				report(n.Content[i].Line, join(path, k), "key appears twice")
			}
			seen[k] = true
			anyNode(n.Content[i+1], join(path, k), depth+1, report)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			anyNode(c, fmt.Sprintf("%s[%d]", path, i), depth+1, report)
		}
	}
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
		return fmt.Sprintf("%q", clip(n.Value))
	}
}

// lineOf finds the line of path or of its nearest recorded parent.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[ ")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// header is the optional first line of a JSONL dataset.
type header struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Assert      json.RawMessage `json:"assert"`
}

// parseJSONL reads one JSON object a line: an optional header first
// (name, description, assert), then one case a line. Blank lines are
// skipped.
func parseJSONL(file string, data []byte) (Dataset, map[string]int, error) {
	var d Dataset
	lines := map[string]int{}
	var problems []error
	report := func(line int, path, reason string) {
		if len(problems) < 100 {
			problems = append(problems, config.Problem{File: file, Line: line, Path: path, Reason: reason})
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4<<10), MaxCaseBytes+1) // the larger of the two is the limit
	n := 0
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			report(n, "", "want one JSON object on the line: "+jsonReason(err))
			continue
		}
		_, hasName := keys["name"]
		_, hasCases := keys["cases"]
		if hasCases {
			report(n, "cases", "a JSONL dataset has one case a line, not a cases list (use YAML or JSON for a whole dataset)")
			continue
		}
		if hasName {
			if len(d.Cases) > 0 || d.Name != "" {
				report(n, "name", "the header line (name, description, assert) must come first, once")
				continue
			}
			var h header
			if err := decodeStrict(raw, &h); err != nil {
				report(n, "", err.Error())
				continue
			}
			d.Name, d.Description = h.Name, h.Description
			lines["name"], lines["assert"] = n, n
			if len(h.Assert) > 0 {
				if err := decodeStrict(h.Assert, &d.Assert); err != nil {
					report(n, "assert", err.Error())
				}
			}
			continue
		}
		if len(d.Cases) >= MaxCases {
			report(n, "", fmt.Sprintf("more than %d cases", MaxCases))
			break
		}
		var c Case
		path := fmt.Sprintf("cases[%d]", len(d.Cases))
		if err := decodeStrict(raw, &c); err != nil {
			report(n, path, err.Error())
		}
		lines[path] = n
		d.Cases = append(d.Cases, c)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			report(n+1, "", fmt.Sprintf("line is longer than the limit of %d bytes for one case", MaxCaseBytes))
		} else {
			report(n, "", err.Error())
		}
	}
	if len(problems) > 0 {
		return d, nil, errors.Join(problems...)
	}
	return d, lines, nil
}

// decodeStrict decodes one JSON value refusing unknown fields and
// trailing data.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(jsonReason(err))
	}
	if dec.More() {
		return errors.New("text after the JSON object")
	}
	return nil
}

// jsonReason words a JSON decoding error without the package prefix.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: want %s, found a JSON %s", te.Field, goKind(te.Type), te.Value)
		}
		return fmt.Sprintf("want %s, found a JSON %s", goKind(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error())
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		return "a list"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Pointer:
		return goKind(t.Elem())
	default:
		return "a " + t.Kind().String()
	}
}
