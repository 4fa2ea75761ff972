package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/pipeline/retrieval"
)

// Documents is the agent's side of the cluster's collections: a blob store
// of raw bodies, which the other agents fetch from, and indexes brought to
// each collection's replicated manifest.
type Documents interface {
	// Store keeps document bodies and returns their hashes in order.
	Store(bodies [][]byte) (hashes []string, err error)
	// WaitIndexed returns once every index of the collection on this
	// agent reflects the replicated state at index.
	WaitIndexed(ctx context.Context, collection string, index uint64) error
	// Status reports how far this agent's indexes are with each
	// collection.
	Status() []api.Collection
}

// ingestRequest is the body of POST /admin/v1/collections/{name}/documents.
type ingestRequest struct {
	Documents []retrieval.Document `json:"documents"`
}

// maxIngestBytes bounds one ingestion request.
const maxIngestBytes = 32 << 20

// indexWait bounds how long an upload waits for this agent to index it;
// the change is committed either way.
const indexWait = time.Minute

// hosted finds the collection a document request names, which must be one
// whose documents the cluster keeps; on failure it has written the error.
func (a *API) hosted(w http.ResponseWriter, st *state.State, name string) bool {
	col, ok := st.Config.Collection(name)
	if !ok {
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, "no collection "+name+" in the configuration")
		return false
	}
	if col.URL != "" {
		httpio.APIError(w, http.StatusBadRequest, "external_collection", "collection "+name+" is served by an external store at its url; send documents there")
		return false
	}
	return true
}

// ingest serves POST /admin/v1/collections/{name}/documents. The bodies are
// checked against every chunking rule set of the collection and stored in
// this agent's blob store; then the collection's manifest names them
// through the cluster, and every agent fetches what it lacks and indexes
// it. The answer comes once this agent serves the documents.
func (a *API) ingest(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st := a.Cluster.State()
	if !a.hosted(w, st, name) {
		return
	}
	var in ingestRequest
	if err := decodeBody(w, r, maxIngestBytes, &in); err != nil {
		badRequest(w, "the body must be {\"documents\": [...]} within %d MiB: %v", maxIngestBytes>>20, err)
		return
	}
	if len(in.Documents) == 0 {
		badRequest(w, "no documents")
		return
	}
	// A later document with the same id replaces an earlier one, as
	// uploading them one after the other would.
	last := make(map[string]int, len(in.Documents))
	for i, d := range in.Documents {
		last[d.ID] = i
	}
	rules := retrieval.RuleSets(&st.Config, name)
	var ids []string
	var bodies [][]byte
	for i, d := range in.Documents {
		if last[d.ID] != i {
			continue
		}
		body, err := retrieval.EncodeBody(d)
		if err == nil {
			// Every agent cuts the document by these rules; one that
			// cannot be cut is refused here rather than left out there.
			for _, c := range rules {
				if _, err = retrieval.Split(d, c); err != nil {
					break
				}
			}
		}
		if err != nil {
			httpio.APIError(w, http.StatusBadRequest, "document_refused", fmt.Sprintf("documents[%d]: %v; nothing was stored", i, err))
			return
		}
		ids, bodies = append(ids, d.ID), append(bodies, body)
	}
	hashes, err := a.Documents.Store(bodies)
	if err != nil {
		writeErr(w, fmt.Errorf("store documents: %w", err))
		return
	}
	refs := make([]command.DocumentRef, len(ids))
	for i := range ids {
		refs[i] = command.DocumentRef{ID: ids[i], Hash: hashes[i], Size: int64(len(bodies[i]))}
	}
	a.commitDocuments(w, r, name, len(refs), command.PutDocuments, command.Documents{Collection: name, Origin: a.NodeID, Documents: refs})
}

// deleteDocument serves DELETE /admin/v1/collections/{name}/documents/{id...}.
func (a *API) deleteDocument(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	if !a.hosted(w, a.Cluster.State(), name) {
		return
	}
	a.commitDocuments(w, r, name, 1, command.DeleteDocuments, command.DocumentIDs{Collection: name, IDs: []string{id}})
}

// commitDocuments commits a manifest change and waits until this agent's
// indexes reflect it: 200 then, 202 if they do not within indexWait.
func (a *API) commitDocuments(w http.ResponseWriter, r *http.Request, name string, n int, t command.Type, payload any) {
	env, err := command.New(t, payload)
	if err != nil {
		writeErr(w, err)
		return
	}
	env.Actor = actor(r)
	actx, cancel := context.WithTimeout(r.Context(), a.writeTimeout())
	res, err := a.Cluster.Apply(actx, env)
	cancel()
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.Ingested{Collection: name, Documents: n, Index: res.Index}
	wctx, cancel := context.WithTimeout(r.Context(), indexWait)
	defer cancel()
	err = a.Documents.WaitIndexed(wctx, name, res.Index)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		writeErr(w, err)
		return
	}
	out.Indexed = err == nil
	for _, c := range a.Documents.Status() {
		if c.Name == name {
			for _, ix := range c.Indexes {
				out.Indexes = append(out.Indexes, ix.Version)
			}
		}
	}
	status := http.StatusOK
	if !out.Indexed {
		status = http.StatusAccepted
	}
	httpio.JSON(w, status, out)
}

// listDocuments serves GET /admin/v1/collections/{name}/documents: the
// collection's manifest.
func (a *API) listDocuments(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if !a.hosted(w, st, name) {
		return
	}
	m := st.Manifest(name)
	out := api.DocumentList{Collection: name, ManifestIndex: m.Index, Documents: make([]api.DocumentInfo, 0, len(m.Documents))}
	for _, id := range slices.Sorted(maps.Keys(m.Documents)) {
		d := m.Documents[id]
		out.Documents = append(out.Documents, api.DocumentInfo{ID: id, Hash: d.Hash, Size: d.Size, Origin: d.Origin})
	}
	httpio.JSON(w, http.StatusOK, out)
}

// listCollections serves GET /admin/v1/collections: how far this agent's
// indexes are with every collection the cluster keeps documents of.
func (a *API) listCollections(w http.ResponseWriter, r *http.Request) {
	cols := a.Documents.Status()
	sort.Slice(cols, func(i, j int) bool { return cols[i].Name < cols[j].Name })
	httpio.JSON(w, http.StatusOK, api.Collections{Node: a.NodeID, StateIndex: a.Cluster.State().Index, Collections: cols})
}
