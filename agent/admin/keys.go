package admin

import (
	"fmt"
	"net/http"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/config"
)

func apiKey(k config.Key) api.Key {
	h := config.HashFingerprint(k.Hash)
	return api.Key{Name: k.Name, Team: k.Team, Features: k.Features, Models: k.Models, Expires: k.Expires, Revoked: k.Revoked,
		RateLimit: k.RateLimit, MaxBudgetUSD: k.MaxBudgetUSD, HashPrefix: h}
}

func (a *API) getKeys(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.KeyList{Keys: []api.Key{}}
	for _, k := range st.Config.Keys {
		out.Keys = append(out.Keys, apiKey(k))
	}
	httpio.JSON(w, http.StatusOK, out)
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	var in api.KeyCreate
	if err := decodeBody(w, r, api.MaxBodyBytes, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if err := in.Check(); err != nil {
		badRequest(w, "%v", err)
		return
	}
	st, ok := a.latest(w, r)
	if !ok {
		return
	}
	if keyIndex(st.Config.Keys, in.Name) >= 0 {
		httpio.APIError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("key %q exists; rotate it to get a new secret", in.Name))
		return
	}
	secret, hash := config.NewKey()
	k := config.Key{Name: in.Name, Hash: hash, Team: in.Team, Features: in.Features, Models: in.Models, Expires: in.Expires,
		RateLimit: in.RateLimit, MaxBudgetUSD: in.MaxBudgetUSD}
	a.putKey(w, r, k, secret, http.StatusCreated)
}

func (a *API) putKey(w http.ResponseWriter, r *http.Request, k config.Key, secret string, status int) {
	res, err := a.apply(w, r, command.PutKey, command.Key{Key: k})
	if err != nil {
		writeErr(w, err)
		return
	}
	httpio.JSON(w, status, api.KeySecret{Key: apiKey(k), Secret: secret, Index: res.Index})
}

func (a *API) namedKey(w http.ResponseWriter, r *http.Request) (config.Key, bool) {
	st, ok := a.latest(w, r)
	if !ok {
		return config.Key{}, false
	}
	name := r.PathValue("name")
	i := keyIndex(st.Config.Keys, name)
	if i < 0 {
		httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no key %q", name))
		return config.Key{}, false
	}
	return st.Config.Keys[i], true
}

// rotateKey gives a key a new secret; the old one stops working as soon as
// each agent applies the change.
func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) {
	k, ok := a.namedKey(w, r)
	if !ok {
		return
	}
	if k.Revoked {
		httpio.APIError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("key %q is revoked; create a new key", k.Name))
		return
	}
	secret, hash := config.NewKey()
	k.Hash = hash
	a.putKey(w, r, k, secret, http.StatusOK)
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	k, ok := a.namedKey(w, r)
	if !ok {
		return
	}
	if _, err := a.apply(w, r, command.RevokeKey, command.Name{Name: k.Name}); err != nil {
		writeErr(w, err)
		return
	}
	k.Revoked = true
	httpio.JSON(w, http.StatusOK, apiKey(k))
}

func keyIndex(keys []config.Key, name string) int {
	for i, k := range keys {
		if k.Name == name {
			return i
		}
	}
	return -1
}
