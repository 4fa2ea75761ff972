package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Content is a message's content: plain text, or a list of typed parts.
// Text is the text of the text parts joined by newlines, kept in step with
// Parts by whoever changes them (SetPartText). A null content (an
// assistant message with tool calls) is empty.
//
// Parts are decoded once, with exact, case-sensitive field names, and sent
// upstream from these same values: every check reads what the upstream
// gets, and a field spelled otherwise ("TEXT") is refused rather than read
// by one side and not the other.
type Content struct {
	Text  string
	Parts []Part
}

// Content part types Gantry passes on.
const (
	PartText       = "text"
	PartImageURL   = "image_url"
	PartInputAudio = "input_audio"
	PartFile       = "file"
	PartRefusal    = "refusal"
)

// Part is one part of a multi-part content. Which field holds its value
// depends on Type; the others are empty.
type Part struct {
	Type       string
	Text       string      // text
	Refusal    string      // refusal
	ImageURL   *ImageURL   // image_url
	InputAudio *InputAudio // input_audio
	File       *File       // file
}

// ImageURL is an image_url part's value.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// InputAudio is an input_audio part's value.
type InputAudio struct {
	Data   string `json:"data"`
	Format string `json:"format"`
}

// File is a file part's value.
type File struct {
	FileID   string `json:"file_id,omitempty"`
	FileData string `json:"file_data,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// Text returns content made of plain text.
func Text(s string) Content { return Content{Text: s} }

// SetPartText replaces the text of part j (a text or refusal part) and
// brings Text up to date.
func (c *Content) SetPartText(j int, s string) {
	if c.Parts[j].Type == PartRefusal {
		c.Parts[j].Refusal = s
	} else {
		c.Parts[j].Text = s
	}
	c.Text = joinText(c.Parts)
}

func joinText(parts []Part) string {
	var b strings.Builder
	first := true
	for _, p := range parts {
		if p.Type != PartText {
			continue
		}
		if !first {
			b.WriteByte('\n')
		}
		first = false
		b.WriteString(p.Text)
	}
	return b.String()
}

func (c Content) MarshalJSON() ([]byte, error) {
	if c.Parts != nil {
		return json.Marshal(c.Parts)
	}
	return appendQuoted(make([]byte, 0, len(c.Text)+2), c.Text), nil
}

func (c *Content) UnmarshalJSON(b []byte) error {
	*c = Content{}
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		// The decoder calling us has checked the literal; one without
		// escapes is its own text, which is the common case.
		if n := len(b); n >= 2 && b[n-1] == '"' {
			if inner := b[1 : n-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
				c.Text = string(inner)
				return nil
			}
		}
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			return err
		}
		if len(raws) > MaxParts {
			return &PartError{Index: -1, Reason: fmt.Sprintf("%d content parts, more than the limit of %d", len(raws), MaxParts)}
		}
		c.Parts = make([]Part, len(raws))
		for j, raw := range raws {
			if err := c.Parts[j].decode(raw); err != nil {
				err.Index = j
				return err
			}
		}
		c.Text = joinText(c.Parts)
		return nil
	default:
		return &PartError{Index: -1, Reason: "content must be a string, a list of parts or null"}
	}
}

// PartError is a content part that cannot be decoded: which part (-1 for
// the list), which field and why.
type PartError struct {
	Index  int
	Field  string // below the part, e.g. image_url.url; empty for the part
	Reason string
}

func (e *PartError) Error() string {
	return fmt.Sprintf("content part %d: %s", e.Index, e.Reason)
}

// path names the part (and field) below a message's content.
func (e *PartError) path(content string) string {
	if e.Index < 0 {
		return content
	}
	p := fmt.Sprintf("%s[%d]", content, e.Index)
	if e.Field != "" {
		p += "." + e.Field
	}
	return p
}

// partFields are the fields each part type has besides type.
var partFields = map[string]string{
	PartText:       "text",
	PartRefusal:    "refusal",
	PartImageURL:   "image_url",
	PartInputAudio: "input_audio",
	PartFile:       "file",
}

func (p *Part) decode(raw []byte) *PartError {
	obj, err := exactObject(raw, nil)
	if err != nil {
		return &PartError{Reason: "must be an object: " + err.Error()}
	}
	if err := json.Unmarshal(obj["type"], &p.Type); err != nil || p.Type == "" {
		return &PartError{Field: "type", Reason: "has no type (a string)"}
	}
	field, ok := partFields[p.Type]
	if !ok {
		return &PartError{Field: "type", Reason: fmt.Sprintf("type %q is not one Gantry passes on (text, image_url, input_audio, file, refusal)", p.Type)}
	}
	for k := range obj {
		if k != "type" && k != field {
			return &PartError{Field: k, Reason: fmt.Sprintf("a %s part has no field %q (names are exact: type, %s)", p.Type, k, field)}
		}
	}
	v, ok := obj[field]
	if !ok || bytes.Equal(v, []byte("null")) {
		return &PartError{Field: field, Reason: fmt.Sprintf("a %s part needs %s", p.Type, field)}
	}
	var derr error
	switch p.Type {
	case PartText:
		derr = json.Unmarshal(v, &p.Text)
	case PartRefusal:
		derr = json.Unmarshal(v, &p.Refusal)
	case PartImageURL:
		p.ImageURL = &ImageURL{}
		derr = decodeExact(v, p.ImageURL, "url", "detail")
	case PartInputAudio:
		p.InputAudio = &InputAudio{}
		derr = decodeExact(v, p.InputAudio, "data", "format")
	case PartFile:
		p.File = &File{}
		derr = decodeExact(v, p.File, "file_id", "file_data", "filename")
	}
	if derr != nil {
		return &PartError{Field: field, Reason: fmt.Sprintf("%s: %v", field, derr)}
	}
	return nil
}

// exactObject decodes a JSON object keeping its keys exactly as written;
// with allowed set, any other key is refused. A key written twice is
// refused too, since decoders disagree on which one counts.
func exactObject(raw []byte, allowed []string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not an object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string) // object keys are strings
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("field %q appears twice", k)
		}
		if allowed != nil && !contains(allowed, k) {
			return nil, fmt.Errorf("no field %q (names are exact: %s)", k, strings.Join(allowed, ", "))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// decodeExact decodes an object into v after checking its keys are exactly
// among allowed.
func decodeExact(raw []byte, v any, allowed ...string) error {
	if _, err := exactObject(raw, allowed); err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p Part) MarshalJSON() ([]byte, error) {
	switch p.Type {
	case PartText:
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{p.Type, p.Text})
	case PartRefusal:
		return json.Marshal(struct {
			Type    string `json:"type"`
			Refusal string `json:"refusal"`
		}{p.Type, p.Refusal})
	case PartImageURL:
		return json.Marshal(struct {
			Type     string    `json:"type"`
			ImageURL *ImageURL `json:"image_url"`
		}{p.Type, p.ImageURL})
	case PartInputAudio:
		return json.Marshal(struct {
			Type       string      `json:"type"`
			InputAudio *InputAudio `json:"input_audio"`
		}{p.Type, p.InputAudio})
	case PartFile:
		return json.Marshal(struct {
			Type string `json:"type"`
			File *File  `json:"file"`
		}{p.Type, p.File})
	}
	return nil, fmt.Errorf("content part type %q cannot be encoded", p.Type)
}

// CheckRawJSON refuses a JSON value that writes a key twice in one object,
// at any depth. Raw JSON Gantry forwards (tool parameters, response
// schemas, tool_choice) is read by its checks and by upstreams with
// different decoders, which disagree on which of two equal keys counts.
func CheckRawJSON(raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	// One entry per open container: the keys of an object, nil for a list.
	var open []map[string]bool
	wantKey := false // the next token is an object's key or its end
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if k, ok := tok.(string); ok && wantKey {
			keys := open[len(open)-1]
			if keys[k] {
				return fmt.Errorf("field %q appears twice in one object", k)
			}
			keys[k] = true
			wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			open = append(open, map[string]bool{})
			wantKey = true
			continue
		case json.Delim('['):
			open = append(open, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
		}
		// A value ended; inside an object a key or the end comes next.
		wantKey = len(open) > 0 && open[len(open)-1] != nil
	}
}
