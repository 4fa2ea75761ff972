package provider

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestUpstreamMessage(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"openai", `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, "Rate limit reached"},
		{"anthropic", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "Overloaded"},
		{"error string", `{"error":"model 'llama9' not found"}`, "model 'llama9' not found"},
		{"top-level message", `{"message":"bad gateway"}`, "bad gateway"},
		{"detail", `{"detail":"Not Found"}`, "Not Found"},
		{"type only", `{"error":{"type":"api_error"}}`, "api_error"},
		{"plain text", "upstream connect error\n or disconnect", "upstream connect error or disconnect"},
		{"html", "<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := upstreamMessage([]byte(tt.body)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestShorten(t *testing.T) {
	long := strings.Repeat("é", maxMessageLen)
	got := shorten(long)
	if len(got) > maxMessageLen {
		t.Fatalf("length: got %d, want at most %d", len(got), maxMessageLen)
	}
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("got %q, want valid UTF-8 ending in an ellipsis", got)
	}
	if got := shorten("a\xffb"); got != "a\uFFFDb" {
		t.Fatalf("invalid UTF-8: got %q", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{"milliseconds win", map[string]string{"Retry-After-Ms": "250", "Retry-After": "1"}, 250 * time.Millisecond},
		{"bad milliseconds fall back", map[string]string{"Retry-After-Ms": "soon", "Retry-After": "2"}, 2 * time.Second},
		{"http date", map[string]string{"Retry-After": now.Add(30 * time.Second).Format(http.TimeFormat)}, 30 * time.Second},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"capped", map[string]string{"Retry-After": "86400"}, maxRetryAfter},
		{"infinite", map[string]string{"Retry-After": "Inf"}, maxRetryAfter},
		{"NaN", map[string]string{"Retry-After": "NaN"}, 0},
		{"negative", map[string]string{"Retry-After": "-3"}, 0},
		{"garbage", map[string]string{"Retry-After": "later"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzUpstreamMessage(f *testing.F) {
	f.Add([]byte(`{"error":{"message":"x"}}`))
	f.Add([]byte(`{"error":"y"}`))
	f.Add([]byte("plain\ttext"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got := upstreamMessage(body)
		if len(got) > maxMessageLen || !utf8.ValidString(got) || strings.ContainsAny(got, "\n\r") {
			t.Fatalf("message %q is not one short line of UTF-8", got)
		}
	})
}

func TestInStreamStatus(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, 529},
		{`{"error":{"type":"invalid_request_error"}}`, 400},
		{`{"error":{"type":"rate_limit_exceeded","code":null}}`, 429},
		{`{"error":{"message":"x","code":"503"}}`, 503},
		{`{"error":{"message":"x","code":429}}`, 429},
		{`{"error":{"message":"x","code":"context_length_exceeded","type":"invalid_request_error"}}`, 400},
		{`{"error":{"code":200}}`, 500},
		{`{"error":"plain"}`, 500},
		{`not json`, 500},
	}
	for _, tt := range tests {
		if got := inStreamStatus([]byte(tt.body)); got != tt.want {
			t.Fatalf("%s: got %d, want %d", tt.body, got, tt.want)
		}
	}
}
