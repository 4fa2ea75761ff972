package config

import (
	"encoding/json"
	"strings"
	"testing"
)

const retrievalYAML = `
providers:
  - {name: sim, kind: sim}
models:
  - {name: m, provider: sim, price: {input: 1, output: 1}}
collections:
  - name: help
    chunking: {size_tokens: 200, overlap: 20, markdown: true}
  - name: vectors
    url: http://127.0.0.1:9000/search
    timeout: 500ms
features:
  - name: answer
    releases:
      - version: 1
        template: [{role: user, content: "{{q}}"}]
        variables: [{name: q}]
        route: m
        retrieval:
          collection: help
          top_k: 4
          min_score: 0.5
          filters: {lang: en}
          max_context_tokens: 1500
    labels: {production: 1}
`

func TestRetrievalConfig(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(retrievalYAML))
	if err != nil {
		t.Fatal(err)
	}
	col, ok := cfg.Collection("help")
	if !ok || col.Chunking.SizeTokens != 200 || !col.Chunking.Markdown {
		t.Fatalf("collection %+v", col)
	}
	r := cfg.Features[0].Releases[0].Retrieval
	if r == nil || r.TopK != 4 || r.Filters["lang"] != "en" || r.Chunking != nil {
		t.Fatalf("retrieval %+v", r)
	}
	d := r.WithDefaults(col)
	if d.Chunking == nil || d.Chunking.Overlap != 20 || d.MaxContextTokens != 1500 {
		t.Fatalf("defaults %+v", d)
	}
	if d := (Retrieval{}).WithDefaults(Collection{}); d.TopK != DefaultTopK || d.MaxContextTokens != DefaultMaxContextTokens || d.Chunking.SizeTokens != DefaultChunkTokens {
		t.Fatalf("empty defaults %+v", d)
	}
}

func TestRetrievalConfigProblems(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown collection", "collection: help\n", "collection: faq\n", `features[0].releases[0].retrieval.collection: unknown collection "faq"`},
		{"top_k", "top_k: 4", "top_k: 500", "retrieval.top_k: 500 is outside 0..100"},
		{"min_score", "min_score: 0.5", "min_score: -1", "retrieval.min_score: -1 is negative"},
		{"filter key", "{lang: en}", "{\"bad key\": en}", `filter key "bad key"`},
		{"context tokens", "max_context_tokens: 1500", "max_context_tokens: -3", "retrieval.max_context_tokens: -3 is outside"},
		{"overlap", "overlap: 20", "overlap: 300", "collections[0].chunking.overlap: 300 must be at least 0 and less than the chunk size 200"},
		{"size", "size_tokens: 200", "size_tokens: 100000", "collections[0].chunking.size_tokens: 100000 is outside 0..8192"},
		{"url", "http://127.0.0.1:9000/search", "ftp://x", `collections[1].url: "ftp://x" is not an http or https URL`},
		{"timeout", "timeout: 500ms", "timeout: 5m", "collections[1].timeout: 5m0s is longer than a minute"},
		{"duplicate", "name: vectors", "name: help", `collections[1].name: collection "help" is defined twice`},
		{"unknown field", "top_k: 4", "topk: 4", `unknown field "topk"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(retrievalYAML, tt.from) {
				t.Fatalf("fixture lacks %q", tt.from)
			}
			_, err := Parse("t.yaml", []byte(strings.Replace(retrievalYAML, tt.from, tt.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestChunkingHash(t *testing.T) {
	a := Chunking{}.Hash()
	if a != (Chunking{SizeTokens: DefaultChunkTokens}).Hash() {
		t.Fatal("defaults change the hash")
	}
	if len(a) != 16 {
		t.Fatalf("hash %q is not 16 hex digits", a)
	}
	for _, c := range []Chunking{{SizeTokens: 128}, {Overlap: 1}, {Markdown: true}, {Separators: []string{"\n"}}} {
		if c.Hash() == a {
			t.Fatalf("%+v has the default's hash", c)
		}
	}
	// A release without retrieval encodes (and so hashes) as it did before
	// the field existed.
	b, err := json.Marshal(Release{Version: 1, Route: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "retrieval") {
		t.Fatalf("encoding %s mentions retrieval", b)
	}
}
