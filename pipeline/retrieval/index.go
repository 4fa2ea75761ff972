package retrieval

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/index/scorch/mergeplan"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"

	"gantry/config"
	"gantry/pipeline/retrieval/blobs"
)

// Store keeps the indexes of all collections in one directory (the agent's
// data directory). An index is keyed by collection and by the hash of its
// chunking rules, so releases that pin different rules for one collection
// each read the index built with theirs: <dir>/<collection>/<rules hash>/.
// A Store is safe for concurrent use; Close closes every index it opened.
type Store struct {
	dir    string
	mu     sync.Mutex
	open   map[string]*Index
	closed bool
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("retrieval store is closed")

var collectionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// OpenStore opens (and creates) the directory that holds indexes.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("retrieval store %s: %w", dir, err)
	}
	return &Store{dir: dir, open: map[string]*Index{}}, nil
}

// Index opens the index of a collection cut by the given rules, creating an
// empty one if none exists yet.
func (s *Store) Index(ctx context.Context, collection string, rules config.Chunking) (*Index, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !collectionRE.MatchString(collection) {
		return nil, fmt.Errorf("collection name %q may hold only letters, digits and . _ : - (64 at most)", collection)
	}
	if ps := config.CheckChunking("chunking", rules); len(ps) > 0 {
		return nil, fmt.Errorf("collection %s: %s", collection, ps[0].Error())
	}
	rules = rules.WithDefaults()
	hash := rules.Hash()
	key := collection + "/" + hash
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if ix, ok := s.open[key]; ok {
		return ix, nil
	}
	dir := filepath.Join(s.dir, collection, hash)
	ix, err := openIndex(dir, collection, rules)
	if err != nil {
		return nil, err
	}
	s.open[key] = ix
	return ix, nil
}

// IndexInfo describes one index on disk.
type IndexInfo struct {
	Collection string          `json:"collection"`
	Rules      config.Chunking `json:"chunking"`
	RulesHash  string          `json:"rules_hash"`
}

// Indexes lists the indexes that exist for a collection, sorted by hash.
func (s *Store) Indexes(collection string) ([]IndexInfo, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, collection))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []IndexInfo
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(s.dir, collection, e.Name(), metaFile))
		if err != nil {
			continue // not an index directory
		}
		var info IndexInfo
		if err := json.Unmarshal(b, &info); err != nil {
			return nil, fmt.Errorf("index %s/%s: %s: %w", collection, e.Name(), metaFile, err)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RulesHash < out[j].RulesHash })
	return out, nil
}

// Close closes every open index.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for k, ix := range s.open {
		errs = append(errs, ix.idx.Close())
		delete(s.open, k)
	}
	return errors.Join(errs...)
}

const (
	metaFile = "index.json"
	// docsKey holds what the index holds of each document (JSON), written
	// in the same bleve batch as the chunks, so the two always agree.
	docsKey = "gantry:docs"
	// appliedKey holds the manifest index the index reflects.
	appliedKey = "gantry:applied"
	// maxBatchChunks bounds the chunks one bleve batch carries.
	maxBatchChunks = 2000
)

// scored are the fields a query scores, in the order of indexed.Lengths.
var scored = [...]string{"text", "headings", "title", "meta"}

// Index is one collection cut by one set of chunking rules.
type Index struct {
	collection string
	rules      config.Chunking
	hash       string
	idx        bleve.Index
	analyzer   analysis.Analyzer
	// mu serialises writers and guards docs and applied.
	mu      sync.Mutex
	docs    map[string]indexed
	applied uint64
	// view is what readers need, published after every write, so a query
	// never waits for a writer.
	view atomic.Pointer[view]
}

// indexed is what the index holds of one document.
type indexed struct {
	// Hash names the body the chunks were cut from.
	Hash   string `json:"hash"`
	Chunks int    `json:"chunks"`
	// Lengths are the analysed tokens of the document's chunks in each
	// scored field, summed for BM25's average field length.
	Lengths [len(scored)]int `json:"lengths"`
	// Refused says why the body cannot be cut by these rules; it then has
	// no chunks and is not tried again until its body changes.
	Refused string `json:"refused,omitempty"`
}

type view struct {
	version string
	stats   *search.BM25Stats
	applied uint64
	docs    int
	chunks  int
	refused int
}

