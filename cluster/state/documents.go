package state

import (
	"fmt"
	"maps"
	"slices"

	"gantry/cluster/command"
	"gantry/config"
)

// Bounds of the replicated document manifests. The manifest holds only ids,
// hashes and sizes; the bodies it names live in each agent's blob store, so
// these bound what every agent must fetch and keep on disk.
const (
	// MaxDocuments bounds one collection's documents.
	MaxDocuments = 10000
	// MaxDocumentBytes bounds one stored document body.
	MaxDocumentBytes = config.MaxDocumentBodyBytes
	// MaxDocumentsBytes bounds the bodies of all collections together.
	MaxDocumentsBytes = 1 << 30
	// maxOriginLen bounds the agent id a put names as its origin.
	maxOriginLen = 64
)

// Manifest is what a collection holds: each document id with the hash and
// size of its body. Every agent brings its indexes of the collection to the
// manifest, so every agent retrieves from the same documents.
type Manifest struct {
	Documents map[string]DocumentEntry `json:"documents"`
	// Bytes is the sum of the documents' sizes.
	Bytes int64 `json:"bytes"`
	// Index is the log index of the command that last changed the
	// manifest; an agent's index that reflects it is caught up.
	Index uint64 `json:"index"`
}

// DocumentEntry is one document of a manifest.
type DocumentEntry struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
	// Origin is the agent that took the upload; others fetch from it first.
	Origin string `json:"origin,omitempty"`
}

// Manifest returns the manifest of a collection; a collection that never
// had documents has the zero Manifest.
func (s *State) Manifest(collection string) Manifest {
	return s.Documents[collection]
}

// DocumentsBytes is the size of every collection's bodies together.
func (s *State) DocumentsBytes() int64 {
	var n int64
	for _, m := range s.Documents {
		n += m.Bytes
	}
	return n
}

// hostedCollection is the collection a document command names, which must
// be one whose documents Gantry keeps: declared and without a URL.
func (s *State) hostedCollection(name string) error {
	col, ok := s.Config.Collection(name)
	if !ok {
		return fmt.Errorf("collection: %w: %q", ErrNotFound, name)
	}
	if col.URL != "" {
		return fmt.Errorf("%w: collection %s is served by the external store at its url; its documents are not kept here", ErrInvalid, name)
	}
	return nil
}

func checkDocumentRef(d command.DocumentRef) error {
	if err := config.CheckDocumentID(d.ID); err != nil {
		return fmt.Errorf("%w: document %.64q: %w", ErrInvalid, d.ID, err)
	}
	if !validHash(d.Hash) {
		return fmt.Errorf("%w: document %s: hash %.80q is not sha256: and 64 lowercase hex digits", ErrInvalid, d.ID, d.Hash)
	}
	if d.Size < 1 || d.Size > MaxDocumentBytes {
		return fmt.Errorf("%w: document %s: size %d is outside 1..%d bytes", ErrInvalid, d.ID, d.Size, MaxDocumentBytes)
	}
	return nil
}

func putDocuments(tx *txn) error {
	var p command.Documents
	if err := tx.decode(&p); err != nil {
		return err
	}
	if err := tx.next.hostedCollection(p.Collection); err != nil {
		return err
	}
	switch {
	case len(p.Documents) == 0:
		return fmt.Errorf("%w: no documents", ErrInvalid)
	case len(p.Documents) > MaxDocuments:
		return fmt.Errorf("%w: %d documents in one command, more than the limit of %d", ErrInvalid, len(p.Documents), MaxDocuments)
	case len(p.Origin) > maxOriginLen:
		return fmt.Errorf("%w: origin longer than %d bytes", ErrInvalid, maxOriginLen)
	}
	if err := checkNoSecrets(p); err != nil {
		return err
	}
	seen := make(map[string]bool, len(p.Documents))
	for _, d := range p.Documents {
		if err := checkDocumentRef(d); err != nil {
			return err
		}
		if seen[d.ID] {
			return fmt.Errorf("%w: document %s appears twice in one command", ErrInvalid, d.ID)
		}
		seen[d.ID] = true
	}
	before := tx.next.Manifest(p.Collection)
	after := Manifest{Documents: maps.Clone(before.Documents), Bytes: before.Bytes, Index: tx.index}
	if after.Documents == nil {
		after.Documents = make(map[string]DocumentEntry, len(p.Documents))
	}
	var changed []string
	for _, d := range p.Documents {
		old, had := after.Documents[d.ID]
		if had && old.Hash == d.Hash {
			continue // the same body again changes nothing
		}
		after.Bytes += d.Size - old.Size
		after.Documents[d.ID] = DocumentEntry{Hash: d.Hash, Size: d.Size, Origin: p.Origin}
		changed = append(changed, d.ID)
	}
	if len(changed) == 0 {
		return nil
	}
	if len(after.Documents) > MaxDocuments {
		return fmt.Errorf("%w: collection %s would hold %d documents, more than the limit of %d", ErrInvalid, p.Collection, len(after.Documents), MaxDocuments)
	}
	if total := tx.next.DocumentsBytes() - before.Bytes + after.Bytes; total > MaxDocumentsBytes {
		return fmt.Errorf("%w: collections would hold %d bytes of documents, more than the limit of %d", ErrInvalid, total, MaxDocumentsBytes)
	}
	tx.setManifest(p.Collection, after)
	tx.record("collection/"+p.Collection, manifestSummary(before), manifestSummary(after), "put "+idList(changed))
	return nil
}

