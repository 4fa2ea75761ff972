package retrieval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"gantry/config"
)

// MaxResponseBytes bounds an external store's answer.
const MaxResponseBytes = 4 << 20

// HTTPRetriever queries an external store (a vector database behind a small
// adapter) with this JSON contract:
//
//	POST <URL>
//	{"query": "how do I reset my password", "top_k": 5, "filters": {"lang": "en"}}
//
//	200 OK
//	{"chunks": [{"document": "reset-password", "chunk": "reset-password#0",
//	             "text": "Open Settings…", "score": 0.82,
//	             "metadata": {"lang": "en"}}]}
//
// Chunks are expected best first; Gantry re-sorts by score, drops those under
// min_score and beyond top_k, and refuses answers over MaxResponseBytes,
// non-2xx statuses and chunks without document, chunk or text. The store's
// "index" field, if present, names its version for traces.
type HTTPRetriever struct {
	URL     string
	Client  *http.Client  // nil means http.DefaultClient
	Timeout time.Duration // per request; 0 means config.DefaultRetrievalTimeout
	Header  http.Header   // added to every request, e.g. Authorization
}

type httpRequest struct {
	Query   string            `json:"query"`
	TopK    int               `json:"top_k"`
	Filters map[string]string `json:"filters,omitempty"`
}

type httpResponse struct {
	Index  string      `json:"index,omitempty"`
	Chunks []httpChunk `json:"chunks"`
}

type httpChunk struct {
	Document string            `json:"document"`
	Chunk    string            `json:"chunk"`
	Text     string            `json:"text"`
	Score    float64           `json:"score"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Retrieve sends the query and checks the answer.
func (h *HTTPRetriever) Retrieve(ctx context.Context, q Query) ([]Result, error) {
	q = q.withDefaults()
	if err := q.check(); err != nil {
		return nil, err
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = config.DefaultRetrievalTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, _ := json.Marshal(httpRequest{Query: q.Text, TopK: q.TopK, Filters: q.Filters})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("retrieval request: %w", err)
	}
	for k, vs := range h.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("retrieval store %s did not answer within %s", h.URL, timeout)
		}
		return nil, fmt.Errorf("retrieval store %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("retrieval store %s: reading answer: %w", h.URL, err)
	}
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("retrieval store %s: answer larger than %d bytes", h.URL, MaxResponseBytes)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("retrieval store %s: status %d: %s", h.URL, resp.StatusCode, snippet(data))
	}
	var out httpResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("retrieval store %s: answer is not the expected JSON: %w", h.URL, err)
	}
	index := out.Index
	if index == "" {
		index = h.URL
	}
	results := make([]Result, 0, len(out.Chunks))
	for i, c := range out.Chunks {
		if c.Document == "" || c.Chunk == "" || c.Text == "" {
			return nil, fmt.Errorf("retrieval store %s: chunks[%d] lacks document, chunk or text", h.URL, i)
		}
		if c.Score < q.MinScore {
			continue
		}
		r := Result{Score: c.Score, Index: index, Metadata: c.Metadata}
		r.ID, r.Document, r.Text = c.Chunk, c.Document, c.Text
		results = append(results, r)
	}
	sortResults(results)
	if len(results) > q.TopK {
		results = results[:q.TopK]
	}
	return results, nil
}

// sortResults orders by score, best first, then by chunk id.
func sortResults(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Score != rs[j].Score {
			return rs[i].Score > rs[j].Score
		}
		return rs[i].ID < rs[j].ID
	})
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

var _ Retriever = (*HTTPRetriever)(nil)
