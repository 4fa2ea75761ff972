package api

import "net/url"

// Collection endpoints. A collection's documents are the cluster's: an
// upload through any agent is committed to the collection's replicated
// manifest and served by every agent's indexes.
//
//	GET    /admin/v1/collections                           Collections
//	GET    /admin/v1/collections/{name}/documents          DocumentList
//	POST   /admin/v1/collections/{name}/documents          {"documents": [...]} -> Ingested
//	DELETE /admin/v1/collections/{name}/documents/{id...}  -> Ingested
const PathCollections = Prefix + "/collections"

// DocumentsPath is where a collection's documents are listed and uploaded.
func DocumentsPath(collection string) string {
	return PathCollections + "/" + url.PathEscape(collection) + "/documents"
}

// Collections is how far this agent's indexes are with every collection
// whose documents the cluster keeps.
type Collections struct {
	Node        string       `json:"node"`
	StateIndex  uint64       `json:"state_index"`
	Collections []Collection `json:"collections"`
}

// Collection is one collection on one agent. It is caught up when every
// index of it reflects its manifest at ManifestIndex; until then retrieval
// answers from the indexes as they are.
type Collection struct {
	Name      string `json:"name"`
	Documents int    `json:"documents"`
	Bytes     int64  `json:"bytes"`
	// ManifestIndex is the log index of the manifest's last change.
	ManifestIndex uint64 `json:"manifest_index"`
	CaughtUp      bool   `json:"caught_up"`
	// Missing counts bodies this agent lacks and has not fetched yet.
	Missing int `json:"missing,omitempty"`
	// Error is why the last attempt to catch up failed.
	Error   string            `json:"error,omitempty"`
	Indexes []CollectionIndex `json:"indexes"`
}

// CollectionIndex is one index of a collection: its chunking rules' hash,
// the version traces name, and the manifest index it reflects in full.
type CollectionIndex struct {
	RulesHash string `json:"rules_hash"`
	Version   string `json:"version"`
	Applied   uint64 `json:"applied"`
	Chunks    int    `json:"chunks"`
	// Refused counts documents these rules cannot cut.
	Refused int `json:"refused,omitempty"`
}

// DocumentList is a collection's manifest.
type DocumentList struct {
	Collection    string         `json:"collection"`
	ManifestIndex uint64         `json:"manifest_index"`
	Documents     []DocumentInfo `json:"documents"`
}

// DocumentInfo is one document of a manifest.
type DocumentInfo struct {
	ID     string `json:"id"`
	Hash   string `json:"hash"`
	Size   int64  `json:"size"`
	Origin string `json:"origin,omitempty"`
}

// Ingested answers an upload or a delete: the state index the change
// committed at and the indexes of this agent that serve it.
type Ingested struct {
	Collection string `json:"collection"`
	Documents  int    `json:"documents"`
	Index      uint64 `json:"index"`
	// Indexed is false when the change committed but this agent had not
	// indexed it within the wait (202 Accepted); it will.
	Indexed bool     `json:"indexed"`
	Indexes []string `json:"indexes,omitempty"`
}
