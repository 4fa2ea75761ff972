package admin

import (
	"context"
	"net/http"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/state"
)

// Default bounds of the admin API's waits on the cluster (Deps.Timeouts).
const (
	// DefaultWriteTimeout bounds one write, elections included; a
	// cluster without a leader for that long answers 503.
	DefaultWriteTimeout = 8 * time.Second
	// DefaultReadTimeout bounds a consistent read.
	DefaultReadTimeout = 5 * time.Second
)

// Timeouts bound the admin API's waits on the cluster; zero fields take
// the defaults.
type Timeouts struct {
	Write, Read time.Duration
}

func (a *API) writeTimeout() time.Duration {
	if a.Timeouts.Write > 0 {
		return a.Timeouts.Write
	}
	return DefaultWriteTimeout
}

func (a *API) readTimeout() time.Duration {
	if a.Timeouts.Read > 0 {
		return a.Timeouts.Read
	}
	return DefaultReadTimeout
}

// readState is the local state, or with ?consistent=1 one that includes
// every write acknowledged before the request.
func (a *API) readState(r *http.Request) (*state.State, error) {
	if v := r.URL.Query().Get("consistent"); v == "1" || v == "true" {
		ctx, cancel := context.WithTimeout(r.Context(), a.readTimeout())
		defer cancel()
		return a.Cluster.ConsistentState(ctx)
	}
	return a.Cluster.State(), nil
}

// latest reads the state linearizably before a change that depends on it;
// on failure it has written the error.
func (a *API) latest(w http.ResponseWriter, r *http.Request) (*state.State, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), a.readTimeout())
	defer cancel()
	st, err := a.Cluster.ConsistentState(ctx)
	if err != nil {
		writeErr(w, err)
		return nil, false
	}
	return st, true
}

// apply commits one command on behalf of the caller and waits until this
// agent's gateway has taken it in, so a read right after sees the change,
// whether it reads the state or what the gateway serves.
func (a *API) apply(r *http.Request, t command.Type, payload any) (state.Result, error) {
	env, err := command.New(t, payload)
	if err != nil {
		return state.Result{}, err
	}
	env.Actor = actor(r)
	ctx, cancel := context.WithTimeout(r.Context(), a.writeTimeout())
	defer cancel()
	res, err := a.Cluster.Apply(ctx, env)
	if err != nil {
		return res, err
	}
	return res, a.Cluster.WaitFollowed(ctx, res.Index)
}
