package retrieval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/index/scorch/mergeplan"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"

	"gantry/config"
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
	revKey   = "gantry:revision"
)

// Index is one collection cut by one set of chunking rules.
type Index struct {
	collection string
	rules      config.Chunking
	hash       string
	idx        bleve.Index
	mu         sync.Mutex // serialises writers; bleve handles readers
	rev        int
}

func openIndex(dir, collection string, rules config.Chunking) (*Index, error) {
	ix := &Index{collection: collection, rules: rules, hash: rules.Hash()}
	path := filepath.Join(dir, "bleve")
	idx, err := bleve.Open(path)
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
	if b, err := idx.GetInternal([]byte(revKey)); err == nil && len(b) > 0 {
		ix.rev, _ = strconv.Atoi(string(b))
	}
	return ix, nil
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

// Version names the index and its content revision, e.g.
// "help/1f2e3d4c5b6a7988/r3"; it goes into traces with every source.
func (ix *Index) Version() string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.version()
}

func (ix *Index) version() string {
	return fmt.Sprintf("%s/%s/r%d", ix.collection, ix.hash, ix.rev)
}

// Rules are the chunking rules the index was built with.
func (ix *Index) Rules() config.Chunking { return ix.rules }

// Count is the number of chunks in the index.
func (ix *Index) Count() (uint64, error) { return ix.idx.DocCount() }

// Add chunks and indexes documents. A document already in the index is
// replaced whole, so its chunk ids are those of its new text. Every document
// is checked before any is written.
func (ix *Index) Add(ctx context.Context, docs ...Document) error {
	type cut struct {
		doc    Document
		chunks []Chunk
	}
	cuts := make([]cut, 0, len(docs))
	last := make(map[string]int, len(docs))
	for i, d := range docs {
		last[d.ID] = i
	}
	for i, d := range docs {
		if last[d.ID] != i {
			continue // a later document with this id replaces it
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		chunks, err := Split(d, ix.rules)
		if err != nil {
			return err
		}
		cuts = append(cuts, cut{d, chunks})
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	b := ix.idx.NewBatch()
	for _, c := range cuts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := ix.deleteChunks(b, c.doc.ID); err != nil {
			return err
		}
		b.SetInternal(docKey(c.doc.ID), []byte(strconv.Itoa(len(c.chunks))))
		meta := metaTerms(c.doc.Metadata)
		for _, ch := range c.chunks {
			if err := b.Index(ch.ID, map[string]any{
				"text":     ch.Text,
				"headings": strings.Join(ch.Headings, " > "),
				"title":    ch.Title,
				"doc":      ch.Document,
				"meta":     meta,
				"seq":      float64(ch.Seq),
				"tokens":   float64(ch.Tokens),
			}); err != nil {
				return fmt.Errorf("index %s: %w", ch.ID, err)
			}
		}
		if b.Size() >= 1000 {
			if err := ix.idx.Batch(b); err != nil {
				return fmt.Errorf("index %s: %w", ix.version(), err)
			}
			b.Reset()
		}
	}
	return ix.commit(b)
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

// Delete removes documents and their chunks.
func (ix *Index) Delete(ctx context.Context, ids ...string) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	b := ix.idx.NewBatch()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := ix.deleteChunks(b, id); err != nil {
			return err
		}
		b.DeleteInternal(docKey(id))
	}
	return ix.commit(b)
}

// commit applies the batch and bumps the revision in the same batch.
func (ix *Index) commit(b *bleve.Batch) error {
	b.SetInternal([]byte(revKey), []byte(strconv.Itoa(ix.rev+1)))
	if err := ix.idx.Batch(b); err != nil {
		return fmt.Errorf("index %s: %w", ix.version(), err)
	}
	ix.rev++
	return nil
}

// docKey is where the index records how many chunks a document has, so
// replacing or deleting it removes exactly those chunks without a search.
func docKey(id string) []byte { return []byte("gantry:doc:" + id) }

func (ix *Index) deleteChunks(b *bleve.Batch, doc string) error {
	v, err := ix.idx.GetInternal(docKey(doc))
	if err != nil {
		return fmt.Errorf("chunks of %s: %w", doc, err)
	}
	if len(v) == 0 {
		return nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return fmt.Errorf("chunks of %s: corrupt count %q", doc, v)
	}
	for i := 0; i < n; i++ {
		b.Delete(fmt.Sprintf("%s#%d", doc, i))
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
	req := bleve.NewSearchRequestOptions(root, q.TopK, 0, false)
	req.Fields = []string{"text", "headings", "title", "doc", "meta", "seq", "tokens"}
	ix.mu.Lock()
	version := ix.version()
	ix.mu.Unlock()
	res, err := ix.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", version, err)
	}
	out := make([]Result, 0, len(res.Hits))
	for _, h := range res.Hits {
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
