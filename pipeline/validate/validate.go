// Package validate checks model output against a release's JSON Schema
// (draft 2020-12) and tool-call arguments against each tool's parameter
// schema, and writes the repair message that sends failures back to the
// model.
//
// Schemas are compiled once per release. They are self-contained: a $ref to
// anything but the schema itself or the standard meta-schemas is refused, so
// validation never reaches the network or the disk.
package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Limits of what is compiled and checked.
const (
	MaxSchemaBytes = 256 << 10 // a schema, encoded as JSON
	MaxOutputBytes = 1 << 20   // one output or one call's arguments
	MaxFailures    = 20        // failures reported for one output
)

// schemaURL names the one resource a compiler holds.
const schemaURL = "gantry:///release-schema.json"

// ErrInvalidSchema is wrapped by every error about a schema itself.
var ErrInvalidSchema = errors.New("invalid JSON Schema")

var printer = message.NewPrinter(language.English)

// Schema is a compiled JSON Schema; safe for concurrent use.
type Schema struct {
	s *jsonschema.Schema
}

// Failure is one way an output misses its schema: where (a JSON pointer into
// the output, "" for the whole of it) and why.
type Failure struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (f Failure) String() string {
	p := f.Path
	if p == "" {
		p = "(root)"
	}
	return p + ": " + f.Reason
}

// Strings formats failures for a trace.
func Strings(fs []Failure) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	return out
}

// refuseLoader stands in for every URL loader: schemas are self-contained.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref to %q refused: schemas must be self-contained (put shared parts under $defs)", url)
}

// Compile compiles a schema given as decoded YAML or JSON (a mapping or a
// boolean), or as JSON bytes. The draft is 2020-12 unless the schema names
// another with $schema; format keywords are asserted, not just annotations.
// The schema must keep the bounds of limits.go on depth and numbers.
func Compile(schema any) (*Schema, error) {
	doc, err := normalize(schema, MaxSchemaBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return compile(doc)
}

// CompileCaller compiles a schema a caller sent (response_format) under
// the stricter bounds of a caller's schema: MaxCallerSchemaBytes, every
// $ref within the schema and none circular, MaxCallerSchemaNodes once they
// are expanded. The gateway calls it before anything is spent on the call.
func CompileCaller(raw []byte) (*Schema, error) {
	doc, err := normalize(raw, MaxCallerSchemaBytes)
	if err == nil {
		err = checkCaller(doc)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return compile(doc)
}

func compile(doc any) (*Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidSchema, schemaError(err))
	}
	return &Schema{s: s}, nil
}

// normalize brings a schema to the form the compiler wants: values as
// encoding/json decodes them, numbers as json.Number.
func normalize(schema any, maxBytes int) (any, error) {
	var raw []byte
	switch s := schema.(type) {
	case nil:
		return nil, errors.New("no schema")
	case []byte:
		raw = s
	case json.RawMessage:
		raw = s
	case string:
		return nil, errors.New("a schema is a mapping or a boolean, not a string")
	default:
		b, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("schema does not encode as JSON: %v", err)
		}
		raw = b
	}
	if len(raw) > maxBytes {
		return nil, fmt.Errorf("schema is %d bytes, more than the limit of %d", len(raw), maxBytes)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %v", err)
	}
	if err := checkShape(doc); err != nil {
		return nil, err
	}
	switch doc.(type) {
	case map[string]any, bool:
		return doc, nil
	default:
		return nil, fmt.Errorf("a schema is a mapping or a boolean, not %s", jsonKind(doc))
	}
}

// schemaError turns a compiler error into one that says where in the schema
// the problem is, without the internal URL.
func schemaError(err error) string {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			fs := failures(ve)
			msgs := make([]string, 0, len(fs))
			for _, f := range fs {
				msgs = append(msgs, "at "+f.String())
			}
			return "the schema does not follow the meta-schema: " + strings.Join(msgs, "; ")
		}
	}
	return strings.ReplaceAll(err.Error(), schemaURL, "schema")
}

// Validate checks one output. Output that is not JSON is itself a failure,
// with the line and column where parsing stopped. nil means valid.
func (s *Schema) Validate(output []byte) []Failure {
	v, f := Decode(output)
	if f != nil {
		return []Failure{*f}
	}
	return s.validate(v) // Decode checked the shape
}

// ValidateValue checks a decoded value (numbers as json.Number or float64).
func (s *Schema) ValidateValue(v any) []Failure {
	if f := checkOutputShape(v); f != nil {
		return []Failure{*f}
	}
	return s.validate(v)
}

func (s *Schema) validate(v any) []Failure {
	err := s.s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Failure{{Reason: err.Error()}}
	}
	return failures(ve)
}

// Decode parses one JSON value, refusing trailing data and oversized input,
// with numbers kept exact as json.Number.
func Decode(data []byte) (any, *Failure) {
	if len(data) > MaxOutputBytes {
		return nil, &Failure{Reason: fmt.Sprintf("output is %d bytes, more than the limit of %d", len(data), MaxOutputBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		off := len(data)
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset > 0 {
			off = int(se.Offset) - 1 // Offset counts the offending byte
		}
		reason := err.Error()
		switch {
		case errors.Is(err, io.EOF):
			reason = "empty output"
		case errors.Is(err, io.ErrUnexpectedEOF):
			reason = "output ends before the JSON value does"
		}
		line, col := lineCol(data, off)
		return nil, &Failure{Reason: fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, reason)}
	}
	off := int(dec.InputOffset())
	if rest := bytes.TrimSpace(data[off:]); len(rest) > 0 {
		line, col := lineCol(data, off+bytes.Index(data[off:], rest[:1]))
		return nil, &Failure{Reason: fmt.Sprintf("invalid JSON at line %d, column %d: text after the JSON value", line, col)}
	}
	if f := checkOutputShape(v); f != nil {
		return nil, f
	}
	return v, nil
}

// lineCol converts a byte offset to a 1-based line and column (in bytes).
func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := 1 + bytes.Count(before, []byte("\n"))
	col := off - bytes.LastIndexByte(before, '\n')
	return line, col
}

// failures flattens a validation error tree to its leaves, sorted and
// bounded, so the same output always yields the same list.
func failures(ve *jsonschema.ValidationError) []Failure {
	var out []Failure
	seen := map[Failure]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			f := Failure{Path: pointer(e.InstanceLocation), Reason: e.ErrorKind.LocalizedString(printer)}
			if _, ok := e.ErrorKind.(*kind.FalseSchema); ok {
				f.Reason = "not allowed here"
			}
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Reason < out[j].Reason
	})
	if len(out) > MaxFailures {
		more := len(out) - MaxFailures
		out = append(out[:MaxFailures], Failure{Reason: fmt.Sprintf("and %d more failures", more)})
	}
	return out
}

// pointer writes a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case []any:
		return "a list"
	case json.Number, float64:
		return "a number"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// Lines adapts a Schema for callers that record failures as text, one
// "path: reason" line each (traces, the pipeline's Validator interface).
type Lines struct{ *Schema }

// Validate checks output and formats the failures.
func (l Lines) Validate(output []byte) []string {
	fs := l.Schema.Validate(output)
	if fs == nil {
		return nil
	}
	return Strings(fs)
}
