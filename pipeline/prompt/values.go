package prompt

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// normalize checks a value's size, depth and encoding and brings it to the
// shapes the renderer knows: string, bool, a number, []any, map[string]any.
// changed reports whether the result differs from v, so the common case of
// clean JSON-decoded values costs no copy. budget is the text still allowed.
// Errors carry the path below the variable ("[2].name"); the caller
// prefixes the variable's name, so no path is built unless something fails.
func normalize(v any, depth int, budget *int) (out any, changed bool, err *VarError) {
	if depth > MaxValueDepth {
		return nil, false, &VarError{Reason: fmt.Sprintf("nested deeper than %d", MaxValueDepth)}
	}
	switch x := v.(type) {
	case string:
		if *budget -= len(x); *budget < 0 {
			return nil, false, &VarError{Reason: fmt.Sprintf("holds more than %d bytes of text", MaxValueBytes)}
		}
		if !utf8.ValidString(x) {
			return nil, false, &VarError{Reason: "is not valid UTF-8"}
		}
		if s, ok := stripControls(x); ok {
			return s, true, nil
		}
		return x, false, nil
	case bool, nil:
		return x, false, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false, &VarError{Reason: "is not a finite number"}
		}
		return x, false, nil
	case float32:
		return normalize(float64(x), depth, budget)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x, false, nil
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return nil, false, &VarError{Reason: fmt.Sprintf("%q is not a number", string(x))}
		}
		return x, false, nil
	case []any:
		if len(x) > MaxListItems {
			return nil, false, &VarError{Reason: fmt.Sprintf("has %d items, more than the limit of %d", len(x), MaxListItems)}
		}
		var copied []any
		for i, item := range x {
			c, ch, err := normalize(item, depth+1, budget)
			if err != nil {
				err.Name = "[" + strconv.Itoa(i) + "]" + err.Name
				return nil, false, err
			}
			if ch && copied == nil {
				copied = append(make([]any, 0, len(x)), x...)
			}
			if copied != nil {
				copied[i] = c
			}
		}
		if copied != nil {
			return copied, true, nil
		}
		return x, false, nil
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		out, _, err := normalize(items, depth, budget)
		return out, true, err
	case map[string]any:
		if len(x) > MaxListItems {
			return nil, false, &VarError{Reason: fmt.Sprintf("has %d fields, more than the limit of %d", len(x), MaxListItems)}
		}
		var copied map[string]any
		for k, item := range x {
			if *budget -= len(k); *budget < 0 {
				return nil, false, &VarError{Reason: fmt.Sprintf("holds more than %d bytes of text", MaxValueBytes)}
			}
			c, ch, err := normalize(item, depth+1, budget)
			if err != nil {
				err.Name = "." + k + err.Name
				return nil, false, err
			}
			if ch {
				if copied == nil {
					copied = make(map[string]any, len(x))
					for k2, v2 := range x {
						copied[k2] = v2
					}
				}
				copied[k] = c
			}
		}
		if copied != nil {
			return copied, true, nil
		}
		return x, false, nil
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		out, _, err := normalize(m, depth, budget)
		return out, true, err
	default:
		return nil, false, &VarError{Reason: fmt.Sprintf("has unsupported Go type %T", v)}
	}
}

// stripControls removes control characters other than tab, newline and
// carriage return; ok reports whether anything was removed.
func stripControls(s string) (string, bool) {
	i := strings.IndexFunc(s, isStripped)
	if i < 0 {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if !isStripped(r) {
			b.WriteRune(r)
		}
	}
	return b.String(), true
}

func isStripped(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// typeOf names a normalized value's template type.
func typeOf(v any) string {
	switch v.(type) {
	case string:
		return TypeString
	case bool:
		return TypeBoolean
	case []any:
		return TypeList
	case map[string]any:
		return TypeObject
	case nil:
		return "null"
	default:
		return TypeNumber
	}
}

// truthy is a value's truth for {{#if}}.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f != 0
	case float64:
		return x != 0
	case int:
		return x != 0
	case int64:
		return x != 0
	default:
		return fmt.Sprint(x) != "0"
	}
}

// write appends a value's text form.
func write(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
	case string:
		b.WriteString(x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float64:
		b.WriteString(formatFloat(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case json.Number:
		b.WriteString(string(x))
	case []any, map[string]any:
		writeJSON(b, x)
	default:
		fmt.Fprint(b, x)
	}
}

// formatFloat writes integers without a fraction or exponent, so 3 is "3"
// and 1e6 is "1000000", the way people write them in prose.
func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// writeJSON writes compact JSON with object keys sorted, so output is
// deterministic; values were normalized and always encode.
func writeJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case []any:
		b.WriteByte('[')
		for i, item := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, item)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			writeJSON(b, x[k])
		}
		b.WriteByte('}')
	case string:
		writeJSONString(b, x)
	case nil:
		b.WriteString("null")
	default:
		write(b, x)
	}
}

func writeJSONString(b *strings.Builder, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}
