package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Bounds on generated JSON, so any schema yields a small answer or an error.
const (
	simMaxDepth  = 32 // nesting of schemas followed, $ref included
	simShallow   = 6  // below this depth only what the schema requires is made
	simMaxNodes  = 2000
	simMaxItems  = 64 // largest minItems honoured
	simMaxString = 4096
)

// simJSON returns a JSON text that satisfies schema, a JSON Schema
// (2020-12). It understands type, enum, const, properties, required,
// additionalProperties, items, prefixItems, min/max bounds and lengths,
// multipleOf, format, allOf, anyOf, oneOf and local $ref; pattern, not,
// if/then/else and uniqueItems are not honoured. An empty schema yields a
// short string.
func simJSON(schema json.RawMessage, rng *rand.Rand) (string, error) {
	var root any = map[string]any{}
	if s := bytes.TrimSpace(schema); len(s) > 0 && string(s) != "null" {
		if err := json.Unmarshal(s, &root); err != nil {
			return "", fmt.Errorf("schema is not JSON: %w", err)
		}
	}
	g := &simGen{root: root, rng: rng, budget: simMaxNodes}
	v, err := g.value(root, 0, "#")
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode generated value: %w", err)
	}
	return string(b), nil
}

type simGen struct {
	root   any
	rng    *rand.Rand
	budget int
}

func (g *simGen) value(schema any, depth int, at string) (any, error) {
	if depth > simMaxDepth {
		return nil, fmt.Errorf("%s: schema nests deeper than %d", at, simMaxDepth)
	}
	if g.budget--; g.budget < 0 {
		return nil, fmt.Errorf("%s: the value would have more than %d parts", at, simMaxNodes)
	}
	var s map[string]any
	switch v := schema.(type) {
	case bool:
		if !v {
			return nil, fmt.Errorf("%s: schema false admits no value", at)
		}
		return "value", nil
	case map[string]any:
		s = v
	default:
		return nil, fmt.Errorf("%s: a schema must be an object or a boolean", at)
	}
	if ref, ok := s["$ref"].(string); ok {
		target, err := g.resolve(ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		return g.value(target, depth+1, ref)
	}
	if c, ok := s["const"]; ok {
		return c, nil
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[g.rng.IntN(len(e))], nil
	}
	if all, ok := s["allOf"].([]any); ok && len(all) > 0 {
		merged, err := g.merge(s, all)
		if err != nil {
			return nil, fmt.Errorf("%s/allOf: %w", at, err)
		}
		return g.value(merged, depth+1, at+"/allOf")
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if alts, ok := s[key].([]any); ok && len(alts) > 0 {
			return g.value(alts[0], depth+1, at+"/"+key+"/0")
		}
	}
	switch t := typeOf(s); t {
	case "object":
		return g.object(s, depth, at)
	case "array":
		return g.array(s, depth, at)
	case "integer", "number":
		return g.number(s, t == "integer", at)
	case "string":
		return g.str(s, at)
	case "boolean":
		return g.rng.IntN(2) == 0, nil
	case "null":
		return nil, nil
	default:
		return nil, fmt.Errorf("%s: unknown type %q", at, t)
	}
}

// typeOf is the type to make: the schema's, its first non-null one from a
// list, or the one its keywords imply.
func typeOf(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if name, ok := x.(string); ok && name != "null" {
				return name
			}
		}
		if len(t) > 0 {
			return "null"
		}
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := s[k]; ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("properties", "required", "additionalProperties", "minProperties"):
		return "object"
	case has("items", "prefixItems", "minItems", "maxItems"):
		return "array"
	case has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
		return "number"
	}
	return "string"
}

// resolve follows a local reference: "#" or a JSON pointer from the root.
func (g *simGen) resolve(ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local; only #/… references are followed", ref)
	}
	cur := g.root
	if ptr == "" {
		return cur, nil
	}
	if ptr[0] != '/' {
		return nil, fmt.Errorf("$ref %q: anchors are not followed, only JSON pointers", ref)
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("$ref %q: no item %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("$ref %q: %q is inside a value that is not a schema", ref, tok)
		}
	}
	return cur, nil
}

