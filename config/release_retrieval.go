package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"time"
)

// Collection is a named set of documents that releases retrieve from. Its
// Chunking is the default rule set for releases that do not pin their own.
// A collection with a URL lives in an external store that Gantry queries
// over HTTP; its chunking is that store's business.
type Collection struct {
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Chunking    Chunking `yaml:"chunking" json:"chunking"`
	URL         string   `yaml:"url" json:"url,omitempty"`
	// Timeout bounds one request to URL; 0 means DefaultRetrievalTimeout.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// DefaultRetrievalTimeout bounds a request to an external store.
const DefaultRetrievalTimeout = 2 * time.Second

// Chunking rules cut documents into the chunks that are indexed and
// retrieved. Sizes count o200k_base tokens. Two rule sets that differ in any
// field produce different chunks, so an index is keyed by their hash.
type Chunking struct {
	// SizeTokens is the largest chunk; 0 means DefaultChunkTokens.
	SizeTokens int `yaml:"size_tokens" json:"size_tokens,omitempty"`
	// Overlap is how many tokens of a chunk's end the next chunk repeats.
	Overlap int `yaml:"overlap" json:"overlap,omitempty"`
	// Separators are tried in order to split text that is too long; empty
	// means paragraphs, lines, sentences, then words.
	Separators []string `yaml:"separators" json:"separators,omitempty"`
	// Markdown makes headings boundaries: no chunk straddles one, and each
	// chunk carries its heading path.
	Markdown bool `yaml:"markdown" json:"markdown,omitempty"`
}

// Defaults and limits of chunking and retrieval.
const (
	DefaultChunkTokens      = 256
	MaxChunkTokens          = 8192
	MaxSeparators           = 16
	MaxSeparatorBytes       = 16
	DefaultTopK             = 5
	MaxTopK                 = 100
	DefaultMaxContextTokens = 2000
	MaxContextTokens        = 1 << 17
	MaxFilters              = 16
	MaxQueryTemplateBytes   = 4 << 10
)

// WithDefaults fills unset fields.
func (c Chunking) WithDefaults() Chunking {
	if c.SizeTokens == 0 {
		c.SizeTokens = DefaultChunkTokens
	}
	return c
}

// Hash identifies a rule set, defaults applied, so that a release and the
// index built for it agree on which chunks they mean. It is short because it
// names directories.
func (c Chunking) Hash() string {
	b, err := json.Marshal(c.WithDefaults())
	if err != nil {
		panic("config: chunking does not encode: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Retrieval is a release's retrieval strategy: which collection, cut by which
// rules, queried how, and how much of the result reaches the prompt.
type Retrieval struct {
	Collection string `yaml:"collection" json:"collection"`
	// Chunking pins the rules the release was evaluated with; left empty, the
	// collection's rules apply (release.Pin copies them in before a release is
	// stored, so its hash covers them).
	Chunking *Chunking `yaml:"chunking" json:"chunking,omitempty"`
	// Query is a prompt template rendered with the call's variables; empty
	// means the last template message.
	Query string `yaml:"query" json:"query,omitempty"`
	// TopK is how many chunks are asked for; 0 means DefaultTopK.
	TopK int `yaml:"top_k" json:"top_k,omitempty"`
	// MinScore drops chunks that score lower. BM25 scores have no fixed
	// scale, so pick it from the scores traces record for this collection.
	MinScore float64 `yaml:"min_score" json:"min_score,omitempty"`
	// Filters keep only chunks whose document metadata has these values.
	Filters map[string]string `yaml:"filters" json:"filters,omitempty"`
	// MaxContextTokens bounds the chunks packed into the prompt; 0 means
	// DefaultMaxContextTokens.
	MaxContextTokens int `yaml:"max_context_tokens" json:"max_context_tokens,omitempty"`
}

// WithDefaults fills unset fields; the collection supplies chunking rules
// when the strategy pins none.
func (r Retrieval) WithDefaults(col Collection) Retrieval {
	if r.Chunking == nil {
		c := col.Chunking.WithDefaults()
		r.Chunking = &c
	} else {
		c := r.Chunking.WithDefaults()
		r.Chunking = &c
	}
	if r.TopK == 0 {
		r.TopK = DefaultTopK
	}
	if r.MaxContextTokens == 0 {
		r.MaxContextTokens = DefaultMaxContextTokens
	}
	return r
}

// Collection returns the collection with the given name.
func (cfg *Config) Collection(name string) (Collection, bool) {
	for _, c := range cfg.Collections {
		if c.Name == name {
			return c, true
		}
	}
	return Collection{}, false
}

// CheckChunking lists what is wrong with a rule set, each problem under path.
func CheckChunking(path string, c Chunking) []Problem {
	var ps []Problem
	add := func(p, format string, args ...any) {
		ps = append(ps, Problem{Path: p, Reason: fmt.Sprintf(format, args...)})
	}
	if c.SizeTokens < 0 || c.SizeTokens > MaxChunkTokens {
		add(path+".size_tokens", "%d is outside 0..%d", c.SizeTokens, MaxChunkTokens)
	}
	size := c.WithDefaults().SizeTokens
	if c.Overlap < 0 || (c.SizeTokens >= 0 && c.Overlap >= size) {
		add(path+".overlap", "%d must be at least 0 and less than the chunk size %d", c.Overlap, size)
	}
	if len(c.Separators) > MaxSeparators {
		add(path+".separators", "%d separators, more than the limit of %d", len(c.Separators), MaxSeparators)
	}
	for i, s := range c.Separators {
		if s == "" || len(s) > MaxSeparatorBytes {
			add(fmt.Sprintf("%s.separators[%d]", path, i), "a separator is 1 to %d bytes", MaxSeparatorBytes)
		}
	}
	return ps
}

// CheckRetrieval lists what is wrong with a retrieval strategy, each problem
// under path. collections maps names to the known collections.
func CheckRetrieval(path string, r Retrieval, collections map[string]bool) []Problem {
	var ps []Problem
	add := func(p, format string, args ...any) {
		ps = append(ps, Problem{Path: p, Reason: fmt.Sprintf(format, args...)})
	}
	if r.Collection == "" {
		add(path+".collection", "a retrieval strategy names a collection")
	} else if !collections[r.Collection] {
		add(path+".collection", "unknown collection %q", r.Collection)
	}
	if r.Chunking != nil {
		ps = append(ps, CheckChunking(path+".chunking", *r.Chunking)...)
	}
	if len(r.Query) > MaxQueryTemplateBytes {
		add(path+".query", "longer than %d bytes", MaxQueryTemplateBytes)
	}
	if r.TopK < 0 || r.TopK > MaxTopK {
		add(path+".top_k", "%d is outside 0..%d", r.TopK, MaxTopK)
	}
	if r.MinScore < 0 || r.MinScore != r.MinScore {
		add(path+".min_score", "%v is negative or not a number", r.MinScore)
	}
	if len(r.Filters) > MaxFilters {
		add(path+".filters", "%d filters, more than the limit of %d", len(r.Filters), MaxFilters)
	}
	keys := make([]string, 0, len(r.Filters))
	for k := range r.Filters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := r.Filters[k]
		if k == "" || len(k) > MaxNameLen || !validNameChars(k) {
			add(path+".filters", "filter key %q is not a metadata name", k)
		}
		if len(v) > MaxNameLen*4 {
			add(path+".filters."+k, "value longer than %d bytes", MaxNameLen*4)
		}
	}
	if r.MaxContextTokens < 0 || r.MaxContextTokens > MaxContextTokens {
		add(path+".max_context_tokens", "%d is outside 0..%d", r.MaxContextTokens, MaxContextTokens)
	}
	return ps
}

func (c *checker) collections(cols []Collection) map[string]bool {
	c.count("collections", len(cols))
	seen := map[string]bool{}
	for i, col := range cols {
		path := fmt.Sprintf("collections[%d]", i)
		c.name(path+".name", "collection", col.Name, seen)
		c.problems = append(c.problems, CheckChunking(path+".chunking", col.Chunking)...)
		if col.URL != "" {
			if u, err := url.Parse(col.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.add(path+".url", "%q is not an http or https URL", col.URL)
			}
		}
		if col.Timeout.D() > time.Minute {
			c.add(path+".timeout", "%s is longer than a minute; retrieval sits on the request path", col.Timeout)
		}
	}
	return seen
}
