package admin

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/config"
)

func (a *API) getTokens(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.TokenList{Tokens: []api.Token{}}
	for _, t := range st.Tokens {
		out.Tokens = append(out.Tokens, api.Token{Name: t.Name, Role: string(t.Role), Revoked: t.Revoked})
	}
	httpio.JSON(w, http.StatusOK, out)
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	var in api.TokenCreate
	if err := decodeBody(w, r, api.MaxBodyBytes, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if err := in.Check(); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if slices.ContainsFunc(a.Cluster.State().Tokens, func(t command.Token) bool { return t.Name == in.Name }) {
		httpio.APIError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("token %q exists", in.Name))
		return
	}
	var b [24]byte
	rand.Read(b[:])
	secret := "gat_" + hex.EncodeToString(b[:])
	t := command.Token{Name: in.Name, Hash: config.HashKey(secret), Role: config.Role(in.Role)}
	res, err := a.apply(w, r, command.PutToken, command.TokenPayload{Token: t})
	if err != nil {
		writeErr(w, err)
		return
	}
	httpio.JSON(w, http.StatusCreated, api.TokenSecret{Token: api.Token{Name: t.Name, Role: in.Role}, Secret: secret, Index: res.Index})
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.apply(w, r, command.RevokeToken, command.Name{Name: name}); err != nil {
		writeErr(w, err)
		return
	}
	for _, t := range a.Cluster.State().Tokens {
		if t.Name == name {
			httpio.JSON(w, http.StatusOK, api.Token{Name: t.Name, Role: string(t.Role), Revoked: t.Revoked})
			return
		}
	}
	httpio.APIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no token %q", name))
}
