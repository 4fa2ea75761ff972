package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/config"
)

// LocalToken is an admin token the agent was started with rather than one
// of the replicated state's; it always has the admin role.
type LocalToken struct {
	Name  string
	Token string
}

// principal is who made an admin request.
type principal struct {
	name string
	role config.Role
}

type principalKey struct{}

// callerRole is the role of the request's caller, once authenticated.
func callerRole(r *http.Request) config.Role {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p.role
}

// actor names the caller of an admin request for the audit log.
func actor(r *http.Request) string {
	name := "unknown"
	if p, ok := r.Context().Value(principalKey{}).(principal); ok {
		name = "token:" + p.name
	}
	// The console names the person at the keyboard (an SSH user and key, or
	// a local user). The token is what authenticates; the name is what the
	// client says, kept so operators sharing a token can be told apart.
	if op := operatorName(r.Header.Get("X-Gantry-Operator")); op != "" {
		name += " (" + op + ")"
	}
	return name
}

// operatorName keeps a client's operator header printable and short.
func operatorName(s string) string {
	const maxLen = 128
	b := make([]byte, 0, min(len(s), maxLen))
	for i := 0; i < len(s) && len(b) < maxLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '(' && c != ')' {
			b = append(b, c)
		}
	}
	return strings.TrimSpace(string(b))
}

// authenticate finds the admin token: one of the agent's own (admins) or
// one of the replicated state's. Every candidate is compared in constant
// time.
func (a *API) authenticate(tok string) (principal, bool) {
	if tok == "" {
		return principal{}, false
	}
	var found principal
	ok := 0
	sum := sha256.Sum256([]byte(tok))
	for _, t := range a.Tokens {
		if t.Token == "" {
			continue
		}
		want := sha256.Sum256([]byte(t.Token))
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			found, ok = principal{name: t.Name, role: config.RoleAdmin}, 1
		}
	}
	if a.Cluster != nil {
		hash := []byte(config.HashKey(tok))
		for _, t := range a.Cluster.State().Tokens {
			if subtle.ConstantTimeCompare(hash, []byte(t.Hash)) == 1 && !t.Revoked && ok == 0 {
				found, ok = principal{name: t.Name, role: t.Role}, 1
			}
		}
	}
	return found, ok == 1
}

// require wraps an admin endpoint: the caller's token must have at least
// the role want. It is the one place the admin API authenticates.
func (a *API) require(want config.Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.authenticate(httpio.Bearer(r))
		if !ok {
			httpio.APIError(w, http.StatusUnauthorized, api.CodeUnauthorized, "an admin token is required: 'Authorization: Bearer <token>'")
			return
		}
		if !p.role.Allows(want) {
			httpio.APIError(w, http.StatusForbidden, api.CodeForbidden, fmt.Sprintf("token %s has the role %s; this needs %s", p.name, p.role, want))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
