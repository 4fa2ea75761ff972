package prompt

import (
	"fmt"
	"strings"
)

// MaxRenderSteps bounds the work of one rendering: every node written and
// every #each iteration is a step, so nested loops over callers' lists
// whose bodies print nothing are bounded too. A million steps take tens of
// milliseconds.
const MaxRenderSteps = 1_000_000

// RenderLimitError is a rendering stopped at MaxRenderSteps: which message
// of the template, and the list whose loop was running.
type RenderLimitError struct {
	Message  string // system, template[i] or retrieval.query
	Variable string // the #each list being iterated, as written
	Limit    int
}

func (e *RenderLimitError) Error() string {
	return fmt.Sprintf("%s: rendering takes more than %d steps, in {{#each %s}}; send shorter lists", e.Message, e.Limit, e.Variable)
}

// Unwrap makes it an error about the caller's variables.
func (e *RenderLimitError) Unwrap() error { return ErrVars }

// renderer writes nodes with one call's variables. Its stack holds the
// items of the enclosing #each blocks, innermost last.
type renderer struct {
	vars    map[string]any
	context string
	stack   []frame
	size    int
	msg     string // the message being rendered, for errors
	steps   int
	limit   int // MaxRenderSteps unless a test lowers it
}

// step counts one step of work in the loop over list.
func (r *renderer) step(list string) error {
	r.steps++
	if r.steps > r.budget() {
		return &RenderLimitError{Message: r.msg, Variable: list, Limit: r.budget()}
	}
	return nil
}

func (r *renderer) budget() int {
	if r.limit > 0 {
		return r.limit
	}
	return MaxRenderSteps
}

// loop names the innermost #each list, for a step outside any is top level.
func (r *renderer) loop() string {
	if n := len(r.stack); n > 0 {
		return r.stack[n-1].list
	}
	return ""
}

type frame struct {
	item  any
	index int
	list  string
}

func (r *renderer) nodes(b *strings.Builder, nodes []node) error {
	for _, n := range nodes {
		if err := r.step(r.loop()); err != nil {
			return err
		}
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
				if err := r.step(n.list.raw); err != nil {
					return err
				}
				r.stack = append(r.stack, frame{item: item, index: i, list: n.list.raw})
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
