package prompt

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Syntax limits, so a template cannot make compilation or rendering blow up.
const (
	MaxNesting   = 16  // nested #if / #each blocks
	MaxPathParts = 8   // a.b.c… segments of one reference
	maxTagBytes  = 256 // bytes between {{ and }}
)

// SyntaxError is a problem in a template's text: which message, and where.
// Message is "system", "template[i]" or "retrieval.query"; Line and Column
// count from 1, Column in characters.
type SyntaxError struct {
	Message string
	Line    int
	Column  int
	Reason  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Message, e.Line, e.Column, e.Reason)
}

// pos is a byte offset into one message's text.
type pos int

type node interface{ isNode() }

type textNode struct{ text string }

// refNode is a reference to a value: a declared variable with an optional
// path into it, the current item of #each (dot), or @index.
type refNode struct {
	pos   pos
	dot   bool     // starts at the current #each item
	index bool     // @index
	path  []string // segments after the root; for dot references, all of them
	root  string   // the variable name, empty for dot and index
	raw   string
}

type ifNode struct {
	cond      refNode
	then, els []node
}

type eachNode struct {
	list refNode
	body []node
}

func (textNode) isNode() {}
func (refNode) isNode()  {}
func (ifNode) isNode()   {}
func (eachNode) isNode() {}

type parser struct {
	msg  string
	src  string
	off  int
	tags []tag
	i    int
}

type tag struct {
	pos  pos
	kind byte // 0 text, 'v' value, '#' open, '/' close, 'e' else
	word string
	arg  string
	text string
}

// parse turns one message's text into nodes.
func parse(msg, src string) ([]node, error) {
	p := &parser{msg: msg, src: src}
	if err := p.lex(); err != nil {
		return nil, err
	}
	nodes, end, err := p.block(0, "")
	if err != nil {
		return nil, err
	}
	if end != nil {
		return nil, p.errAt(end.pos, "{{%s}} without an open block", end.text)
	}
	return nodes, nil
}

func (p *parser) errAt(at pos, format string, args ...any) error {
	line, col := 1, 1
	prefix := p.src[:at]
	if i := strings.LastIndexByte(prefix, '\n'); i >= 0 {
		line += strings.Count(prefix, "\n")
		prefix = prefix[i+1:]
	}
	col += utf8.RuneCountInString(prefix)
	return &SyntaxError{Message: p.msg, Line: line, Column: col, Reason: fmt.Sprintf(format, args...)}
}

// lex splits the source into text and tags. A backslash right before {{
// writes a literal {{.
func (p *parser) lex() error {
	src := p.src
	var text strings.Builder
	textStart := 0
	flush := func() {
		if text.Len() > 0 {
			p.tags = append(p.tags, tag{pos: pos(textStart), text: text.String()})
			text.Reset()
		}
	}
	i := 0
	for i < len(src) {
		j := strings.Index(src[i:], "{{")
		if j < 0 {
			if text.Len() == 0 {
				textStart = i
			}
			text.WriteString(src[i:])
			break
		}
		j += i
		if text.Len() == 0 {
			textStart = i
		}
		if j > i && src[j-1] == '\\' {
			text.WriteString(src[i : j-1])
			text.WriteString("{{")
			i = j + 2
			continue
		}
		text.WriteString(src[i:j])
		flush()
		k := strings.Index(src[j+2:], "}}")
		if k < 0 {
			return p.errAt(pos(j), "{{ is never closed with }}")
		}
		inner := src[j+2 : j+2+k]
		if len(inner) > maxTagBytes {
			return p.errAt(pos(j), "tag longer than %d bytes", maxTagBytes)
		}
		if strings.Contains(inner, "{{") {
			return p.errAt(pos(j), "{{ inside a tag; write \\{{ for a literal {{")
		}
		t, err := p.tag(pos(j), inner)
		if err != nil {
			return err
		}
		p.tags = append(p.tags, t)
		i = j + 2 + k + 2
		textStart = i
	}
	flush()
	return nil
}

