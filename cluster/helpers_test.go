package cluster

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchServer is an admin server whose handler is set once the node exists.
type benchServer struct {
	srv *httptest.Server
	h   atomic.Pointer[http.Handler]
}

func newBenchServer() *benchServer {
	s := &benchServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := s.h.Load()
		if h == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	return s
}

func (s *benchServer) URL() string        { return s.srv.URL }
func (s *benchServer) set(h http.Handler) { s.h.Store(&h) }
func (s *benchServer) Close()             { s.srv.Close() }