func openIndex(dir, collection string, rules config.Chunking) (*Index, error) {
	ix := &Index{collection: collection, rules: rules, hash: rules.Hash()}
	path := filepath.Join(dir, "bleve")
	idx, err := bleve.Open(path)
	if err == nil {
		if legacy(idx) {
			// Indexes written before documents were kept list no
			// bodies, so they cannot be brought to a manifest; they are
			// rebuilt from the cluster's documents.
			idx.Close()
			if err := os.RemoveAll(path); err != nil {
				return nil, fmt.Errorf("index %s/%s: rebuild: %w", collection, ix.hash, err)
			}
			idx, err = nil, bleve.ErrorIndexPathDoesNotExist
		}
	}
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		meta, _ := json.MarshalIndent(IndexInfo{Collection: collection, Rules: rules, RulesHash: ix.hash}, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, metaFile), meta, 0o644); err != nil {
			return nil, fmt.Errorf("index %s/%s: %w", collection, ix.hash, err)
		}
		idx, err = bleve.New(path, indexMapping())
	}
	if err != nil {
		return nil, fmt.Errorf("index %s/%s: %w", collection, ix.hash, err)
	}
	ix.idx = idx
	ix.analyzer = idx.Mapping().AnalyzerNamed(en.AnalyzerName)
	ix.docs = map[string]indexed{}
	if b, err := idx.GetInternal([]byte(docsKey)); err == nil && len(b) > 0 {
		if err := json.Unmarshal(b, &ix.docs); err != nil {
			idx.Close()
			return nil, fmt.Errorf("index %s/%s: %s: %w", collection, ix.hash, docsKey, err)
		}
	}
	if b, err := idx.GetInternal([]byte(appliedKey)); err == nil && len(b) > 0 {
		ix.applied, _ = strconv.ParseUint(string(b), 10, 64)
	}
	ix.publish()
	return ix, nil
}

// legacy reports whether idx holds chunks but no record of its documents.
func legacy(idx bleve.Index) bool {
	n, err := idx.DocCount()
	if err != nil || n == 0 {
		return false
	}
	b, err := idx.GetInternal([]byte(docsKey))
	return err == nil && len(b) == 0
}

// indexMapping scores with BM25 and analyses text as English (stemming,
// stop words); document ids and metadata are exact keywords.
func indexMapping() mapping.IndexMapping {
	text := bleve.NewTextFieldMapping()
	text.Analyzer = en.AnalyzerName
	text.Store = true
	text.IncludeTermVectors = false
	text.DocValues = false

	kw := bleve.NewKeywordFieldMapping()
	kw.Analyzer = keyword.Name
	kw.Store = true
	kw.IncludeTermVectors = false
	kw.DocValues = false

	// order is the chunk id again, indexed with doc values so tied scores
	// can be ordered by id without loading each hit's stored id.
	order := bleve.NewKeywordFieldMapping()
	order.Analyzer = keyword.Name
	order.Store = false
	order.IncludeTermVectors = false
	order.IncludeInAll = false
	order.DocValues = true

	stored := bleve.NewNumericFieldMapping()
	stored.Index = false
	stored.Store = true
	stored.DocValues = false

	doc := bleve.NewDocumentStaticMapping()
	doc.AddFieldMappingsAt("text", text)
	doc.AddFieldMappingsAt("headings", text)
	doc.AddFieldMappingsAt("title", text)
	doc.AddFieldMappingsAt("doc", kw)
	doc.AddFieldMappingsAt("meta", kw)
	doc.AddFieldMappingsAt("chunk", order)
	doc.AddFieldMappingsAt("seq", stored)
	doc.AddFieldMappingsAt("tokens", stored)

	m := bleve.NewIndexMapping()
	m.DefaultMapping = doc
	m.DefaultAnalyzer = en.AnalyzerName
	m.ScoringModel = index.BM25Scoring
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	return m
}

