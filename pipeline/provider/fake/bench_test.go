package fake_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gantry/pipeline/provider/fake"
)

// The gateway's load benchmark serves a zero-latency Fake as its upstream;
// these measure what the Fake itself costs per request.
func benchHandler(b *testing.B, body string) {
	h := fake.Handler(fake.Options{})
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkHandlerComplete(b *testing.B) {
	benchHandler(b, `{"model":"m","messages":[{"role":"user","content":"Where is my order?"}]}`)
}

func BenchmarkHandlerStream(b *testing.B) {
	benchHandler(b, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Where is my order?"}]}`)
}

// BenchmarkRoundTrip measures a provider call against a zero-latency Fake
// over loopback HTTP: what an upstream call costs the gateway at the least.
func BenchmarkRoundTrip(b *testing.B) {
	for _, k := range kinds {
		for _, stream := range []bool{false, true} {
			name := k.name + "/complete"
			if stream {
				name = k.name + "/stream"
			}
			b.Run(name, func(b *testing.B) {
				srv, _ := fake.NewServer(fake.Options{})
				defer srv.Close()
				p := k.new(srv.URL, "")
				req := ask("m")
				b.ReportAllocs()
				for b.Loop() {
					if !stream {
						if _, err := p.Complete(context.Background(), req); err != nil {
							b.Fatal(err)
						}
						continue
					}
					s, err := p.Stream(context.Background(), req)
					if err != nil {
						b.Fatal(err)
					}
					for {
						if _, err := s.Recv(); err != nil {
							if err != io.EOF {
								b.Fatal(err)
							}
							break
						}
					}
					s.Close()
				}
			})
		}
	}
}
