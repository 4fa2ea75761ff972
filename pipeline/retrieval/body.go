package retrieval

import (
	"bytes"
	"encoding/json"
	"fmt"

	"gantry/config"
)

// MaxBodyBytes bounds a stored document body: the text's limit plus room
// for the title, metadata and JSON escaping.
const MaxBodyBytes = config.MaxDocumentBodyBytes

// body is a document as it is kept in the blob store and fetched between
// agents: everything but the id, which the manifest holds, so the same
// text under two ids is stored once.
type body struct {
	Title    string            `json:"title,omitempty"`
	Format   string            `json:"format,omitempty"`
	Text     string            `json:"text"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// EncodeBody checks a document and encodes it as it is stored. The encoding
// is canonical (fields in order, metadata keys sorted, no HTML escaping), so
// the same document always has the same hash.
func EncodeBody(d Document) ([]byte, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body{Title: d.Title, Format: d.Format, Text: d.Text, Metadata: d.Metadata}); err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrDocument, d.ID, err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: %q: encodes to %d bytes, more than the limit of %d", ErrDocument, d.ID, len(b), MaxBodyBytes)
	}
	return b, nil
}

// DecodeBody reads a stored body as the document id, checked as an upload
// is: a body from another agent is data, never trusted further than that.
func DecodeBody(id string, b []byte) (Document, error) {
	if len(b) > MaxBodyBytes {
		return Document{}, fmt.Errorf("%w: %q: body is %d bytes, more than the limit of %d", ErrDocument, id, len(b), MaxBodyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v body
	if err := dec.Decode(&v); err != nil {
		return Document{}, fmt.Errorf("%w: %q: body: %w", ErrDocument, id, err)
	}
	if dec.More() {
		return Document{}, fmt.Errorf("%w: %q: body has data after the document", ErrDocument, id)
	}
	d := Document{ID: id, Title: v.Title, Format: v.Format, Text: v.Text, Metadata: v.Metadata}
	if err := d.Check(); err != nil {
		return Document{}, err
	}
	return d, nil
}
