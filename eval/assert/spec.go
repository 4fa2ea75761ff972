// Package assert checks one answer of a release against a case's
// assertions. A Spec is the plain, JSON-able form an assertion has in a
// dataset file and in the replicated state; Check validates it against
// the limits the evaluators rely on; a Compiler turns specs into
// Assertions once per run (regular expressions, JSON Schemas and JSONPath
// queries compiled once, schemas shared between cases); an Assertion's
// Eval yields pass or fail and, where the kind has one, a score in 0..1.
//
// Model-graded kinds call a Judge and embedding similarity calls an
// Embedder: both are interfaces the runner provides, so that a judge model
// is called through the gateway itself and its cost is tracked and
// budgeted like any call.
package assert

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/theory/jsonpath"

	"gantry/pipeline/validate"
)

// Kinds of assertion. Any of them may be negated with the Not prefix.
const (
	Equals       = "equals"
	Contains     = "contains"
	IContains    = "icontains"
	ContainsAny  = "contains-any"
	ContainsAll  = "contains-all"
	IContainsAny = "icontains-any"
	IContainsAll = "icontains-all"
	StartsWith   = "starts-with"
	Regex        = "regex"
	IsJSON       = "is-json"
	JSONSchema   = "json-schema"
	JSONPath     = "json-path"
	Levenshtein  = "levenshtein"
	Latency      = "latency"
	Cost         = "cost"
	LLMRubric    = "llm-rubric"
	Faithfulness = "faithfulness"
	Retrieval    = "retrieval"
	ToolCall     = "tool-call"
	Similar      = "similar"

	// Not negates any kind: not-contains passes where contains fails.
	Not = "not-"
)

// Kinds lists every kind, in the order the documentation gives them.
var Kinds = []string{Equals, Contains, IContains, ContainsAny, ContainsAll, IContainsAny, IContainsAll,
	StartsWith, Regex, IsJSON, JSONSchema, JSONPath, Levenshtein, Latency, Cost, LLMRubric, Faithfulness,
	Retrieval, ToolCall, Similar}

// Limits of one assertion.
const (
	MaxValueBytes  = 16 << 10 // a string value, a rubric, an encoded JSON value
	MaxListValues  = 64       // values of contains-any and the like
	MaxRegexBytes  = 1 << 10
	MaxPathBytes   = 512
	MaxSchemaBytes = 64 << 10 // a JSON Schema, encoded as JSON
	MaxK           = 100
	// MaxLevenshteinRunes bounds each side of an edit distance, which
	// costs the product of the two lengths.
	MaxLevenshteinRunes = 4096
	// MaxMs and MaxUSD bound latency and cost limits to sane values.
	MaxMs  = 24 * 3600 * 1000
	MaxUSD = 1000
)

// Spec is one assertion as a dataset states it. Which fields a kind
// takes is checked by Check.
type Spec struct {
	Type string `yaml:"type" json:"type"`
	// Value is what the output is compared with: a string, a list of
	// strings for the -any and -all kinds, a JSON value for equals and
	// json-path, a JSON Schema for json-schema, the rubric of llm-rubric,
	// the argument subset of tool-call. equals, levenshtein and similar
	// take the case's expected output when it is unset.
	Value any `yaml:"value" json:"value,omitempty"`
	// Path is the RFC 9535 JSONPath query of json-path.
	Path string `yaml:"path" json:"path,omitempty"`
	// Threshold is the lowest passing score of levenshtein, similar,
	// llm-rubric, faithfulness and retrieval (recall@k).
	Threshold *float64 `yaml:"threshold" json:"threshold,omitempty"`
	MaxMs     float64  `yaml:"max_ms" json:"max_ms,omitempty"`   // latency
	MaxUSD    float64  `yaml:"max_usd" json:"max_usd,omitempty"` // cost
	// K is how many retrieved sources retrieval looks at; 0 means all.
	K int `yaml:"k" json:"k,omitempty"`
	// Tool names the tool a tool-call assertion expects; unset, the
	// case's expected tool calls are used.
	Tool string `yaml:"tool" json:"tool,omitempty"`
}

// Default thresholds.
const (
	DefaultLevenshtein = 0.8
	DefaultSimilar     = 0.8
	DefaultJudge       = 0.5
	DefaultRecall      = 1.0
)

// Kind splits the type into its base kind and whether it is negated.
func (s Spec) Kind() (base string, negated bool) {
	if b, ok := strings.CutPrefix(s.Type, Not); ok {
		return b, true
	}
	return s.Type, false
}

// NeedsExpected reports whether the spec compares with the case's
// expected output because it has no value of its own.
func (s Spec) NeedsExpected() bool {
	k, _ := s.Kind()
	return s.Value == nil && (k == Equals || k == Levenshtein || k == Similar)
}

// Field is a problem with one field of a spec.
type Field struct {
	Name   string // the spec's field: type, value, path, …
	Reason string
}

func (f *Field) Error() string { return f.Name + ": " + f.Reason }

func bad(name, format string, args ...any) error {
	return &Field{Name: name, Reason: fmt.Sprintf(format, args...)}
}