// publish makes the current documents visible to readers: the version
// names the content (every document id and body hash), and the BM25
// statistics are computed from the documents rather than read from
// bleve's segments, whose layout depends on the order of past writes. So
// two indexes of the same documents and rules score alike, whatever their
// history. Callers hold mu or own the index alone.
func (ix *Index) publish() {
	ids := make([]string, 0, len(ix.docs))
	stats := &search.BM25Stats{FieldCardinality: make(map[string]int, len(scored))}
	var totals [len(scored)]int
	v := &view{applied: ix.applied, docs: len(ix.docs)}
	for id, d := range ix.docs {
		ids = append(ids, id)
		v.chunks += d.Chunks
		for i, n := range d.Lengths {
			totals[i] += n
		}
		if d.Refused != "" {
			v.refused++
		}
	}
	sort.Strings(ids)
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%s\x00%s\n", id, ix.docs[id].Hash)
	}
	stats.DocCount = float64(v.chunks)
	for i, f := range scored {
		// bleve divides this by the document count for the average
		// field length.
		stats.FieldCardinality[f] = totals[i]
	}
	v.stats = stats
	v.version = fmt.Sprintf("%s/%s/%x", ix.collection, ix.hash, h.Sum(nil)[:8])
	ix.view.Store(v)
}

// Version names the index and its content, e.g.
// "help/1f2e3d4c5b6a7988/0c1d2e3f4a5b6c7d": the collection, the hash of the
// chunking rules and a digest of every document id and body hash. Agents
// whose indexes hold the same documents name the same version; it goes
// into traces with every source.
func (ix *Index) Version() string { return ix.view.Load().version }

// Rules are the chunking rules the index was built with.
func (ix *Index) Rules() config.Chunking { return ix.rules }

// Count is the number of chunks in the index.
func (ix *Index) Count() (uint64, error) { return ix.idx.DocCount() }

// IndexState is how far an index is and what it holds.
type IndexState struct {
	Version string `json:"version"`
	// Applied is the manifest index the index reflects in full; 0 before
	// its first complete Sync.
	Applied   uint64 `json:"applied"`
	Documents int    `json:"documents"`
	Chunks    int    `json:"chunks"`
	// Refused counts documents whose body these rules cannot cut.
	Refused int `json:"refused,omitempty"`
}

// State reports what the index holds.
func (ix *Index) State() IndexState {
	v := ix.view.Load()
	return IndexState{Version: v.version, Applied: v.applied, Documents: v.docs, Chunks: v.chunks, Refused: v.refused}
}

// cut is one change of a document: its chunks under the index's rules, or
// its removal.
type cut struct {
	id     string
	rec    indexed
	chunks []Chunk
	meta   []string
	remove bool
}

// prepare chunks a document and measures its fields; it takes no lock.
func (ix *Index) prepare(d Document, hash string) (cut, error) {
	chunks, err := Split(d, ix.rules)
	if err != nil {
		return cut{}, err
	}
	c := cut{id: d.ID, chunks: chunks, meta: metaTerms(d.Metadata), rec: indexed{Hash: hash, Chunks: len(chunks)}}
	// A document's chunks share its title and a section's share their
	// headings, so each distinct string is analysed once.
	lengths := map[string]int{}
	length := func(s string) int {
		n, ok := lengths[s]
		if !ok {
			n = len(ix.analyzer.Analyze([]byte(s)))
			lengths[s] = n
		}
		return n
	}
	for _, ch := range chunks {
		c.rec.Lengths[0] += len(ix.analyzer.Analyze([]byte(ch.Text)))
		c.rec.Lengths[1] += length(strings.Join(ch.Headings, " > "))
		c.rec.Lengths[2] += length(ch.Title)
		c.rec.Lengths[3] += len(c.meta)
	}
	return c, nil
}

