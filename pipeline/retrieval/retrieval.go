// Package retrieval gives releases context from document collections: it
// cuts documents into chunks by a release's chunking rules, indexes them with
// bleve (BM25), retrieves the best chunks for a query, packs them into a
// token budget, and formats them as a context block for the prompt. An HTTP
// retriever serves collections that live in an external vector store.
//
// The pipeline's context stage, for a release with a retrieval strategy:
//
//	r, strat, err := retrieval.For(ctx, store, cfg, *rel.Retrieval) // index or HTTP store
//	q, err := tpl.Query(vars)                                       // tpl from prompt.Compile
//	c, err := retrieval.Fetch(ctx, r, strat, q)
//	msgs, err := tpl.RenderContext(vars, c.Block)
//	tr.Sources = c.Sources
package retrieval

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gantry/config"
	"gantry/pipeline/tokens"
	"gantry/pipeline/trace"
)

// MaxQueryBytes bounds a query's text.
const MaxQueryBytes = 8 << 10

// Query asks a retriever for chunks.
type Query struct {
	Text     string
	TopK     int
	MinScore float64
	Filters  map[string]string
}

func (q Query) withDefaults() Query {
	if q.TopK == 0 {
		q.TopK = config.DefaultTopK
	}
	return q
}

func (q Query) check() error {
	if len(q.Text) > MaxQueryBytes {
		return fmt.Errorf("query is %d bytes, more than the limit of %d", len(q.Text), MaxQueryBytes)
	}
	if q.TopK < 0 || q.TopK > config.MaxTopK {
		return fmt.Errorf("top_k %d is outside 1..%d", q.TopK, config.MaxTopK)
	}
	return nil
}

// Result is a retrieved chunk with its score and the version of the index
// that served it.
type Result struct {
	Chunk
	Score    float64           `json:"score"`
	Index    string            `json:"index,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Retriever finds chunks for a query. *Index and *HTTPRetriever are
// retrievers; Retrieve must honour ctx and be safe for concurrent use.
type Retriever interface {
	Retrieve(ctx context.Context, q Query) ([]Result, error)
}

// Context is what retrieval adds to one call.
type Context struct {
	Results []Result       // packed, best first
	Block   string         // the formatted context for the prompt
	Tokens  int            // tokens of the packed chunks' text
	Sources []trace.Source // for the trace
}

// Fetch runs a release's retrieval strategy (defaults applied) for one query.
func Fetch(ctx context.Context, r Retriever, strat config.Retrieval, query string) (Context, error) {
	if strat.TopK == 0 {
		strat.TopK = config.DefaultTopK
	}
	if strat.MaxContextTokens == 0 {
		strat.MaxContextTokens = config.DefaultMaxContextTokens
	}
	res, err := r.Retrieve(ctx, Query{Text: query, TopK: strat.TopK, MinScore: strat.MinScore, Filters: strat.Filters})
	if err != nil {
		return Context{}, fmt.Errorf("retrieve from %s: %w", strat.Collection, err)
	}
	packed, n := Pack(res, strat.MaxContextTokens)
	return Context{Results: packed, Block: Format(packed), Tokens: n, Sources: Sources(packed)}, nil
}

// Pack keeps results, best first, while their text fits in maxTokens; a
// chunk too large for what is left is skipped so a smaller one may still
// fit. It returns the kept results and their tokens.
func Pack(results []Result, maxTokens int) ([]Result, int) {
	var out []Result
	used := 0
	for _, r := range results {
		n := r.Tokens
		if n == 0 {
			n = tokens.Count(r.Text)
		}
		if used+n > maxTokens {
			continue
		}
		used += n
		r.Tokens = n
		out = append(out, r)
	}
	return out, used
}

// Format writes results as a context block the model can cite:
//
//	<context>
//	[1] reset-password#0 (Account > Passwords)
//	Open Settings, then Security…
//	</context>
//
// A chunk's own "</context>" is defused so a document cannot end the block
// early. No results give "".
func Format(results []Result) string {
	if len(results) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("<context>\n")
	for i, r := range results {
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString("] ")
		b.WriteString(r.ID)
		if len(r.Headings) > 0 {
			b.WriteString(" (")
			b.WriteString(strings.Join(r.Headings, " > "))
			b.WriteByte(')')
		} else if r.Title != "" {
			b.WriteString(" (")
			b.WriteString(r.Title)
			b.WriteByte(')')
		}
		b.WriteByte('\n')
		b.WriteString(strings.ReplaceAll(r.Text, "</context>", "</ context>"))
		b.WriteString("\n\n")
	}
	s := strings.TrimSuffix(b.String(), "\n")
	return s + "</context>"
}

// Sources maps results to trace sources.
func Sources(results []Result) []trace.Source {
	out := make([]trace.Source, len(results))
	for i, r := range results {
		out[i] = trace.Source{Document: r.Document, Chunk: r.ID, Score: r.Score, Index: r.Index}
	}
	return out
}

// ErrUnknownCollection is returned for a collection the configuration lacks.
var ErrUnknownCollection = errors.New("unknown collection")

// For returns the retriever that serves a release's strategy: the HTTP
// retriever of a collection with a URL, otherwise the store's index for the
// strategy's chunking rules (the collection's when the release pins none).
// The returned strategy has its defaults applied.
func For(ctx context.Context, store *Store, cfg *config.Config, strat config.Retrieval) (Retriever, config.Retrieval, error) {
	col, ok := cfg.Collection(strat.Collection)
	if !ok {
		return nil, strat, fmt.Errorf("%w %q", ErrUnknownCollection, strat.Collection)
	}
	strat = strat.WithDefaults(col)
	if col.URL != "" {
		return &HTTPRetriever{URL: col.URL, Timeout: col.Timeout.D()}, strat, nil
	}
	ix, err := store.Index(ctx, col.Name, *strat.Chunking)
	if err != nil {
		return nil, strat, err
	}
	return ix, strat, nil
}

// RuleSets are the chunking rules a collection is indexed by: its own and
// every set a release retrieving from it pins, defaults applied, one per
// hash, sorted by hash. Each has an index on every agent.
func RuleSets(cfg *config.Config, collection string) []config.Chunking {
	col, ok := cfg.Collection(collection)
	if !ok || col.URL != "" {
		return nil
	}
	byHash := map[string]config.Chunking{}
	add := func(c config.Chunking) { c = c.WithDefaults(); byHash[c.Hash()] = c }
	add(col.Chunking)
	for _, f := range cfg.Features {
		for _, rel := range f.Releases {
			if rel.Retrieval != nil && rel.Retrieval.Collection == collection {
				add(*rel.Retrieval.WithDefaults(col).Chunking)
			}
		}
	}
	hashes := make([]string, 0, len(byHash))
	for h := range byHash {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	out := make([]config.Chunking, len(hashes))
	for i, h := range hashes {
		out[i] = byHash[h]
	}
	return out
}
