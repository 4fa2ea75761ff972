package validate

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unsafe"
)

// What a schema may ask of the validator. jsonschema/v6 checks a schema
// against its meta-schema once per nesting level, rebuilding the JSON
// pointer of the level each time (validator.metaResource): compiling n
// nested levels costs about n³, so 2,000 levels took seconds. Numbers go
// through math/big, where 1e999999 costs tens of milliseconds each. And a
// schema whose $refs fan out (anyOf over two references to the same
// definition, nested) makes validation exponential in the output's depth.
// Bounding depth and numbers makes compilation linear in a schema's size;
// bounding the schema with its references expanded makes validation
// linear in output size times that bound.
const (
	// MaxSchemaDepth bounds the JSON nesting of any schema: about 32
	// levels of nested objects.
	MaxSchemaDepth = 64
	// MaxNumberLen bounds a number written in a schema or an output.
	MaxNumberLen = 64
	// MaxOutputDepth bounds the JSON nesting of an output.
	MaxOutputDepth = 128
	// MaxCallerSchemaBytes bounds a schema a caller sends in
	// response_format.
	MaxCallerSchemaBytes = 64 << 10
	// MaxCallerSchemaNodes bounds a caller's schema with every $ref
	// replaced by what it points at: the most schema one output value can
	// be checked against.
	MaxCallerSchemaNodes = 20_000
)

// metaSchemas are the $schema values a schema may name: the drafts the
// validator knows, which it never loads from the network.
var metaSchemas = map[string]bool{}

func init() {
	for _, u := range []string{
		"json-schema.org/draft/2020-12/schema", "json-schema.org/draft/2019-09/schema",
		"json-schema.org/draft-07/schema", "json-schema.org/draft-06/schema", "json-schema.org/draft-04/schema",
	} {
		for _, scheme := range []string{"http://", "https://"} {
			metaSchemas[scheme+u] = true
			metaSchemas[scheme+u+"#"] = true
		}
	}
}

