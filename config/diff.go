package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Operations of a Change.
const (
	OpAdd    = "add"
	OpRemove = "remove"
	OpChange = "change"
	// OpUnlisted: an earlier file declared the object and this one does
	// not; it stays until an apply prunes.
	OpUnlisted = "unlisted"
	// OpSkip: the file lists an object the API manages (made there, or
	// rotated or revoked there); the file's version is not applied.
	OpSkip = "skip"
)

// Change is what applying a file does to one object, field by field.
type Change struct {
	Kind   string        `json:"kind"`
	Name   string        `json:"name"`
	Op     string        `json:"op"`
	Fields []FieldChange `json:"fields,omitempty"`
	Note   string        `json:"note,omitempty"`
}

// FieldChange is one field of an object before and after, as compact JSON;
// an empty side means the field is absent there.
type FieldChange struct {
	Path string `json:"path"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// maxFieldChanges bounds the fields listed for one object.
const maxFieldChanges = 100

// Changes lists what applying file took cur to next, object by object in
// the order of Config's fields, then by name: objects added, removed and
// changed with the fields that changed, and the objects the file lists but
// did not change because the API manages them, or that an earlier file
// declared and this one does not. declared holds the objects a file had
// declared before (as kind/name); nil when that is not known.
func Changes(cur, next *Config, declared map[string]string, file *Config) []Change {
	out := []Change{}
	a, b, f := objectsOf(cur), objectsOf(next), objectsOf(file)
	for _, kind := range kindsOf() {
		names := map[string]bool{}
		for _, m := range []map[string]map[string]any{a, b} {
			for n := range m[kind] {
				names[n] = true
			}
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		slices.Sort(sorted)
		for _, n := range sorted {
			oa, inA := a[kind][n]
			ob, inB := b[kind][n]
			of, inF := f[kind][n]
			key := kind + "/" + n
			if kind == "limits" {
				key = "limits"
			}
			_, wasDeclared := declared[key]
			switch {
			case !inA:
				out = append(out, Change{Kind: kind, Name: n, Op: OpAdd})
			case !inB:
				out = append(out, Change{Kind: kind, Name: n, Op: OpRemove})
			case !reflect.DeepEqual(oa, ob):
				out = append(out, Change{Kind: kind, Name: n, Op: OpChange, Fields: fieldChanges(oa, ob)})
			case inF && declared != nil && !wasDeclared && !reflect.DeepEqual(oa, of):
				out = append(out, Change{Kind: kind, Name: n, Op: OpSkip, Note: "managed through the API; the file's version is not applied"})
			case !inF && wasDeclared:
				out = append(out, Change{Kind: kind, Name: n, Op: OpUnlisted, Note: "no longer in the file; --prune removes it"})
			}
		}
	}
	return out
}

// ChangesAnything reports whether cs adds, removes or changes an object,
// rather than only noting objects an apply leaves alone.
func ChangesAnything(cs []Change) bool {
	for _, c := range cs {
		if c.Op == OpAdd || c.Op == OpRemove || c.Op == OpChange {
			return true
		}
	}
	return false
}

// DeclaresNothing reports whether c has no object at all: a file that is
// empty or only comments, which an apply refuses rather than read as
// "nothing to declare".
func (c *Config) DeclaresNothing() bool {
	return len(c.Providers)+len(c.Models)+len(c.Routes)+len(c.Features)+len(c.Keys)+len(c.Collections)+len(c.Teams)+len(c.Budgets) == 0 &&
		reflect.ValueOf(c.Limits).IsZero()
}

// kindsOf is the JSON names of Config's fields, in order.
func kindsOf() []string {
	t := reflect.TypeOf(Config{})
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

// objectsOf maps kind -> name -> the object as generic JSON. A field that
// is not a list (limits) is one object named after its kind, present when
// set.
func objectsOf(c *Config) map[string]map[string]any {
	out := map[string]map[string]any{}
	if c == nil {
		return out
	}
	var generic map[string]json.RawMessage
	b, _ := json.Marshal(c)
	_ = json.Unmarshal(b, &generic)
	for kind, raw := range generic {
		m := map[string]any{}
		var list []map[string]any
		if json.Unmarshal(raw, &list) == nil {
			for i, item := range list {
				name, _ := item["name"].(string)
				if name == "" {
					name = fmt.Sprintf("#%d", i)
				}
				m[name] = item
			}
		} else {
			var v any
			_ = json.Unmarshal(raw, &v)
			if obj, ok := v.(map[string]any); ok && len(obj) > 0 {
				m[kind] = obj
			}
		}
		out[kind] = m
	}
	return out
}

// fieldChanges compares two objects leaf by leaf. Lists of objects with a
// name or a version are matched by it, so inserting one does not show
// every later one as changed.
func fieldChanges(a, b any) []FieldChange {
	fa, fb := map[string]string{}, map[string]string{}
	flatten("", a, fa)
	flatten("", b, fb)
	var paths []string
	for p := range fa {
		paths = append(paths, p)
	}
	for p := range fb {
		if _, ok := fa[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var out []FieldChange
	for _, p := range paths {
		if fa[p] == fb[p] {
			continue
		}
		if len(out) == maxFieldChanges {
			out = append(out, FieldChange{Path: "…", New: "more fields changed"})
			break
		}
		out = append(out, FieldChange{Path: p, Old: fa[p], New: fb[p]})
	}
	return out
}

func flatten(path string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			out[path] = "{}"
		}
		for k, e := range x {
			flatten(join(path, k), e, out)
		}
	case []any:
		if len(x) == 0 {
			out[path] = "[]"
		}
		for i, e := range x {
			flatten(path+"["+elemKey(e, i)+"]", e, out)
		}
	default:
		b, _ := json.Marshal(x)
		out[path] = string(b)
	}
}

// elemKey names a list element by its name or version, else its index.
func elemKey(e any, i int) string {
	if m, ok := e.(map[string]any); ok {
		if n, ok := m["name"].(string); ok && n != "" {
			return n
		}
		if v, ok := m["version"].(float64); ok {
			return fmt.Sprintf("v%d", int(v))
		}
	}
	return fmt.Sprint(i)
}
