package admin

import (
	"encoding/json"
	"net/http"

	"gantry/agent/httpio"
	"gantry/config"
	"gantry/pipeline/retrieval"
)

// ingestRequest is the body of POST /admin/v1/collections/{name}/documents.
type ingestRequest struct {
	Documents []retrieval.Document `json:"documents"`
}

// maxIngestBytes bounds one ingestion request.
const maxIngestBytes = 32 << 20

// ingest serves POST /admin/v1/collections/{name}/documents: the documents
// are chunked and indexed under the collection's own chunking rules and
// under the rules every release of the collection pins, so each release
// reads the chunks it was evaluated with.
func (a *API) ingest(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cfg := a.served(w)
	if cfg == nil {
		return
	}
	col, ok := cfg.Collection(name)
	if !ok {
		httpio.APIError(w, http.StatusNotFound, "collection_not_found", "no collection "+name+" in the configuration")
		return
	}
	if col.URL != "" {
		httpio.APIError(w, http.StatusBadRequest, "external_collection", "collection "+name+" is served by an external store at its url; send documents there")
		return
	}
	var in ingestRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxIngestBytes))
	if err := dec.Decode(&in); err != nil {
		httpio.APIError(w, http.StatusBadRequest, "bad_request", "the body must be {\"documents\": [...]} within 32 MiB: "+err.Error())
		return
	}
	if len(in.Documents) == 0 {
		httpio.APIError(w, http.StatusBadRequest, "bad_request", "no documents")
		return
	}
	rules := map[string]config.Chunking{}
	add := func(c config.Chunking) { c = c.WithDefaults(); rules[c.Hash()] = c }
	add(col.Chunking)
	for _, f := range cfg.Features {
		for _, rel := range f.Releases {
			if rel.Retrieval != nil && rel.Retrieval.Collection == name {
				add(*rel.Retrieval.WithDefaults(col).Chunking)
			}
		}
	}
	var versions []string
	for _, c := range rules {
		ix, err := a.Docs.Index(r.Context(), name, c)
		if err == nil {
			err = ix.Add(r.Context(), in.Documents...)
		}
		if err != nil {
			httpio.APIError(w, http.StatusBadRequest, "document_refused", err.Error())
			return
		}
		versions = append(versions, ix.Version())
	}
	httpio.JSON(w, http.StatusOK, map[string]any{"collection": name, "documents": len(in.Documents), "indexes": versions})
}