// merge folds allOf into one schema: properties and required are united,
// other keywords keep their first value.
func (g *simGen) merge(s map[string]any, all []any) (map[string]any, error) {
	out := map[string]any{}
	props := map[string]any{}
	var required []any
	for _, part := range append([]any{s}, all...) {
		m, ok := part.(map[string]any)
		if !ok {
			if b, isBool := part.(bool); isBool && b {
				continue
			}
			return nil, errors.New("allOf holds a schema that is not an object")
		}
		if ref, ok := m["$ref"].(string); ok {
			target, err := g.resolve(ref)
			if err != nil {
				return nil, err
			}
			if m, ok = target.(map[string]any); !ok {
				return nil, fmt.Errorf("$ref %q in allOf is not an object schema", ref)
			}
		}
		for k, v := range m {
			switch k {
			case "allOf", "$ref":
			case "properties":
				if pm, ok := v.(map[string]any); ok {
					for name, ps := range pm {
						if _, seen := props[name]; !seen {
							props[name] = ps
						}
					}
				}
			case "required":
				if r, ok := v.([]any); ok {
					required = append(required, r...)
				}
			default:
				if _, seen := out[k]; !seen {
					out[k] = v
				}
			}
		}
	}
	if len(props) > 0 {
		out["properties"] = props
	}
	if len(required) > 0 {
		out["required"] = required
	}
	return out, nil
}

