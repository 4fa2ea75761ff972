package httpio

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A client that stops reading a stream loses it after the stall bound:
// the handler's write fails instead of blocking for ever. A client that
// reads slowly but steadily keeps it, and the connection serves the next
// request afterwards.
func TestStreamToAStalledClientEnds(t *testing.T) {
	const stall = 300 * time.Millisecond
	ended := make(chan time.Duration, 1)
	event := strings.Repeat("x", 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sse := NewSSE(w)
		sse.Stall = stall
		start := time.Now()
		for i := 0; i < 100_000; i++ {
			if err := sse.Raw([]byte(event)); err != nil {
				ended <- time.Since(start)
				return
			}
		}
		ended <- -1
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing more.
	select {
	case took := <-ended:
		if took < 0 {
			t.Fatal("the handler wrote 6 GiB to a client that reads nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the stream to a stalled client still runs after 10s; its bound is %s", stall)
	}
}

func TestStreamDeadlineIsLiftedAfterEachEvent(t *testing.T) {
	const stall = 200 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sse := NewSSE(w)
		sse.Stall = stall
		for range 3 {
			if err := sse.Raw([]byte("tick")); err != nil {
				return
			}
			time.Sleep(2 * stall)
		}
		sse.Done()
	}))
	defer srv.Close()
	// Two streams on one connection, each longer than the bound between
	// events: neither is cut.
	for i := range 2 {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b := new(strings.Builder)
		_, err = bufio.NewReader(resp.Body).WriteTo(b)
		resp.Body.Close()
		if err != nil || strings.Count(b.String(), "tick") != 3 || !strings.Contains(b.String(), "[DONE]") {
			t.Fatalf("stream %d: %v\n%s", i+1, err, b)
		}
	}
}

// BenchmarkSSEEvent measures one event of a chat stream (about 200 bytes)
// written and flushed to a client reading over loopback, with and without
// the stall bound, whose deadline is set and lifted for every event.
func BenchmarkSSEEvent(b *testing.B) {
	event := []byte(`{"id":"chatcmpl-0123456789abcdef","object":"chat.completion.chunk","created":1796283816,"model":"sim-small","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}`)
	for _, bc := range []struct {
		name  string
		stall time.Duration
	}{{"no bound", 0}, {"stall bound", DefaultStall}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sse := NewSSE(w)
				sse.Stall = bc.stall
				for range b.N {
					if err := sse.Raw(event); err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			b.ReportAllocs()
			b.ResetTimer()
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
}
