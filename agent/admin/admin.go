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
	"gantry/pipeline/costs"
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
	// LastDiskStall is the latest cluster log write slower than the
	// stall threshold, nil when none was.
	LastDiskStall() *cluster.DiskStall
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
	// NotServing says why the gateway has no configuration yet.
	NotServing func() string
	Timeouts   Timeouts
	// AlertBook keeps the agent's alerts between looks; New makes one
	// when nil.
	AlertBook *AlertBook
	// Compiles reports whether this agent's gateway could serve a
	// configuration, without serving it.
	Compiles func(*config.Config) error
	// Costs counts this agent's calls against what they were worth.
	Costs *costs.Table
}

// API serves the admin endpoints.
type API struct{ Deps }

// New returns the admin API over d.
func New(d Deps) *API {
	if d.AlertBook == nil {
		d.AlertBook = NewAlertBook(nil)
	}
	return &API{Deps: d}
}

// route is one endpoint: its pattern, the role its caller needs, and
// whether it reads or changes the replicated state.
type route struct {
	pattern string
	role    config.Role
	handle  func(*API, http.ResponseWriter, *http.Request)
	cluster bool
}

// routes is every admin endpoint.
var routes = []route{
	{"GET /admin/v1/traces", config.RoleViewer, (*API).listTraces, false},
	{"GET /admin/v1/traces/{id}", config.RoleViewer, (*API).getTrace, false},
	{"GET /admin/v1/feed", config.RoleViewer, (*API).feed, false},
	{"GET /admin/v1/overview", config.RoleViewer, (*API).overview, false},
	{"GET /admin/v1/budgets", config.RoleViewer, (*API).budgets, false},
	{"GET " + api.PathModels, config.RoleViewer, (*API).getModels, false},
	{"GET " + api.PathCosts, config.RoleViewer, (*API).getCosts, false},
	{"GET " + api.PathHealth, config.RoleViewer, (*API).health, false},
	{"GET " + api.PathAlerts, config.RoleViewer, (*API).getAlerts, false},
	{"GET " + api.PathCollections, config.RoleViewer, (*API).listCollections, true},
	{"GET " + api.PathCollections + "/{name}/documents", config.RoleViewer, (*API).listDocuments, true},
	{"POST " + api.PathCollections + "/{name}/documents", config.RoleOperator, (*API).ingest, true},
	{"DELETE " + api.PathCollections + "/{name}/documents/{id...}", config.RoleOperator, (*API).deleteDocument, true},

	{"GET " + api.PathStatus, config.RoleViewer, (*API).getStatus, true},
	{"GET " + api.PathMembers, config.RoleViewer, (*API).getMembers, true},
	{"DELETE " + api.PathMembers + "/{id}", config.RoleAdmin, (*API).removeMember, true},
	{"GET " + api.PathFeatures, config.RoleViewer, (*API).getFeatures, true},
	{"GET " + api.PathFeatures + "/{name}/releases", config.RoleViewer, (*API).getReleases, true},
	{"POST " + api.PathFeatures + "/{name}/releases", config.RoleOperator, (*API).createRelease, true},
	{"GET " + api.PathFeatures + "/{name}/diff", config.RoleViewer, (*API).getDiff, true},
	{"POST " + api.PathFeatures + "/{name}/labels", config.RoleOperator, (*API).moveLabel, true},
	{"GET " + api.PathReleaseStats, config.RoleViewer, (*API).getReleaseStats, true},
	{"GET " + api.PathAudit, config.RoleViewer, (*API).getAudit, true},
	{"GET " + api.PathKeys, config.RoleViewer, (*API).getKeys, true},
	{"POST " + api.PathKeys, config.RoleOperator, (*API).createKey, true},
	{"POST " + api.PathKeys + "/{name}/rotate", config.RoleOperator, (*API).rotateKey, true},
	{"POST " + api.PathKeys + "/{name}/revoke", config.RoleOperator, (*API).revokeKey, true},
	{"GET " + api.PathTokens, config.RoleAdmin, (*API).getTokens, true},
	{"POST " + api.PathTokens, config.RoleAdmin, (*API).createToken, true},
	{"POST " + api.PathTokens + "/{name}/revoke", config.RoleAdmin, (*API).revokeToken, true},
	{"GET " + api.PathConfig, config.RoleViewer, (*API).getConfig, true},
	{"PUT " + api.PathConfig, config.RoleAdmin, (*API).putConfig, true},
	{"POST " + api.PathDatasets, config.RoleOperator, (*API).pushDataset, true},
	{"GET " + api.PathDatasets, config.RoleViewer, (*API).getDatasets, true},
	{"GET " + api.PathDatasets + "/{name}", config.RoleViewer, (*API).getDataset, true},
	{"DELETE " + api.PathDatasets + "/{name}", config.RoleOperator, (*API).deleteDataset, true},
	{"POST " + api.PathDatasets + "/{name}/cases/from-trace", config.RoleOperator, (*API).caseFromTrace, true},
	{"POST " + api.PathRuns, config.RoleOperator, (*API).recordRun, true},
	{"GET " + api.PathRuns, config.RoleViewer, (*API).getRuns, true},
	{"GET " + api.PathRuns + "/{id}", config.RoleViewer, (*API).getRun, true},
	{"POST " + api.PathCompare, config.RoleOperator, (*API).compare, true},
	{"GET " + api.PathVerdicts, config.RoleViewer, (*API).getVerdicts, true},
	{"GET " + api.PathFeatures + "/{name}/gate", config.RoleViewer, (*API).getGate, true},
	{"GET " + api.PathFeatures + "/{name}/canary", config.RoleViewer, (*API).getCanary, true},

	// Go's profiler, so an operator can see where an agent spends its CPU
	// under real traffic.
	{"GET /debug/pprof/", config.RoleAdmin, handler(pprof.Index), false},
	{"GET /debug/pprof/profile", config.RoleAdmin, handler(pprof.Profile), false},
	{"GET /debug/pprof/heap", config.RoleAdmin, handler(pprof.Handler("heap").ServeHTTP), false},
	{"GET /debug/pprof/goroutine", config.RoleAdmin, handler(pprof.Handler("goroutine").ServeHTTP), false},
}

func handler(h http.HandlerFunc) func(*API, http.ResponseWriter, *http.Request) {
	return func(_ *API, w http.ResponseWriter, r *http.Request) { h(w, r) }
}

// served is the configuration the gateway serves, or nil after answering
// 503 with why it serves none yet.
func (a *API) served(w http.ResponseWriter) *config.Config {
	if snap := a.Gateway.Snapshot(); snap != nil {
		return snap.Config
	}
	httpio.APIError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "this agent is not serving yet: "+a.NotServing())
	return nil
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