// Check validates the spec against the limits; the error is a *Field
// naming the field at fault.
func (s Spec) Check() error {
	base, _ := s.Kind()
	known := false
	for _, k := range Kinds {
		known = known || k == base
	}
	if !known {
		return bad("type", "unknown assertion type %q (known: %s, each may take the prefix %q)", s.Type, strings.Join(Kinds, ", "), Not)
	}
	// Fields a kind does not take are refused, so that a typo does not
	// silently make an assertion pass.
	takes := map[string]bool{"value": false, "path": false, "threshold": false, "max_ms": false, "max_usd": false, "k": false, "tool": false}
	switch base {
	case Equals, Contains, IContains, StartsWith, Regex, ContainsAny, ContainsAll, IContainsAny, IContainsAll, JSONSchema, LLMRubric:
		takes["value"] = true
	case JSONPath:
		takes["value"], takes["path"] = true, true
	case Levenshtein, Similar:
		takes["value"], takes["threshold"] = true, true
	case Latency:
		takes["max_ms"] = true
	case Cost:
		takes["max_usd"] = true
	case Faithfulness:
		takes["threshold"] = true
	case Retrieval:
		takes["threshold"], takes["k"] = true, true
	case ToolCall:
		takes["tool"], takes["value"] = true, true
	}
	if base == LLMRubric {
		takes["threshold"] = true
	}
	set := map[string]bool{"value": s.Value != nil, "path": s.Path != "", "threshold": s.Threshold != nil,
		"max_ms": s.MaxMs != 0, "max_usd": s.MaxUSD != 0, "k": s.K != 0, "tool": s.Tool != ""}
	for _, f := range []string{"value", "path", "threshold", "max_ms", "max_usd", "k", "tool"} {
		if set[f] && !takes[f] {
			return bad(f, "%s takes no %s", base, f)
		}
	}
	if s.Threshold != nil && !(*s.Threshold >= 0 && *s.Threshold <= 1) {
		return bad("threshold", "threshold %v is outside 0..1", *s.Threshold)
	}
	switch base {
	case Contains, IContains, StartsWith, LLMRubric:
		str, ok := s.Value.(string)
		if !ok {
			if _, isList := s.Value.([]any); isList && (base == Contains || base == IContains) {
				return bad("value", "%s takes one string; use %s-any or %s-all for a list", base, base, base)
			}
			return bad("value", "%s needs a string value", base)
		}
		if str == "" {
			return bad("value", "%s needs a non-empty value", base)
		}
		return checkString("value", str, MaxValueBytes)
	case Regex:
		str, ok := s.Value.(string)
		if !ok || str == "" {
			return bad("value", "regex needs a pattern as its value")
		}
		if err := checkString("value", str, MaxRegexBytes); err != nil {
			return err
		}
		if _, err := regexp.Compile(str); err != nil {
			return bad("value", "regex: %v", err)
		}
	case ContainsAny, ContainsAll, IContainsAny, IContainsAll:
		list, ok := s.Value.([]any)
		if !ok || len(list) == 0 {
			return bad("value", "%s needs a non-empty list of strings", base)
		}
		if len(list) > MaxListValues {
			return bad("value", "%d values, more than %d", len(list), MaxListValues)
		}
		for i, v := range list {
			str, ok := v.(string)
			if !ok || str == "" {
				return bad(fmt.Sprintf("value[%d]", i), "want a non-empty string")
			}
			if err := checkString(fmt.Sprintf("value[%d]", i), str, MaxValueBytes); err != nil {
				return err
			}
		}
	case Equals:
		if s.Value != nil {
			return checkJSONValue("value", s.Value, MaxValueBytes)
		}
	case Levenshtein, Similar:
		if s.Value != nil {
			str, ok := s.Value.(string)
			if !ok {
				return bad("value", "%s needs a string value", base)
			}
			return checkString("value", str, MaxValueBytes)
		}
	case JSONSchema:
		if s.Value == nil {
			return bad("value", "json-schema needs the schema as its value")
		}
		if err := checkJSONValue("value", s.Value, MaxSchemaBytes); err != nil {
			return err
		}
		if _, err := validate.Compile(s.Value); err != nil {
			return bad("value", "%v", err)
		}
	case JSONPath:
		if s.Path == "" {
			return bad("path", "json-path needs a path such as $.order.id")
		}
		if err := checkString("path", s.Path, MaxPathBytes); err != nil {
			return err
		}
		if _, err := jsonpath.Parse(s.Path); err != nil {
			return bad("path", "%v", err)
		}
		if s.Value != nil {
			return checkJSONValue("value", s.Value, MaxValueBytes)
		}
	case Latency:
		if !(s.MaxMs > 0 && s.MaxMs <= MaxMs) {
			return bad("max_ms", "latency needs max_ms between 0 and %d", MaxMs)
		}
	case Cost:
		if !(s.MaxUSD > 0 && s.MaxUSD <= MaxUSD) {
			return bad("max_usd", "cost needs max_usd between 0 and %d", MaxUSD)
		}
	case Retrieval:
		if s.K < 0 || s.K > MaxK {
			return bad("k", "k %d is outside 0..%d", s.K, MaxK)
		}
	case ToolCall:
		if err := checkString("tool", s.Tool, 128); err != nil {
			return err
		}
		if s.Value != nil {
			if s.Tool == "" {
				return bad("value", "tool-call takes expected arguments only with a tool")
			}
			if _, ok := s.Value.(map[string]any); !ok {
				return bad("value", "tool-call's value is the expected arguments, a mapping")
			}
			return checkJSONValue("value", s.Value, MaxValueBytes)
		}
	}
	return nil
}

func checkString(field, s string, limit int) error {
	if len(s) > limit {
		return bad(field, "%d bytes, more than %d", len(s), limit)
	}
	if !utf8.ValidString(s) {
		return bad(field, "not valid UTF-8")
	}
	return nil
}

// checkJSONValue checks that v encodes as JSON within limit bytes.
func checkJSONValue(field string, v any, limit int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return bad(field, "not a JSON value: %v", err)
	}
	if len(b) > limit {
		return bad(field, "%d bytes as JSON, more than %d", len(b), limit)
	}
	return nil
}

// threshold is the spec's threshold or def.
func (s Spec) threshold(def float64) float64 {
	if s.Threshold != nil && !math.IsNaN(*s.Threshold) {
		return *s.Threshold
	}
	return def
}