// Add chunks and indexes documents. A document already in the index is
// replaced whole, so its chunk ids are those of its new text. Every document
// is checked before any is written.
func (ix *Index) Add(ctx context.Context, docs ...Document) error {
	last := make(map[string]int, len(docs))
	for i, d := range docs {
		last[d.ID] = i
	}
	cuts := make([]cut, 0, len(docs))
	for i, d := range docs {
		if last[d.ID] != i {
			continue // a later document with this id replaces it
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := EncodeBody(d)
		if err != nil {
			return err
		}
		c, err := ix.prepare(d, blobs.Sum(b))
		if err != nil {
			return err
		}
		cuts = append(cuts, c)
	}
	return ix.write(ctx, cuts, nil)
}

// Delete removes documents and their chunks.
func (ix *Index) Delete(ctx context.Context, ids ...string) error {
	cuts := make([]cut, len(ids))
	for i, id := range ids {
		cuts[i] = cut{id: id, remove: true}
	}
	return ix.write(ctx, cuts, nil)
}

// write applies cuts in batches of at most maxBatchChunks chunks; each
// batch also records the documents as they stand after it, and the last
// one applied when it is set, so a crash between batches leaves an index
// that knows exactly what it holds.
func (ix *Index) write(ctx context.Context, cuts []cut, applied *uint64) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	docs := maps.Clone(ix.docs)
	b := ix.idx.NewBatch()
	pending := 0
	flush := func(final bool) error {
		if final && applied != nil {
			b.SetInternal([]byte(appliedKey), []byte(strconv.FormatUint(*applied, 10)))
		}
		enc, err := json.Marshal(docs)
		if err != nil {
			return fmt.Errorf("index %s: %w", ix.Version(), err)
		}
		b.SetInternal([]byte(docsKey), enc)
		if err := ix.idx.Batch(b); err != nil {
			return fmt.Errorf("index %s: %w", ix.Version(), err)
		}
		ix.docs = maps.Clone(docs)
		if final && applied != nil {
			ix.applied = *applied
		}
		ix.publish()
		b.Reset()
		pending = 0
		return nil
	}
	for _, c := range cuts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if old, ok := docs[c.id]; ok {
			for i := range old.Chunks {
				b.Delete(fmt.Sprintf("%s#%d", c.id, i))
			}
			pending += old.Chunks
			delete(docs, c.id)
		}
		if c.remove {
			continue
		}
		for _, ch := range c.chunks {
			if err := b.Index(ch.ID, map[string]any{
				"text":     ch.Text,
				"headings": strings.Join(ch.Headings, " > "),
				"title":    ch.Title,
				"doc":      ch.Document,
				"chunk":    ch.ID,
				"meta":     c.meta,
				"seq":      float64(ch.Seq),
				"tokens":   float64(ch.Tokens),
			}); err != nil {
				return fmt.Errorf("index %s: %w", ch.ID, err)
			}
		}
		pending += len(c.chunks)
		docs[c.id] = c.rec
		if pending >= maxBatchChunks {
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	return flush(true)
}

// SyncResult is what a Sync changed and what it could not.
type SyncResult struct {
	Indexed, Removed int
	// Missing counts documents whose body could not be loaded; they are
	// tried again at the next Sync.
	Missing int
	// Refused counts documents these rules cannot cut (see IndexState).
	Refused int
}

// syncGroup bounds how many bodies a Sync holds in memory at once.
const syncGroup = 64

// Sync brings the index to a collection's manifest: want maps every
// document id to the hash of its body, manifest is the manifest's log
// index, and load returns a document by id and hash (an error wrapping
// ErrDocument when the body is not a valid document). Documents whose body
// is unchanged are left alone, those gone from want are removed. The index
// records manifest as applied only when no body was missing; until then
// it serves the documents it has.
func (ix *Index) Sync(ctx context.Context, manifest uint64, want map[string]string, load func(id, hash string) (Document, error)) (SyncResult, error) {
	var res SyncResult
	var removes, adds []string
	ix.mu.Lock()
	for id := range ix.docs {
		if _, ok := want[id]; !ok {
			removes = append(removes, id)
		}
	}
	for id, hash := range want {
		if d, ok := ix.docs[id]; !ok || d.Hash != hash {
			adds = append(adds, id)
		}
	}
	upToDate := ix.applied >= manifest
	ix.mu.Unlock()
	if len(removes) == 0 && len(adds) == 0 && upToDate {
		return res, nil
	}
	sort.Strings(removes)
	sort.Strings(adds)
	cuts := make([]cut, 0, len(removes)+syncGroup)
	for _, id := range removes {
		cuts = append(cuts, cut{id: id, remove: true})
	}
	res.Removed = len(removes)
	for _, id := range adds {
		hash := want[id]
		d, err := load(id, hash)
		var c cut
		if err == nil {
			// The manifest's hash is recorded, not one computed here,
			// so the next Sync sees the document as current.
			c, err = ix.prepare(d, hash)
		}
		switch {
		case err == nil:
			res.Indexed++
		case errors.Is(err, ErrDocument):
			c = cut{id: id, rec: indexed{Hash: hash, Refused: err.Error()}}
			res.Refused++
		case ctx.Err() != nil:
			return res, ctx.Err()
		default:
			res.Missing++
			continue
		}
		cuts = append(cuts, c)
		if len(cuts) >= syncGroup {
			if err := ix.write(ctx, cuts, nil); err != nil {
				return res, err
			}
			cuts = cuts[:0]
		}
	}
	var applied *uint64
	if res.Missing == 0 {
		applied = &manifest
	}
	return res, ix.write(ctx, cuts, applied)
}

// Compact merges the index's segments into one, which makes queries
// faster after a bulk load. It blocks until the merge is done or ctx ends
// and is safe to call while the index serves queries.
func (ix *Index) Compact(ctx context.Context) error {
	adv, err := ix.idx.Advanced()
	if err != nil {
		return err
	}
	s, ok := adv.(*scorch.Scorch)
	if !ok {
		return nil
	}
	if err := s.ForceMerge(ctx, &mergeplan.SingleSegmentMergePlanOptions); err != nil {
		return fmt.Errorf("compact %s: %w", ix.Version(), err)
	}
	return nil
}

func metaTerms(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Retrieve finds the chunks that best match the query text by BM25 over the
// chunk text, its heading path and its document's title, keeps those whose
// documents match every filter and score at least MinScore, and returns at
// most TopK, best first. Ties are broken by chunk id so results are stable.
func (ix *Index) Retrieve(ctx context.Context, q Query) ([]Result, error) {
	q = q.withDefaults()
	if err := q.check(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(q.Text) == "" {
		return nil, nil
	}
	textQ := bleve.NewMatchQuery(q.Text)
	textQ.SetField("text")
	headQ := bleve.NewMatchQuery(q.Text)
	headQ.SetField("headings")
	headQ.SetBoost(0.5)
	titleQ := bleve.NewMatchQuery(q.Text)
	titleQ.SetField("title")
	titleQ.SetBoost(0.5)
	var root query.Query = bleve.NewDisjunctionQuery(textQ, headQ, titleQ)
	if len(q.Filters) > 0 {
		conj := bleve.NewConjunctionQuery(root)
		for _, term := range metaTerms(q.Filters) {
			tq := bleve.NewTermQuery(term)
			tq.SetField("meta")
			conj.AddQuery(tq)
		}
		root = conj
	}
	v := ix.view.Load()
	// One more than asked shows whether a tie straddles the cut.
	req := bleve.NewSearchRequestOptions(root, q.TopK+1, 0, false)
	req.Fields = []string{"text", "headings", "title", "doc", "meta", "seq", "tokens"}
	req.PreSearchData = map[string]any{search.BM25PreSearchDataKey: v.stats}
	res, err := ix.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", v.version, err)
	}
	hits := res.Hits
	if len(hits) > q.TopK {
		if hits[q.TopK-1].Score == hits[q.TopK].Score {
			// Which of the tied chunks bleve keeps depends on how its
			// segments are laid out; ordering ties by id keeps the same
			// ones on every agent. Rare, so the slower sort is paid only
			// then.
			req.Size = q.TopK
			req.SortBy([]string{"-_score", "chunk"})
			if res, err = ix.idx.SearchInContext(ctx, req); err != nil {
				return nil, fmt.Errorf("search %s: %w", v.version, err)
			}
			hits = res.Hits
		} else {
			hits = hits[:q.TopK]
		}
	}
	version := v.version
	out := make([]Result, 0, len(hits))
	for _, h := range hits {
		if h.Score < q.MinScore {
			continue
		}
		r := Result{Score: h.Score, Index: version}
		r.ID = h.ID
		r.Document, _ = h.Fields["doc"].(string)
		r.Text, _ = h.Fields["text"].(string)
		r.Title, _ = h.Fields["title"].(string)
		if s, _ := h.Fields["headings"].(string); s != "" {
			r.Headings = strings.Split(s, " > ")
		}
		if f, ok := h.Fields["seq"].(float64); ok {
			r.Seq = int(f)
		}
		if f, ok := h.Fields["tokens"].(float64); ok {
			r.Tokens = int(f)
		}
		r.Metadata = metaFields(h.Fields["meta"])
		out = append(out, r)
	}
	// Sorting by _id inside bleve would load every hit's id; ordering ties
	// among the few results kept costs nothing.
	sortResults(out)
	return out, nil
}

func metaFields(v any) map[string]string {
	var terms []string
	switch x := v.(type) {
	case string:
		terms = []string{x}
	case []any:
		for _, t := range x {
			if s, ok := t.(string); ok {
				terms = append(terms, s)
			}
		}
	}
	if len(terms) == 0 {
		return nil
	}
	m := make(map[string]string, len(terms))
	for _, t := range terms {
		k, val, _ := strings.Cut(t, "=")
		m[k] = val
	}
	return m
}

var _ Retriever = (*Index)(nil)
