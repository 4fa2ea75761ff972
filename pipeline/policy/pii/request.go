package pii

import (
	"encoding/json"
	"fmt"
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
)

// String is the field's path, e.g. messages[2].content or
// messages[0].tool_calls[1].function.arguments.
func (f Field) String() string {
	i, j := strconv.Itoa(f.i), strconv.Itoa(f.j)
	switch f.kind {
	case fContent:
		return "messages[" + i + "].content"
	case fContentPart:
		return "messages[" + i + "].content[" + j + "].text"
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
			if err := eachPart(i, &m.Content, fn); err != nil {
				return err
			}
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
	for i := range req.Tools {
		if d := req.Tools[i].Function.Description; d != "" {
			req.Tools[i].Function.Description = fn(Field{kind: fToolDescription, i: i}, d)
		}
	}
	if len(req.Metadata) > 0 {
		keys := make([]string, 0, len(req.Metadata))
		for k := range req.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			req.Metadata[k] = fn(Field{kind: fMetadata, key: k}, req.Metadata[k])
		}
	}
	if req.User != "" {
		req.User = fn(Field{kind: fUser}, req.User)
	}
	for i := range req.Stop {
		req.Stop[i] = fn(Field{kind: fStop, i: i}, req.Stop[i])
	}
	return nil
}

// eachPart visits the text parts of a multi-part content and re-encodes
// the parts that change, keeping every other part and property verbatim.
func eachPart(i int, c *chat.Content, fn func(Field, string) string) error {
	changed := false
	for j, raw := range c.Parts {
		var p map[string]json.RawMessage
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("messages[%d].content[%d]: %w", i, j, err)
		}
		var typ, text string
		_ = json.Unmarshal(p["type"], &typ)
		if typ != "text" || json.Unmarshal(p["text"], &text) != nil {
			continue
		}
		if out := fn(Field{kind: fContentPart, i: i, j: j}, text); out != text {
			enc, err := json.Marshal(out)
			if err != nil {
				return err
			}
			p["text"] = enc
			if c.Parts[j], err = json.Marshal(p); err != nil {
				return err
			}
			changed = true
		}
	}
	if changed {
		// Text mirrors the text parts, joined as chat.Content decodes them.
		var texts []string
		for _, raw := range c.Parts {
			var p struct {
				Type string  `json:"type"`
				Text *string `json:"text"`
			}
			if json.Unmarshal(raw, &p) == nil && p.Type == "text" && p.Text != nil {
				texts = append(texts, *p.Text)
			}
		}
		c.Text = strings.Join(texts, "\n")
	}
	return nil
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
