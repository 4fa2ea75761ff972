// Package admin is the agent's admin API: traces and the live feed, the
// overview, budgets, collections, and everything that reads or changes the
// cluster's replicated state. Every endpoint is in the one route table
// below with the role it needs; authentication happens in one place
// (auth.go), and handlers live one file per resource.
package admin

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster"
	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/pipeline"
	"gantry/pipeline/budget"
	"gantry/pipeline/trace"
)

// Cluster is what the admin API needs of the agent's cluster side: the
// replicated state, its writes and membership, and how far this agent's
// gateway has followed it.
type Cluster interface {
	ID() string
	Leader() string
	Status() cluster.Status
	Members(ctx context.Context) ([]cluster.Member, error)
	RemoveMember(ctx context.Context, id string) error
	State() *state.State
	ConsistentState(ctx context.Context) (*state.State, error)
	Apply(ctx context.Context, env command.Envelope) (state.Result, error)
	// Served is the state index the gateway's configuration was compiled
	// from.
	Served() uint64
	// WaitFollowed returns once this agent's gateway has taken in the
	// state at index, whether it swapped, kept or refused its
	// configuration.
	WaitFollowed(ctx context.Context, index uint64) error
}

// Deps is what the admin API reads and changes; the agent wires it.
type Deps struct {
	NodeID  string
	Gateway *pipeline.Gateway
	Traces  *trace.Store
	// Documents is nil when the agent runs without a cluster node.
	Documents Documents
	// Ledger is this agent's own budget ledger.
	Ledger *budget.Local
	// Burn is the cluster's burn rate per hour of a shared budget in a
	// period, ok false until the agent has watched it long enough; nil
	// when this agent enforces its budgets alone.
	Burn func(budget, period string) (perHour float64, ok bool)
	// Cluster is nil when the agent runs without a cluster node; the
	// endpoints of the replicated state then answer 503.
	Cluster Cluster
	// Tokens are the agent's own admin tokens (the dev token and
	// GANTRY_ADMIN_TOKENS), accepted besides the replicated ones.
	Tokens []LocalToken
	// Stopping is closed when the agent starts shutting down; live feeds
	// end then.
	Stopping      <-chan struct{}
	TraceMaxCount int
	// StatsInterval is how often agents commit per-release counters.
	StatsInterval time.Duration
	Timeouts      Timeouts
	// Compiles reports whether this agent's gateway could serve a
	// configuration, without serving it.
	Compiles func(*config.Config) error
}

// API serves the admin endpoints.
type API struct{ Deps }

// New returns the admin API over d.
func New(d Deps) *API { return &API{Deps: d} }

// route is one endpoint: its pattern, the role its caller needs, and
// whether it reads or changes the replicated state.
type route struct {
	pattern string
	role    string
	handle  func(*API, http.ResponseWriter, *http.Request)
	cluster bool
}

// routes is every admin endpoint.
var routes = []route{
	{"GET /admin/v1/traces", api.RoleViewer, (*API).listTraces, false},
	{"GET /admin/v1/traces/{id}", api.RoleViewer, (*API).getTrace, false},
	{"GET /admin/v1/feed", api.RoleViewer, (*API).feed, false},
	{"GET /admin/v1/overview", api.RoleViewer, (*API).overview, false},
	{"GET /admin/v1/budgets", api.RoleViewer, (*API).budgets, false},
	{"GET " + api.PathCollections, api.RoleViewer, (*API).listCollections, true},
	{"GET " + api.PathCollections + "/{name}/documents", api.RoleViewer, (*API).listDocuments, true},
	{"POST " + api.PathCollections + "/{name}/documents", api.RoleOperator, (*API).ingest, true},
	{"DELETE " + api.PathCollections + "/{name}/documents/{id...}", api.RoleOperator, (*API).deleteDocument, true},

	{"GET " + api.PathStatus, api.RoleViewer, (*API).getStatus, true},
	{"GET " + api.PathMembers, api.RoleViewer, (*API).getMembers, true},
	{"DELETE " + api.PathMembers + "/{id}", api.RoleAdmin, (*API).removeMember, true},
	{"GET " + api.PathFeatures, api.RoleViewer, (*API).getFeatures, true},
	{"GET " + api.PathFeatures + "/{name}/releases", api.RoleViewer, (*API).getReleases, true},
	{"POST " + api.PathFeatures + "/{name}/releases", api.RoleOperator, (*API).createRelease, true},
	{"GET " + api.PathFeatures + "/{name}/diff", api.RoleViewer, (*API).getDiff, true},
	{"POST " + api.PathFeatures + "/{name}/labels", api.RoleOperator, (*API).moveLabel, true},
	{"GET " + api.PathReleaseStats, api.RoleViewer, (*API).getReleaseStats, true},
	{"GET " + api.PathAudit, api.RoleViewer, (*API).getAudit, true},
	{"GET " + api.PathKeys, api.RoleViewer, (*API).getKeys, true},
	{"POST " + api.PathKeys, api.RoleOperator, (*API).createKey, true},
	{"POST " + api.PathKeys + "/{name}/rotate", api.RoleOperator, (*API).rotateKey, true},
	{"POST " + api.PathKeys + "/{name}/revoke", api.RoleOperator, (*API).revokeKey, true},
	{"GET " + api.PathTokens, api.RoleAdmin, (*API).getTokens, true},
	{"POST " + api.PathTokens, api.RoleAdmin, (*API).createToken, true},
	{"POST " + api.PathTokens + "/{name}/revoke", api.RoleAdmin, (*API).revokeToken, true},
	{"GET " + api.PathConfig, api.RoleViewer, (*API).getConfig, true},
	{"PUT " + api.PathConfig, api.RoleAdmin, (*API).putConfig, true},

	// Go's profiler, so an operator can see where an agent spends its CPU
	// under real traffic.
	{"GET /debug/pprof/", api.RoleAdmin, handler(pprof.Index), false},
	{"GET /debug/pprof/profile", api.RoleAdmin, handler(pprof.Profile), false},
	{"GET /debug/pprof/heap", api.RoleAdmin, handler(pprof.Handler("heap").ServeHTTP), false},
	{"GET /debug/pprof/goroutine", api.RoleAdmin, handler(pprof.Handler("goroutine").ServeHTTP), false},
}

func handler(h http.HandlerFunc) func(*API, http.ResponseWriter, *http.Request) {
	return func(_ *API, w http.ResponseWriter, r *http.Request) { h(w, r) }
}

// Route mounts every admin endpoint on mux behind authentication.
func (a *API) Route(mux *http.ServeMux) {
	for _, rt := range routes {
		mux.Handle(rt.pattern, a.require(rt.role, func(w http.ResponseWriter, r *http.Request) {
			if rt.cluster && a.Cluster == nil {
				httpio.APIError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "this agent runs without a cluster node")
				return
			}
			rt.handle(a, w, r)
		}))
	}
}
