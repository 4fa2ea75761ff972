// Package release holds what Gantry does with release records beyond
// storing them: field-by-field diffs for review, label moves (promote,
// rollback, canary) as pure state transitions the cluster replicates, sticky
// canary assignment of users, and the checks a release must pass before it
// is created.
package release

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gantry/config"
)

// Change kinds.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

// Change is one field that differs between two releases. Path names the
// field the way configuration errors do ("template[0].content",
// "schema.properties.priority.maximum"); Old and New are its values as
// compact JSON, or the text itself for text fields, which also get Lines.
type Change struct {
	Path  string `json:"path"`
	Kind  string `json:"kind"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	Lines []Line `json:"lines,omitempty"`
}

// Line is one line of a text diff: Op is ' ' (kept), '-' (removed) or '+'
// (added).
type Line struct {
	Op   byte   `json:"op"`
	Text string `json:"text"`
}

// textFields are compared line by line.
func isText(path string) bool {
	return path == "system" || path == "retrieval.query" ||
		(strings.HasPrefix(path, "template[") && strings.HasSuffix(path, "].content"))
}

// Diff lists what differs between two releases, field by field, in a stable
// order. The version number is not a difference: two releases with the same
// content have no changes (and the same hash).
func Diff(a, b config.Release) []Change {
	a.Version, b.Version = 0, 0
	var changes []Change
	walk(tree(a), tree(b), "", &changes)
	return changes
}

// tree turns a release into the generic JSON tree its hash is computed from.
func tree(r config.Release) any {
	raw, err := json.Marshal(r)
	if err != nil {
		panic("release: release does not encode: " + err.Error())
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic("release: " + err.Error())
	}
	return v
}

func walk(a, b any, path string, out *[]Change) {
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := k
			if path != "" {
				p = path + "." + k
			}
			walk(am[k], bm[k], p, out)
		}
		return
	}
	al, aIsList := a.([]any)
	bl, bIsList := b.([]any)
	if aIsList && bIsList {
		n := max(len(al), len(bl))
		for i := 0; i < n; i++ {
			var x, y any
			if i < len(al) {
				x = al[i]
			}
			if i < len(bl) {
				y = bl[i]
			}
			walk(x, y, path+"["+strconv.Itoa(i)+"]", out)
		}
		return
	}
	if equal(a, b) {
		return
	}
	c := Change{Path: path, Kind: Changed}
	switch {
	case a == nil:
		c.Kind = Added
	case b == nil:
		c.Kind = Removed
	}
	as, aStr := a.(string)
	bs, bStr := b.(string)
	if isText(path) && (aStr || a == nil) && (bStr || b == nil) {
		c.Old, c.New = as, bs
		c.Lines = LineDiff(as, bs)
	} else {
		c.Old, c.New = compact(a), compact(b)
	}
	*out = append(*out, c)
}

func equal(a, b any) bool { return compact(a) == compact(b) }

func compact(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// maxDiffCells bounds the line diff's table; longer texts are shown as a
// whole replacement rather than costing quadratic time.
const maxDiffCells = 4 << 20

// LineDiff is a longest-common-subsequence diff of two texts by line.
func LineDiff(a, b string) []Line {
	x, y := splitLines(a), splitLines(b)
	// Trim the common head and tail, which is most of a typical edit.
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	var out []Line
	for _, l := range x[:pre] {
		out = append(out, Line{' ', l})
	}
	mx, my := x[pre:len(x)-suf], y[pre:len(y)-suf]
	if (len(mx)+1)*(len(my)+1) > maxDiffCells {
		for _, l := range mx {
			out = append(out, Line{'-', l})
		}
		for _, l := range my {
			out = append(out, Line{'+', l})
		}
	} else {
		out = append(out, lcs(mx, my)...)
	}
	for _, l := range x[len(x)-suf:] {
		out = append(out, Line{' ', l})
	}
	return out
}

func lcs(x, y []string) []Line {
	n, m := len(x), len(y)
	// t[i][j] is the LCS length of x[i:] and y[j:].
	t := make([][]int32, n+1)
	for i := range t {
		t[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var out []Line
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case x[i] == y[j]:
			out = append(out, Line{' ', x[i]})
			i++
			j++
		case t[i+1][j] >= t[i][j+1]:
			out = append(out, Line{'-', x[i]})
			i++
		default:
			out = append(out, Line{'+', y[j]})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, Line{'-', x[i]})
	}
	for ; j < m; j++ {
		out = append(out, Line{'+', y[j]})
	}
	return out
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Format writes changes for a terminal or a review comment: one header per
// field, text fields as line diffs, other fields as old → new.
func Format(changes []Change) string {
	if len(changes) == 0 {
		return "no changes\n"
	}
	var b strings.Builder
	for _, c := range changes {
		fmt.Fprintf(&b, "%s (%s)\n", c.Path, c.Kind)
		if c.Lines != nil {
			for _, l := range c.Lines {
				fmt.Fprintf(&b, "  %c %s\n", l.Op, l.Text)
			}
			continue
		}
		switch c.Kind {
		case Added:
			fmt.Fprintf(&b, "  + %s\n", c.New)
		case Removed:
			fmt.Fprintf(&b, "  - %s\n", c.Old)
		default:
			fmt.Fprintf(&b, "  - %s\n  + %s\n", c.Old, c.New)
		}
	}
	return b.String()
}