// checkShape walks a decoded schema (numbers as json.Number) and refuses
// what the bounds above exclude. Errors name the JSON pointer where the
// problem is.
func checkShape(doc any) error {
	var walk func(v any, at string, depth int) error
	walk = func(v any, at string, depth int) error {
		if depth > MaxSchemaDepth {
			return fmt.Errorf("at %s: nested deeper than %d levels", orRoot(at), MaxSchemaDepth)
		}
		switch x := v.(type) {
		case json.Number:
			return checkNumber(x, at)
		case []any:
			for i, e := range x {
				if err := walk(e, at+"/"+strconv.Itoa(i), depth+1); err != nil {
					return err
				}
			}
		case map[string]any:
			if s, ok := x["$schema"].(string); ok && !metaSchemas[s] {
				return fmt.Errorf("at %s: $schema %q is not a draft this validator knows (2020-12, 2019-09, 7, 6 or 4); schemas are never fetched", orRoot(at), s)
			}
			for k, e := range x {
				if err := walk(e, at+"/"+pointerToken(k), depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(doc, "", 0)
}

func checkNumber(n json.Number, at string) error {
	if len(n) > MaxNumberLen {
		return fmt.Errorf("at %s: a number of %d characters, more than %d", orRoot(at), len(n), MaxNumberLen)
	}
	if f, err := strconv.ParseFloat(string(n), 64); err != nil || math.IsInf(f, 0) {
		return fmt.Errorf("at %s: %s is beyond the range of a double", orRoot(at), n)
	}
	return nil
}

// checkCaller applies the further bounds of a caller's schema: references
// only within the schema, none of them circular, and at most
// MaxCallerSchemaNodes nodes once they are expanded.
func checkCaller(doc any) error {
	anchors := map[string]any{}
	var collect func(v any)
	collect = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				collect(e)
			}
		case map[string]any:
			for _, kw := range []string{"$anchor", "$dynamicAnchor"} {
				if a, ok := x[kw].(string); ok {
					anchors[a] = x
				}
			}
			for _, e := range x {
				collect(e)
			}
		}
	}
	collect(doc)
	resolve := func(ref, at string) (any, error) {
		frag, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return nil, fmt.Errorf("at %s: $ref %q points outside the schema; a caller's schema keeps what it refers to under $defs", orRoot(at), ref)
		}
		if frag == "" || strings.HasPrefix(frag, "/") {
			v, ok := lookupPointer(doc, frag)
			if !ok {
				return nil, fmt.Errorf("at %s: $ref %q points at nothing", orRoot(at), ref)
			}
			return v, nil
		}
		v, ok := anchors[frag]
		if !ok {
			return nil, fmt.Errorf("at %s: $ref %q names no anchor", orRoot(at), ref)
		}
		return v, nil
	}
	// size is the node count of v with its references expanded. Sizes are
	// kept per object (by identity), so a DAG costs its own size to
	// measure although its expansion may be exponential; an object met
	// again while it is being measured is a cycle.
	var size func(v any, at string) (int, error)
	var sizeMap func(m map[string]any, at string) (int, error)
	memo := map[unsafe.Pointer]int{}
	active := map[unsafe.Pointer]bool{}
	size = func(v any, at string) (int, error) {
		switch x := v.(type) {
		case []any:
			n := 1
			for i, e := range x {
				s, err := size(e, at+"/"+strconv.Itoa(i))
				if err != nil {
					return 0, err
				}
				if n += s; n > MaxCallerSchemaNodes {
					return n, nil
				}
			}
			return n, nil
		case map[string]any:
			return sizeMap(x, at)
		}
		return 1, nil
	}
	sizeMap = func(m map[string]any, at string) (int, error) {
		a := reflect.ValueOf(m).UnsafePointer()
		if n, ok := memo[a]; ok {
			return n, nil
		}
		if active[a] {
			return 0, fmt.Errorf("at %s: the schema refers to itself; a caller's schema cannot be recursive (unroll it to the depth you need)", orRoot(at))
		}
		active[a] = true
		defer delete(active, a)
		if id, ok := m["$id"]; ok {
			if s, _ := id.(string); !strings.HasPrefix(s, "#") {
				return 0, fmt.Errorf("at %s: $id %v would move the schema's base; a caller's schema has none", orRoot(at), id)
			}
		}
		n := 1
		for k, e := range m {
			var s int
			var err error
			switch k {
			case "$ref", "$dynamicRef", "$recursiveRef":
				ref, _ := e.(string)
				if k == "$recursiveRef" {
					ref = "#"
				}
				target, rerr := resolve(ref, at)
				if rerr != nil {
					return 0, rerr
				}
				s, err = size(target, at+"/"+k)
			default:
				s, err = size(e, at+"/"+pointerToken(k))
			}
			if err != nil {
				return 0, err
			}
			if n += s; n > MaxCallerSchemaNodes {
				break
			}
		}
		memo[a] = n
		return n, nil
	}
	n, err := size(doc, "")
	if err != nil {
		return err
	}
	if n > MaxCallerSchemaNodes {
		return fmt.Errorf("the schema with its references expanded has more than %d nodes", MaxCallerSchemaNodes)
	}
	return nil
}

// lookupPointer resolves a JSON pointer (RFC 6901, URL-escaped as in a
// fragment) in doc.
func lookupPointer(doc any, ptr string) (any, bool) {
	if p, err := url.PathUnescape(ptr); err == nil {
		ptr = p
	}
	v := doc
	if ptr == "" {
		return v, true
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// checkOutputShape bounds an output before it meets the validator: its
// nesting and its numbers. The path of a failure is built on the way back
// up, so a good output costs no strings.
func checkOutputShape(v any) *Failure {
	var walk func(v any, depth int) *Failure
	walk = func(v any, depth int) *Failure {
		if depth > MaxOutputDepth {
			return &Failure{Reason: fmt.Sprintf("nested deeper than %d levels", MaxOutputDepth)}
		}
		switch x := v.(type) {
		case json.Number:
			if checkNumber(x, "") != nil {
				return &Failure{Reason: "a number too large to check: " + string(x[:min(len(x), 24)])}
			}
		case []any:
			for i, e := range x {
				if f := walk(e, depth+1); f != nil {
					f.Path = "/" + strconv.Itoa(i) + f.Path
					return f
				}
			}
		case map[string]any:
			for k, e := range x {
				if f := walk(e, depth+1); f != nil {
					f.Path = "/" + pointerToken(k) + f.Path
					return f
				}
			}
		}
		return nil
	}
	return walk(v, 0)
}

func pointerToken(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func orRoot(at string) string {
	if at == "" {
		return "the root"
	}
	return at
}