func (g *simGen) object(s map[string]any, depth int, at string) (any, error) {
	props, _ := s["properties"].(map[string]any)
	required := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, x := range r {
			if name, ok := x.(string); ok {
				required[name] = true
			}
		}
	}
	out := map[string]any{}
	// Sorted, so a seeded simulator makes the same choices every run.
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !required[name] && (depth >= simShallow || g.rng.IntN(10) >= 7) {
			continue
		}
		v, err := g.value(props[name], depth+1, at+"/properties/"+name)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	extra := s["additionalProperties"]
	for name := range required {
		if _, done := out[name]; done {
			continue
		}
		if _, declared := props[name]; declared {
			continue
		}
		var schema any = true
		if extra != nil {
			schema = extra
		}
		v, err := g.value(schema, depth+1, at+"/additionalProperties")
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

func (g *simGen) array(s map[string]any, depth int, at string) (any, error) {
	lo, hasLo := intKeyword(s, "minItems")
	hi, hasHi := intKeyword(s, "maxItems")
	if lo > simMaxItems {
		return nil, fmt.Errorf("%s: minItems %d is more than the simulator makes (%d)", at, lo, simMaxItems)
	}
	if hasLo && hasHi && hi < lo {
		return nil, fmt.Errorf("%s: maxItems %d is below minItems %d", at, hi, lo)
	}
	n := lo
	if depth < simShallow {
		n = max(lo, 1+g.rng.IntN(3))
	}
	if hasHi {
		n = min(n, hi)
	}
	prefix, _ := s["prefixItems"].([]any)
	var items any = true
	if it, ok := s["items"]; ok {
		items = it
	}
	if b, ok := items.(bool); ok && !b {
		n = min(n, len(prefix))
	}
	out := make([]any, 0, n)
	for i := range n {
		schema, path := items, at+"/items"
		if i < len(prefix) {
			schema, path = prefix[i], fmt.Sprintf("%s/prefixItems/%d", at, i)
		}
		v, err := g.value(schema, depth+1, path)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (g *simGen) number(s map[string]any, integer bool, at string) (any, error) {
	lo, hi := math.Inf(-1), math.Inf(1)
	exLo, exHi := false, false
	if v, ok := s["minimum"].(float64); ok {
		lo = v
	}
	if v, ok := s["exclusiveMinimum"].(float64); ok && v >= lo {
		lo, exLo = v, true
	}
	if v, ok := s["maximum"].(float64); ok {
		hi = v
	}
	if v, ok := s["exclusiveMaximum"].(float64); ok && v <= hi {
		hi, exHi = v, true
	}
	switch {
	case math.IsInf(lo, -1) && math.IsInf(hi, 1):
		lo, hi = 0, 100
	case math.IsInf(lo, -1):
		lo = hi - 100
	case math.IsInf(hi, 1):
		hi = lo + 100
	}
	step := 1.0
	if m, ok := s["multipleOf"].(float64); ok && m > 0 {
		step = m
	} else if !integer {
		step = 0.01
	}
	if integer && step != math.Trunc(step) {
		return nil, fmt.Errorf("%s: an integer with multipleOf %v is not supported", at, step)
	}
	// Values are whole multiples of step inside the bounds.
	first, last := math.Ceil(lo/step), math.Floor(hi/step)
	if exLo && first*step <= lo {
		first++
	}
	if exHi && last*step >= hi {
		last--
	}
	if math.IsInf(first, 0) || math.IsInf(last, 0) {
		return nil, fmt.Errorf("%s: bounds %v..%v are too wide to count in steps of %v", at, lo, hi, step)
	}
	if first > last {
		return nil, fmt.Errorf("%s: no %s lies between %v and %v", at, typeName(integer), lo, hi)
	}
	k := first + float64(g.rng.Int64N(int64(min(last-first, 1<<20))+1))
	v := k * step
	if integer {
		if math.Abs(v) > 1<<53 {
			return nil, fmt.Errorf("%s: integer bounds beyond ±2^53 are not supported", at)
		}
		return int64(v), nil
	}
	// Round away float noise such as 0.30000000000000004 without leaving
	// the bounds.
	if r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 6, 64), 64); err == nil && r >= lo && r <= hi {
		v = r
	}
	return v, nil
}

func typeName(integer bool) string {
	if integer {
		return "integer"
	}
	return "number"
}

var simFormats = map[string]string{
	"date-time": "2026-01-15T09:30:00Z",
	"date":      "2026-01-15",
	"time":      "09:30:00Z",
	"email":     "customer@example.com",
	"uri":       "https://example.com/orders/1042",
	"url":       "https://example.com/orders/1042",
	"uuid":      "6f1c2a8e-4b7d-4e2a-9c3f-1d2e3f4a5b6c",
	"hostname":  "shop.example.com",
	"ipv4":      "192.0.2.10",
	"ipv6":      "2001:db8::10",
}

func (g *simGen) str(s map[string]any, at string) (any, error) {
	if f, ok := s["format"].(string); ok {
		if v, ok := simFormats[f]; ok {
			return v, nil
		}
	}
	lo, _ := intKeyword(s, "minLength")
	hi, hasHi := intKeyword(s, "maxLength")
	if lo > simMaxString {
		return nil, fmt.Errorf("%s: minLength %d is more than the simulator makes (%d)", at, lo, simMaxString)
	}
	if hasHi && hi < lo {
		return nil, fmt.Errorf("%s: maxLength %d is below minLength %d", at, hi, lo)
	}
	words := simWords(g.rng, 2+g.rng.IntN(4))
	v := strings.TrimSuffix(strings.Join(words, ""), ".")
	for len(v) < lo {
		v += " " + simVocabulary[g.rng.IntN(len(simVocabulary))]
	}
	if hasHi && len(v) > hi {
		v = v[:hi] // the vocabulary is ASCII, so bytes are characters
	}
	return v, nil
}

// intKeyword reads a non-negative integer keyword.
func intKeyword(s map[string]any, key string) (int, bool) {
	v, ok := s[key].(float64)
	if !ok || v < 0 || v != math.Trunc(v) {
		return 0, false
	}
	return int(min(v, math.MaxInt32)), true
}
