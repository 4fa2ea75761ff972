package admin

import (
	"cmp"
	"context"
	"net/http"
	"strings"
	"time"

	"gantry/api"
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
// whether it reads the state or what the gateway serves. With ?wait=all it
// then waits, at most WaitAllTimeout, until every healthy member's gateway
// serves it, and names in api.HeaderServedBy and api.HeaderNotServed who
// did and who did not.
func (a *API) apply(w http.ResponseWriter, r *http.Request, t command.Type, payload any) (state.Result, error) {
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
	if err := a.Cluster.WaitFollowed(ctx, res.Index); err != nil {
		return res, err
	}
	if r.URL.Query().Get("wait") == "all" {
		served, not := a.waitAll(r.Context(), res.Index)
		w.Header().Set(api.HeaderServedBy, strings.Join(served, ","))
		if len(not) > 0 {
			w.Header().Set(api.HeaderNotServed, strings.Join(not, ", "))
		}
	}
	return res, nil
}

// WaitAllTimeout bounds how long a write with ?wait=all waits for the
// other members to serve it.
const WaitAllTimeout = 10 * time.Second

// waitAll waits until every member whose gateway serves the cluster's
// configuration serves index, at most WaitAllTimeout. It returns the
// members that do and, for the others, who and why not: not yet within
// the wait, unreachable, or not serving the cluster's configuration.
func (a *API) waitAll(ctx context.Context, index uint64) (served, not []string) {
	ctx, cancel := context.WithTimeout(ctx, WaitAllTimeout)
	defer cancel()
	for {
		served, not = served[:0], not[:0]
		waiting := false
		ms, err := a.Cluster.Members(ctx)
		if err != nil {
			return nil, []string{"members: " + err.Error()}
		}
		for _, m := range ms {
			switch st := m.Status; {
			case st == nil:
				not = append(not, m.ID+" (unreachable: "+m.Error+")")
			case st.ServingIndex >= index:
				served = append(served, m.ID)
			case st.Halted != "" || st.Unserved != "":
				not = append(not, m.ID+" (not serving the cluster's configuration: "+cmp.Or(st.Halted, st.Unserved)+")")
			default:
				waiting = true
				not = append(not, m.ID+" (not within "+WaitAllTimeout.String()+")")
			}
		}
		if !waiting {
			return served, not
		}
		select {
		case <-ctx.Done():
			return served, not
		case <-time.After(20 * time.Millisecond):
		}
	}
}