func (p *parser) tag(at pos, inner string) (tag, error) {
	s := strings.TrimSpace(inner)
	t := tag{pos: at, text: s}
	switch {
	case s == "":
		return t, p.errAt(at, "empty tag {{}}")
	case s[0] == '#':
		word, arg, _ := strings.Cut(strings.TrimSpace(s[1:]), " ")
		arg = strings.TrimSpace(arg)
		if word != "if" && word != "each" {
			return t, p.errAt(at, "unknown block {{#%s}} (want #if or #each)", word)
		}
		if arg == "" {
			return t, p.errAt(at, "{{#%s}} needs a variable", word)
		}
		t.kind, t.word, t.arg = '#', word, arg
	case s[0] == '/':
		word := strings.TrimSpace(s[1:])
		if word != "if" && word != "each" {
			return t, p.errAt(at, "unknown block end {{/%s}} (want /if or /each)", word)
		}
		t.kind, t.word = '/', word
	case s == "else":
		t.kind = 'e'
	default:
		t.kind, t.arg = 'v', s
	}
	return t, nil
}

// block parses nodes until a closing tag (or else) for want, returning it.
func (p *parser) block(depth int, want string) ([]node, *tag, error) {
	var nodes []node
	for p.i < len(p.tags) {
		t := p.tags[p.i]
		p.i++
		switch t.kind {
		case 0:
			nodes = append(nodes, textNode{t.text})
		case 'v':
			r, err := p.ref(t.pos, t.arg)
			if err != nil {
				return nil, nil, err
			}
			nodes = append(nodes, r)
		case '/', 'e':
			if want == "" {
				return nil, nil, p.errAt(t.pos, "{{%s}} without an open block", t.text)
			}
			if t.kind == '/' && t.word != want {
				return nil, nil, p.errAt(t.pos, "{{/%s}} closes a {{#%s}} block", t.word, want)
			}
			if t.kind == 'e' && want != "if" {
				return nil, nil, p.errAt(t.pos, "{{else}} inside {{#each}}; only {{#if}} has an else")
			}
			return nodes, &t, nil
		case '#':
			if depth+1 > MaxNesting {
				return nil, nil, p.errAt(t.pos, "blocks nested deeper than %d", MaxNesting)
			}
			r, err := p.ref(t.pos, t.arg)
			if err != nil {
				return nil, nil, err
			}
			body, end, err := p.block(depth+1, t.word)
			if err != nil {
				return nil, nil, err
			}
			if end == nil {
				return nil, nil, p.errAt(t.pos, "{{#%s %s}} is never closed with {{/%s}}", t.word, t.arg, t.word)
			}
			if t.word == "each" {
				if r.index {
					return nil, nil, p.errAt(t.pos, "{{#each @index}}: @index is a number, not a list")
				}
				nodes = append(nodes, eachNode{list: r, body: body})
				continue
			}
			n := ifNode{cond: r, then: body}
			if end.kind == 'e' {
				els, end2, err := p.block(depth+1, "if")
				if err != nil {
					return nil, nil, err
				}
				if end2 == nil {
					return nil, nil, p.errAt(t.pos, "{{#if %s}} is never closed with {{/if}}", t.arg)
				}
				if end2.kind == 'e' {
					return nil, nil, p.errAt(end2.pos, "second {{else}} in one {{#if}}")
				}
				n.els = els
			}
			nodes = append(nodes, n)
		}
	}
	return nodes, nil, nil
}

// ref parses a reference: name, name.path, ., .path or @index.
func (p *parser) ref(at pos, s string) (refNode, error) {
	r := refNode{pos: at, raw: s}
	switch {
	case s == "@index":
		r.index = true
		return r, nil
	case s == ".":
		r.dot = true
		return r, nil
	case strings.HasPrefix(s, "."):
		r.dot = true
		s = s[1:]
	}
	parts := strings.Split(s, ".")
	if len(parts) > MaxPathParts {
		return r, p.errAt(at, "%q has more than %d parts", r.raw, MaxPathParts)
	}
	for _, part := range parts {
		if !isIdent(part) {
			return r, p.errAt(at, "%q is not a variable reference (want name, name.field, . or @index)", r.raw)
		}
	}
	if r.dot {
		r.path = parts
	} else {
		r.root, r.path = parts[0], parts[1:]
	}
	return r, nil
}

// isIdent reports whether s can name a variable or field in a template.
func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case (c >= '0' && c <= '9') || c == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
