package pii

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"gantry/pipeline/chat"
)

// Field names one text field of a chat request.
type Field struct {
	kind fieldKind
	i, j int
	key  string
}

type fieldKind uint8

const (
	fContent fieldKind = iota
	fContentPart
	fName
	fToolCallName
	fToolCallArgs
	fToolDescription
	fMetadata
	fUser
	fStop
	fRaw // a string inside forwarded JSON; key is its whole path
)

// String is the field's path, e.g. messages[2].content or
// messages[0].tool_calls[1].function.arguments.
func (f Field) String() string {
	i, j := strconv.Itoa(f.i), strconv.Itoa(f.j)
	switch f.kind {
	case fContent:
		return "messages[" + i + "].content"
	case fContentPart:
		return "messages[" + i + "].content[" + j + "]." + f.key
	case fName:
		return "messages[" + i + "].name"
	case fToolCallName:
		return "messages[" + i + "].tool_calls[" + j + "].function.name"
	case fToolCallArgs:
		return "messages[" + i + "].tool_calls[" + j + "].function.arguments"
	case fToolDescription:
		return "tools[" + i + "].function.description"
	case fMetadata:
		return "metadata." + f.key
	case fUser:
		return "user"
	case fStop:
		return "stop[" + i + "]"
	case fRaw:
		return f.key
	}
	return "?"
}

// MessageContent reports whether the field is (a part of) the content of a
// message, and which message.
func (f Field) MessageContent() (index int, ok bool) {
	if f.kind == fContent || f.kind == fContentPart {
		return f.i, true
	}
	return 0, false
}

// FieldFinding is a finding in one field of a request.
type FieldFinding struct {
	Field Field
	Finding
}

// EachText calls fn with every text field of req a model would read:
// message contents (each text part of a multi-part content), names, tool
// call names and arguments, tool descriptions, metadata values, the user
// and stop sequences. fn returns the field's new text; returning the text
// unchanged leaves the request as it was.
func EachText(req *chat.Request, fn func(f Field, text string) string) error {
	for i := range req.Messages {
		m := &req.Messages[i]
		if m.Content.Parts != nil {
			eachPart(i, &m.Content, fn)
		} else {
			m.Content.Text = fn(Field{kind: fContent, i: i}, m.Content.Text)
		}
		if m.Name != "" {
			m.Name = fn(Field{kind: fName, i: i}, m.Name)
		}
		for j := range m.ToolCalls {
			fc := &m.ToolCalls[j].Function
			if fc.Name != "" {
				fc.Name = fn(Field{kind: fToolCallName, i: i, j: j}, fc.Name)
			}
			fc.Arguments = fn(Field{kind: fToolCallArgs, i: i, j: j}, fc.Arguments)
		}
	}
	// Tools, the response format, metadata and stops may be shared with
	// the configuration (a release's own); what changes is copied first.
	toolsCopied := false
	for i := range req.Tools {
		fnc := req.Tools[i].Function
		changed := false
		if d := fnc.Description; d != "" {
			fnc.Description = fn(Field{kind: fToolDescription, i: i}, d)
			changed = fnc.Description != d
		}
		rawChanged, err := eachRaw("tools["+strconv.Itoa(i)+"].function.parameters", &fnc.Parameters, fn)
		if err != nil {
			return err
		}
		if changed || rawChanged {
			if !toolsCopied {
				req.Tools, toolsCopied = slices.Clone(req.Tools), true
			}
			req.Tools[i].Function = fnc
		}
	}
	if rf := req.ResponseFormat; rf != nil && rf.JSONSchema != nil {
		js := *rf.JSONSchema
		changed := false
		if d := js.Description; d != "" {
			js.Description = fn(Field{kind: fRaw, key: "response_format.json_schema.description"}, d)
			changed = js.Description != d
		}
		rawChanged, err := eachRaw("response_format.json_schema.schema", &js.Schema, fn)
		if err != nil {
			return err
		}
		if changed || rawChanged {
			f := *rf
			f.JSONSchema = &js
			req.ResponseFormat = &f
		}
	}
	if len(req.Metadata) > 0 {
		keys := make([]string, 0, len(req.Metadata))
		for k := range req.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		copied := false
		for _, k := range keys {
			v := req.Metadata[k]
			if out := fn(Field{kind: fMetadata, key: k}, v); out != v {
				if !copied {
					req.Metadata, copied = maps.Clone(req.Metadata), true
				}
				req.Metadata[k] = out
			}
		}
	}
	if req.User != "" {
		req.User = fn(Field{kind: fUser}, req.User)
	}
	stopCopied := false
	for i, v := range req.Stop {
		if out := fn(Field{kind: fStop, i: i}, v); out != v {
			if !stopCopied {
				req.Stop, stopCopied = slices.Clone(req.Stop), true
			}
			req.Stop[i] = out
		}
	}
	return nil
}

