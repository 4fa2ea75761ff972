package prompt

import (
	"fmt"
	"strings"
)

// renderer writes nodes with one call's variables. Its stack holds the
// items of the enclosing #each blocks, innermost last.
type renderer struct {
	vars    map[string]any
	context string
	stack   []frame
	size    int
}

type frame struct {
	item  any
	index int
}

func (r *renderer) nodes(b *strings.Builder, nodes []node) error {
	for _, n := range nodes {
		switch n := n.(type) {
		case textNode:
			b.WriteString(n.text)
			r.size += len(n.text)
		case refNode:
			v, _ := r.lookup(n)
			before := b.Len()
			write(b, v)
			r.size += b.Len() - before
		case ifNode:
			v, _ := r.lookup(n.cond)
			branch := n.els
			if truthy(v) {
				branch = n.then
			}
			if err := r.nodes(b, branch); err != nil {
				return err
			}
		case eachNode:
			v, _ := r.lookup(n.list)
			if v == nil {
				continue
			}
			items, ok := v.([]any)
			if !ok {
				return &VarError{Name: n.list.raw, Reason: fmt.Sprintf("{{#each}} wants a list, got a %s", typeOf(v))}
			}
			for i, item := range items {
				r.stack = append(r.stack, frame{item: item, index: i})
				err := r.nodes(b, n.body)
				r.stack = r.stack[:len(r.stack)-1]
				if err != nil {
					return err
				}
			}
		}
		if r.size > MaxRenderedBytes {
			return &VarError{Name: "*", Reason: fmt.Sprintf("the rendered prompt exceeds %d bytes; shorten the variables", MaxRenderedBytes)}
		}
	}
	return nil
}

// lookup resolves a reference; a missing field or optional variable is
// absent, which renders as nothing and is false.
func (r *renderer) lookup(n refNode) (any, bool) {
	var v any
	switch {
	case n.index:
		return r.stack[len(r.stack)-1].index, true
	case n.dot:
		v = r.stack[len(r.stack)-1].item
	case n.root == ContextVar && r.vars[ContextVar] == nil:
		v = r.context
	default:
		var ok bool
		if v, ok = r.vars[n.root]; !ok {
			return nil, false
		}
	}
	for _, p := range n.path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}
