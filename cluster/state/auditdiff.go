package state

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// AuditChange is one field a change set, with its JSON values before and
// after; an empty side means the field was absent.
type AuditChange struct {
	Field  string `json:"field"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Bounds of a record's diff: the log keeps MaxAudit records, each a few
// kilobytes at most.
const (
	maxAuditChanges = 16
	maxAuditValue   = 96
)

// secretField reports whether a field holds a credential or its hash: the
// diff says it changed, never what it was or became.
func secretField(path string) bool {
	last := strings.ToLower(path[strings.LastIndexAny(path, ".]")+1:])
	for _, w := range []string{"hash", "secret", "token", "password", "credential"} {
		if strings.Contains(last, w) {
			return true
		}
	}
	return false
}

// fieldDiff lists the fields that differ between two objects of the same
// kind (structs or maps, as their JSON shows them), sorted by path, within
// the bounds above. Strings and other scalars have no fields: their
// summary is the whole story, and nil is returned.
func fieldDiff(before, after any) []AuditChange {
	b, okB := flatten(before)
	a, okA := flatten(after)
	if !okB && !okA {
		return nil
	}
	paths := map[string]bool{}
	for p := range b {
		paths[p] = true
	}
	for p := range a {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		if b[p] != a[p] {
			sorted = append(sorted, p)
		}
	}
	sort.Strings(sorted)
	out := make([]AuditChange, 0, min(len(sorted), maxAuditChanges))
	for i, p := range sorted {
		if i == maxAuditChanges-1 && len(sorted) > maxAuditChanges {
			out = append(out, AuditChange{Field: fmt.Sprintf("(%d more fields)", len(sorted)-i)})
			break
		}
		c := AuditChange{Field: truncate(p, maxAuditValue), Before: truncate(b[p], maxAuditValue), After: truncate(a[p], maxAuditValue)}
		if secretField(p) {
			c.Before, c.After = mask(b[p]), mask(a[p])
		}
		out = append(out, c)
	}
	return out
}

func mask(v string) string {
	if v == "" {
		return ""
	}
	return "(secret)"
}

// flatten maps each leaf of v's JSON to its path (a.b[2].c) and JSON
// value; ok is false for nil and for values without fields.
func flatten(v any) (map[string]string, bool) {
	switch v.(type) {
	case nil, string, fmt.Stringer:
		return nil, false
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var tree any
	if json.Unmarshal(raw, &tree) != nil {
		return nil, false
	}
	switch tree.(type) {
	case map[string]any, []any:
	default:
		return nil, false
	}
	out := map[string]string{}
	var walk func(path string, n any)
	walk = func(path string, n any) {
		switch x := n.(type) {
		case map[string]any:
			for k, c := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		default:
			b, _ := json.Marshal(x)
			out[path] = string(b)
		}
	}
	walk("", tree)
	return out, true
}
