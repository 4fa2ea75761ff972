// Package prompt renders a release's system instructions and message
// templates with a caller's variables.
//
// The template language is deliberately small and cannot execute code:
//
//	{{name}}                     a variable's value
//	{{order.id}}                 a field of an object variable
//	{{#if name}}…{{else}}…{{/if}} a branch on a value's truth
//	{{#each list}}…{{/each}}     a loop; {{.}} is the item, {{.field}} a
//	                             field of it, {{@index}} its position from 0
//	\{{                          a literal {{
//
// A value is false when it is absent, null, false, 0, "" or an empty list or
// object. Lists and objects written with {{name}} appear as compact JSON.
//
// Variables are data: a value that contains {{…}} is written out verbatim,
// never parsed. String values lose their control characters (all of C0 and
// C1 except tab, newline and carriage return) because they have no place in
// a prompt and are a known way to smuggle instructions past a reader; invalid
// UTF-8 is refused. Values larger than MaxValueBytes and prompts larger than
// MaxRenderedBytes are refused with the name of the variable.
package prompt

import (
	"errors"
	"fmt"
	"strings"

	"gantry/config"
	"gantry/pipeline/chat"
)

// Size limits of variables and of what a template renders.
const (
	MaxValueBytes    = 256 << 10 // text in one variable, nested values summed
	MaxRenderedBytes = 1 << 20   // all messages of one rendering
	MaxValueDepth    = 16        // nesting of lists and objects in a variable
	MaxListItems     = 10000     // items of one list
)

// ContextVar is the variable that holds retrieved context. It exists only in
// releases with a retrieval strategy and is filled by RenderContext, never
// by callers.
const ContextVar = "context"

// ErrVars is wrapped by every error about the caller's variables, so the
// gateway can answer 400 rather than 500.
var ErrVars = errors.New("invalid variables")

// VarError says what is wrong with one variable.
type VarError struct {
	Name   string // the variable, with a path into it when the problem is nested
	Reason string
}

func (e *VarError) Error() string { return fmt.Sprintf("variable %q: %s", e.Name, e.Reason) }

func (e *VarError) Unwrap() error { return ErrVars }

// Types of variables.
const (
	TypeString  = "string"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeList    = "list"
	TypeObject  = "object"
)

// Template is a release's messages, compiled once and rendered per call. It
// is immutable and safe for concurrent use.
type Template struct {
	system    []node
	hasSys    bool
	sysSize   int
	messages  []compiled
	vars      []config.Variable
	types     map[string]string
	query     []node // retrieval query, nil without retrieval
	queryName string
	retrieve  bool
	usesCtx   bool // some message writes {{context}} itself
}

type compiled struct {
	name  string // template[i]
	role  string
	nodes []node
	size  int // bytes of literal text plus room for values, to size buffers
}

// sizeHint is a first guess at a message's rendered size.
func sizeHint(src string) int { return len(src) + 256 }

// Compile parses the release's system instructions, template messages and
// retrieval query, and checks every reference against the declared
// variables. Errors carry the message, line and column.
func Compile(rel config.Release) (*Template, error) {
	t := &Template{vars: rel.Variables, types: map[string]string{}, retrieve: rel.Retrieval != nil}
	for i, v := range rel.Variables {
		if !isIdent(v.Name) {
			return nil, fmt.Errorf("variables[%d]: name %q cannot be referenced (use letters, digits, _ and -)", i, v.Name)
		}
		if t.retrieve && v.Name == ContextVar {
			return nil, fmt.Errorf("variables[%d]: %q is reserved for retrieved context in a release with retrieval", i, v.Name)
		}
		typ := v.Type
		if typ == "" {
			typ = TypeString
		}
		switch typ {
		case TypeString, TypeNumber, TypeBoolean, TypeList, TypeObject:
		default:
			return nil, fmt.Errorf("variables[%d]: unknown type %q (want string, number, boolean, list or object)", i, v.Type)
		}
		if _, dup := t.types[v.Name]; dup {
			return nil, fmt.Errorf("variables[%d]: %q is declared twice", i, v.Name)
		}
		t.types[v.Name] = typ
	}
	c := &checker{t: t}
	if rel.System != "" {
		nodes, err := c.compile("system", rel.System)
		if err != nil {
			return nil, err
		}
		t.system, t.hasSys, t.sysSize = nodes, true, sizeHint(rel.System)
	}
	for i, m := range rel.Template {
		nodes, err := c.compile(fmt.Sprintf("template[%d]", i), m.Content)
		if err != nil {
			return nil, err
		}
		t.messages = append(t.messages, compiled{name: fmt.Sprintf("template[%d]", i), role: m.Role, nodes: nodes, size: sizeHint(m.Content)})
	}
	t.usesCtx = c.usesCtx
	if rel.Retrieval != nil {
		q := rel.Retrieval.Query
		name := "retrieval.query"
		if q == "" && len(rel.Template) > 0 {
			q = rel.Template[len(rel.Template)-1].Content
			name = fmt.Sprintf("template[%d]", len(rel.Template)-1)
		}
		c.inQuery, c.defaultQuery = true, rel.Retrieval.Query == ""
		nodes, err := c.compile(name, q)
		if err != nil {
			return nil, err
		}
		t.query, t.queryName = nodes, name
	}
	return t, nil
}

// checker compiles messages and checks references against declarations.
type checker struct {
	t       *Template
	usesCtx bool
	inQuery bool
	// defaultQuery: the query is the last template message, not its own text.
	defaultQuery bool
	p            *parser
}

func (c *checker) compile(msg, src string) ([]node, error) {
	nodes, err := parse(msg, src)
	if err != nil {
		return nil, err
	}
	c.p = &parser{msg: msg, src: src}
	if err := c.check(nodes, 0); err != nil {
		return nil, err
	}
	return nodes, nil
}