// eachPart visits the text and refusal parts of a multi-part content: the
// same typed values the upstream is sent.
func eachPart(i int, c *chat.Content, fn func(Field, string) string) {
	for j := range c.Parts {
		p := &c.Parts[j]
		var text string
		switch p.Type {
		case chat.PartText:
			text = p.Text
		case chat.PartRefusal:
			text = p.Refusal
		default:
			continue
		}
		if out := fn(Field{kind: fContentPart, i: i, j: j, key: p.Type}, text); out != text {
			c.SetPartText(j, out)
		}
	}
}

// eachRaw visits every string value inside forwarded JSON (a tool's
// parameters, a response schema): a model reads their descriptions and
// enums as it reads messages. Field names are the JSON pointer below path.
// When a text changes the value is encoded anew, its keys then sorted.
func eachRaw(path string, raw *json.RawMessage, fn func(Field, string) string) (bool, error) {
	if len(*raw) == 0 {
		return false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(*raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	changed := false
	var walk func(v any, at string) any
	walk = func(v any, at string) any {
		switch x := v.(type) {
		case string:
			out := fn(Field{kind: fRaw, key: path + at}, x)
			changed = changed || out != x
			return out
		case []any:
			for i := range x {
				x[i] = walk(x[i], at+"/"+strconv.Itoa(i))
			}
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys) // findings come in the same order each walk
			for _, k := range keys {
				x[k] = walk(x[k], at+"/"+pointerToken(k))
			}
		}
		return v
	}
	v = walk(v, "")
	if !changed {
		return false, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	*raw = b
	return true, nil
}

// pointerToken escapes a key for a JSON pointer (RFC 6901).
func pointerToken(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// ScanRequest returns the findings in every text field of req.
func ScanRequest(req *chat.Request) ([]FieldFinding, error) {
	var out []FieldFinding
	buf := make([]Finding, 0, 8) // most texts have a few findings at most
	err := EachText(req, func(f Field, text string) string {
		buf = ScanAppend(buf[:0], text)
		if len(buf) == 0 {
			return text
		}
		out = slices.Grow(out, len(buf))
		for _, fd := range buf {
			out = append(out, FieldFinding{Field: f, Finding: fd})
		}
		return text
	})
	return out, err
}

// RedactRequest replaces the given findings in req with placeholders,
// numbering values across the whole request. Pass the findings ScanRequest
// returned for the same, unmodified request, filtered to the rules to
// redact.
func RedactRequest(req *chat.Request, findings []FieldFinding) error {
	if len(findings) == 0 {
		return nil
	}
	r := NewRedactor()
	k := 0
	fs := make([]Finding, 0, len(findings))
	return EachText(req, func(f Field, text string) string {
		fs = fs[:0]
		for k < len(findings) && findings[k].Field == f {
			fs = append(fs, findings[k].Finding)
			k++
		}
		return r.Redact(text, fs)
	})
}