func deleteDocuments(tx *txn) error {
	var p command.DocumentIDs
	if err := tx.decode(&p); err != nil {
		return err
	}
	if err := tx.next.hostedCollection(p.Collection); err != nil {
		return err
	}
	switch {
	case len(p.IDs) == 0:
		return fmt.Errorf("%w: no document ids", ErrInvalid)
	case len(p.IDs) > MaxDocuments:
		return fmt.Errorf("%w: %d ids in one command, more than the limit of %d", ErrInvalid, len(p.IDs), MaxDocuments)
	}
	if err := checkNoSecrets(p); err != nil {
		return err
	}
	before := tx.next.Manifest(p.Collection)
	for _, id := range p.IDs {
		if _, ok := before.Documents[id]; !ok {
			return fmt.Errorf("document: %w: %.64q in collection %s", ErrNotFound, id, p.Collection)
		}
	}
	after := Manifest{Documents: maps.Clone(before.Documents), Bytes: before.Bytes, Index: tx.index}
	ids := slices.Compact(slices.Sorted(slices.Values(p.IDs)))
	for _, id := range ids {
		after.Bytes -= after.Documents[id].Size
		delete(after.Documents, id)
	}
	tx.setManifest(p.Collection, after)
	tx.record("collection/"+p.Collection, manifestSummary(before), manifestSummary(after), "delete "+idList(ids))
	return nil
}

// setManifest replaces a collection's manifest. An emptied one is kept
// with its index, so agents can tell that their indexes reflect it.
func (tx *txn) setManifest(collection string, m Manifest) {
	docs := maps.Clone(tx.next.Documents)
	if docs == nil {
		docs = map[string]Manifest{}
	}
	docs[collection] = m
	tx.next.Documents = docs
}

// pruneDocuments drops the manifests of collections the configuration no
// longer hosts, so their bodies can be collected on every agent.
func pruneDocuments(docs map[string]Manifest, cfg *config.Config) map[string]Manifest {
	var gone []string
	for name := range docs {
		if col, ok := cfg.Collection(name); !ok || col.URL != "" {
			gone = append(gone, name)
		}
	}
	if len(gone) == 0 {
		return docs
	}
	out := maps.Clone(docs)
	for _, name := range gone {
		delete(out, name)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func manifestSummary(m Manifest) string {
	return fmt.Sprintf("documents=%d bytes=%d", len(m.Documents), m.Bytes)
}

// idList names the changed documents for the audit log, in bounded space.
func idList(ids []string) string {
	s := fmt.Sprintf("%d document(s): ", len(ids))
	for i, id := range ids {
		if len(s)+len(id) > maxSummary-8 {
			return s + fmt.Sprintf("and %d more", len(ids)-i)
		}
		if i > 0 {
			s += ", "
		}
		s += id
	}
	return s
}

// checkManifests validates manifests read from a snapshot as the commands
// that built them were validated.
func checkManifests(docs map[string]Manifest) error {
	var total int64
	for name, m := range docs {
		if len(m.Documents) > MaxDocuments {
			return fmt.Errorf("collection %s: %d documents, more than the limit of %d", name, len(m.Documents), MaxDocuments)
		}
		var bytes int64
		for id, d := range m.Documents {
			if err := checkDocumentRef(command.DocumentRef{ID: id, Hash: d.Hash, Size: d.Size}); err != nil {
				return fmt.Errorf("collection %s: %w", name, err)
			}
			if len(d.Origin) > maxOriginLen {
				return fmt.Errorf("collection %s: document %s: origin longer than %d bytes", name, id, maxOriginLen)
			}
			bytes += d.Size
		}
		if bytes != m.Bytes {
			return fmt.Errorf("collection %s: documents add up to %d bytes, the manifest says %d", name, bytes, m.Bytes)
		}
		total += bytes
	}
	if total > MaxDocumentsBytes {
		return fmt.Errorf("collections hold %d bytes of documents, more than the limit of %d", total, MaxDocumentsBytes)
	}
	return nil
}
