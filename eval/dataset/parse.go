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
			problems = append(problems, config.Problem{File: file, Line: config.LineOf(lines, fmt.Sprintf("cases[%d]", i)), Path: fmt.Sprintf("cases[%d]", i), Reason: err.Error()})
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
			problems = append(problems, config.Problem{File: file, Line: config.LineOf(lines, p.Path), Path: p.Path, Reason: p.Reason})
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
	lines, err := config.DecodeYAML(file, data, &d, config.YAMLOptions{NoAliases: true})
	if errors.Is(err, config.ErrEmptyYAML) {
		return d, nil, config.Problem{File: file, Reason: "empty dataset file"}
	}
	return d, lines, err
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
