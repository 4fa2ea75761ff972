package config

import (
	"fmt"
	"regexp"
)

// MaxDocumentIDBytes bounds a document's id in a collection.
const MaxDocumentIDBytes = 200

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
