package config

import (
	"fmt"
	"regexp"
)

// Bounds of a collection's documents.
const (
	// MaxDocumentIDBytes bounds a document's id.
	MaxDocumentIDBytes = 200
	// MaxDocumentBodyBytes bounds a document as it is stored and fetched
	// between agents: its text, title and metadata, encoded.
	MaxDocumentBodyBytes = 4 << 20
)

var documentIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)

// CheckDocumentID says what is wrong with a document id, or nil. The index
// that cuts a document and the replicated manifest that lists it share
// this one rule, so an id one accepts the other never refuses.
func CheckDocumentID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("no id")
	case len(id) > MaxDocumentIDBytes:
		return fmt.Errorf("id longer than %d bytes", MaxDocumentIDBytes)
	case !documentIDRE.MatchString(id):
		return fmt.Errorf("id may hold only letters, digits and . _ : / - and must start with a letter or digit")
	}
	return nil
}
