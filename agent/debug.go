package agent

import (
	"net/http"
	"net/http/pprof"

	"gantry/api"
)

// routeDebug serves Go's profiler under /debug/pprof/ to admins only, so an
// operator can see where an agent spends its CPU under real traffic.
func (s *Server) routeDebug(mux *http.ServeMux) {
	mux.Handle("GET /debug/pprof/", s.require(api.RoleAdmin, pprof.Index))
	mux.Handle("GET /debug/pprof/profile", s.require(api.RoleAdmin, pprof.Profile))
	mux.Handle("GET /debug/pprof/heap", s.require(api.RoleAdmin, pprof.Handler("heap").ServeHTTP))
	mux.Handle("GET /debug/pprof/goroutine", s.require(api.RoleAdmin, pprof.Handler("goroutine").ServeHTTP))
}