// check walks nodes; loops is how many #each blocks enclose them.
func (c *checker) check(nodes []node, loops int) error {
	for _, n := range nodes {
		switch n := n.(type) {
		case refNode:
			if err := c.ref(n, loops, ""); err != nil {
				return err
			}
		case ifNode:
			if err := c.ref(n.cond, loops, "if"); err != nil {
				return err
			}
			if err := c.check(n.then, loops); err != nil {
				return err
			}
			if err := c.check(n.els, loops); err != nil {
				return err
			}
		case eachNode:
			if err := c.ref(n.list, loops, "each"); err != nil {
				return err
			}
			if err := c.check(n.body, loops+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) ref(r refNode, loops int, block string) error {
	if r.dot || r.index {
		if loops == 0 {
			return c.p.errAt(r.pos, "{{%s}} outside {{#each}}", r.raw)
		}
		return nil
	}
	typ, ok := c.t.types[r.root]
	if !ok && r.root == ContextVar && c.t.retrieve {
		if c.inQuery && c.defaultQuery {
			return c.p.errAt(r.pos, "this last message writes {{%s}}, so it cannot also be the retrieval query; set retrieval.query", ContextVar)
		}
		if c.inQuery {
			return c.p.errAt(r.pos, "the retrieval query cannot use {{%s}}: it is what the query retrieves", ContextVar)
		}
		if len(r.path) > 0 || block == "each" {
			return c.p.errAt(r.pos, "{{%s}} is text; it has no fields or items", ContextVar)
		}
		c.usesCtx = true
		return nil
	}
	if !ok {
		return c.p.errAt(r.pos, "undeclared variable %q (declare it under variables)", r.root)
	}
	if len(r.path) > 0 && typ != TypeObject {
		return c.p.errAt(r.pos, "{{%s}}: %q is a %s, only an object has fields", r.raw, r.root, typ)
	}
	if block == "each" && len(r.path) == 0 && typ != TypeList {
		return c.p.errAt(r.pos, "{{#each %s}}: %q is a %s, not a list", r.raw, r.root, typ)
	}
	return nil
}

// Render writes the system message, then the template messages, with vars.
// A release with retrieval whose messages do not write {{context}} gets no
// context here; use RenderContext.
func (t *Template) Render(vars map[string]any) ([]chat.Message, error) {
	return t.RenderContext(vars, "")
}

// RenderContext renders like Render and supplies retrieved context: as the
// {{context}} variable where the template writes it, otherwise appended to
// the system message (or as a system message of its own) so a release with
// retrieval never silently drops its sources.
func (t *Template) RenderContext(vars map[string]any, context string) ([]chat.Message, error) {
	clean, err := t.CheckVars(vars)
	if err != nil {
		return nil, err
	}
	r := renderer{vars: clean, context: context, msg: "system"}
	out := make([]chat.Message, 0, len(t.messages)+1)
	appendCtx := t.retrieve && !t.usesCtx && context != ""
	if t.hasSys || appendCtx {
		var b strings.Builder
		b.Grow(t.sysSize + len(context) + 2)
		if err := r.nodes(&b, t.system); err != nil {
			return nil, err
		}
		if appendCtx {
			if b.Len() > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString(context)
		}
		out = append(out, chat.Message{Role: "system", Content: chat.Text(b.String())})
	}
	for _, m := range t.messages {
		r.msg = m.name
		var b strings.Builder
		b.Grow(m.size)
		if err := r.nodes(&b, m.nodes); err != nil {
			return nil, err
		}
		out = append(out, chat.Message{Role: m.role, Content: chat.Text(b.String())})
	}
	return out, nil
}

// Query renders the retrieval query of a release with retrieval, or returns
// "" for a release without.
func (t *Template) Query(vars map[string]any) (string, error) {
	if t.query == nil {
		return "", nil
	}
	clean, err := t.CheckVars(vars)
	if err != nil {
		return "", err
	}
	r := renderer{vars: clean, msg: t.queryName}
	var b strings.Builder
	if err := r.nodes(&b, t.query); err != nil {
		return "", err
	}
	return b.String(), nil
}

// CheckVars checks the caller's variables against the declarations: every
// required one present, every one of its declared type and within the size
// limits, none undeclared. It returns them with strings cleaned of control
// characters.
func (t *Template) CheckVars(vars map[string]any) (map[string]any, error) {
	for name := range vars {
		if _, ok := t.types[name]; !ok {
			if name == ContextVar && t.retrieve {
				return nil, &VarError{Name: name, Reason: "is filled from retrieval and cannot be sent"}
			}
			return nil, &VarError{Name: name, Reason: "is not declared by this release"}
		}
	}
	var clean map[string]any
	for _, v := range t.vars {
		val, ok := vars[v.Name]
		if !ok || val == nil {
			if v.Required {
				return nil, &VarError{Name: v.Name, Reason: "is required and missing"}
			}
			continue
		}
		typ := t.types[v.Name]
		budget := MaxValueBytes
		cv, changed, verr := normalize(val, 0, &budget)
		if verr != nil {
			verr.Name = v.Name + verr.Name
			return nil, verr
		}
		if got := typeOf(cv); got != typ {
			return nil, &VarError{Name: v.Name, Reason: fmt.Sprintf("want a %s, got a %s", typ, got)}
		}
		if changed {
			if clean == nil {
				clean = make(map[string]any, len(vars))
				for k, x := range vars {
					clean[k] = x
				}
			}
			clean[v.Name] = cv
		}
	}
	if clean == nil {
		return vars, nil
	}
	return clean, nil
}
