package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"gantry/api"
	"gantry/cluster"
	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/pipeline/release"
)

// writeTimeout bounds one write of the admin API, elections included; a
// cluster without a leader for that long answers 503.
var writeTimeout = 8 * time.Second

// readTimeout bounds a consistent read.
var readTimeout = 5 * time.Second

// routeCluster mounts the cluster API and the admin endpoints that read and
// change the replicated state.
func (s *Server) routeCluster(mux *http.ServeMux) {
	if s.cl != nil {
		mux.Handle(cluster.PathPrefix, s.cl.node.Handler())
	}
	viewer := func(h http.HandlerFunc) http.Handler { return s.require(api.RoleViewer, s.needCluster(h)) }
	operator := func(h http.HandlerFunc) http.Handler { return s.require(api.RoleOperator, s.needCluster(h)) }
	admin := func(h http.HandlerFunc) http.Handler { return s.require(api.RoleAdmin, s.needCluster(h)) }

	mux.Handle("GET "+api.PathStatus, viewer(s.getStatus))
	mux.Handle("GET "+api.PathMembers, viewer(s.getMembers))
	mux.Handle("DELETE "+api.PathMembers+"/{id}", admin(s.removeMember))
	mux.Handle("GET "+api.PathFeatures, viewer(s.getFeatures))
	mux.Handle("GET "+api.PathFeatures+"/{name}/releases", viewer(s.getReleases))
	mux.Handle("POST "+api.PathFeatures+"/{name}/releases", operator(s.createRelease))
	mux.Handle("GET "+api.PathFeatures+"/{name}/diff", viewer(s.getDiff))
	mux.Handle("GET "+api.PathReleaseStats, viewer(s.getReleaseStats))
	mux.Handle("POST "+api.PathFeatures+"/{name}/labels", operator(s.moveLabel))
	mux.Handle("GET "+api.PathAudit, viewer(s.getAudit))
	mux.Handle("GET "+api.PathKeys, viewer(s.getKeys))
	mux.Handle("POST "+api.PathKeys, operator(s.createKey))
	mux.Handle("POST "+api.PathKeys+"/{name}/rotate", operator(s.rotateKey))
	mux.Handle("POST "+api.PathKeys+"/{name}/revoke", operator(s.revokeKey))
	mux.Handle("GET "+api.PathTokens, admin(s.getTokens))
	mux.Handle("POST "+api.PathTokens, admin(s.createToken))
	mux.Handle("POST "+api.PathTokens+"/{name}/revoke", admin(s.revokeToken))
	mux.Handle("GET "+api.PathConfig, viewer(s.getConfig))
	mux.Handle("PUT "+api.PathConfig, admin(s.putConfig))
}

func (s *Server) needCluster(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cl == nil {
			writeAPIError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "this agent runs without a cluster node")
			return
		}
		h(w, r)
	}
}

// writeAPIError writes the admin API's one error shape.
func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.ErrorResponse{Error: api.Error{Code: code, Message: msg}})
}

// writeErr maps an error of the cluster, the state or a check to the admin
// API's status and code: the one place that does.
func writeErr(w http.ResponseWriter, err error) {
	status := cluster.HTTPStatus(err)
	var ve config.ValidationError
	var p config.Problem
	if errors.As(err, &ve) || errors.As(err, &p) {
		status = http.StatusBadRequest
	}
	code := api.CodeInternal
	msg := err.Error()
	switch status {
	case http.StatusBadRequest:
		code = api.CodeBadRequest
	case http.StatusNotFound:
		code = api.CodeNotFound
	case http.StatusConflict:
		code = api.CodeConflict
	case http.StatusPreconditionFailed:
		code = api.CodeStale
	case http.StatusForbidden:
		code = api.CodeForbidden
	case http.StatusGatewayTimeout:
		code = api.CodeTimeout
	case http.StatusServiceUnavailable:
		code = api.CodeUnavailable
		if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrNotLeader) {
			msg = "the cluster has no leader, so it cannot accept changes now (a majority of voters must be up); the gateway keeps serving its last configuration: " + msg
		}
	}
	writeAPIError(w, status, code, msg)
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeAPIError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf(format, args...))
}

// readState is the local state, or with ?consistent=1 one that includes
// every write acknowledged before the request.
func (s *Server) readState(r *http.Request) (*state.State, error) {
	if v := r.URL.Query().Get("consistent"); v == "1" || v == "true" {
		ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
		defer cancel()
		return s.cl.node.ConsistentState(ctx)
	}
	return s.cl.node.State(), nil
}

// latest reads the state linearizably before a change that depends on it;
// on failure it has written the error.
func (s *Server) latest(w http.ResponseWriter, r *http.Request) (*state.State, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	st, err := s.cl.node.ConsistentState(ctx)
	if err != nil {
		writeErr(w, err)
		return nil, false
	}
	return st, true
}

// apply commits one command on behalf of the caller and waits until this
// agent's gateway has taken it in, so a read right after sees the change,
// whether it reads the state or what the gateway serves.
func (s *Server) apply(r *http.Request, t command.Type, payload any) (state.Result, error) {
	env, err := command.New(t, payload)
	if err != nil {
		return state.Result{}, err
	}
	env.Actor = actor(r)
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	res, err := s.cl.node.Apply(ctx, env)
	if err != nil {
		return res, err
	}
	return res, s.waitFollowed(ctx, res.Index)
}

func (s *Server) waitFollowed(ctx context.Context, index uint64) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for s.cl.followed.Load() < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the change committed at index %d but this agent has not taken it in yet: %w", index, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, command.MaxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	st := s.cl.node.Status()
	writeJSON(w, http.StatusOK, api.Status{
		ID: st.ID, RaftAddr: st.RaftAddr, HTTPAddr: st.HTTPAddr, Role: st.RaftState, Leader: st.Leader, Term: st.Term,
		LastIndex: st.LastLogIndex, CommitIndex: st.CommitIndex, SnapshotIndex: st.SnapshotIndex, StateIndex: st.StateIndex, StateHash: st.StateHash,
		LastContact: st.LastContact, Halted: st.Halted, ServingIndex: s.cl.served.Load(), Unserved: st.Unserved,
	})
}

func (s *Server) getMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := s.cl.node.Members(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.Members{Leader: s.cl.node.Leader(), Members: []api.Member{}}
	for _, m := range ms {
		am := api.Member{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: m.Voter, Role: api.RoleUnknown, Error: m.Error}
		if st := m.Status; st != nil {
			am.Role = st.RaftState
			am.LastContact = st.LastContact
			am.LastIndex = st.LastLogIndex
			am.AppliedIndex = st.StateIndex
			am.Healthy = st.Halted == "" && (st.RaftState == api.RoleLeader || st.Leader != "")
			switch {
			case st.Halted != "":
				am.Error = "state machine halted: " + st.Halted
			case st.Unserved != "":
				am.Healthy, am.Error = false, st.Unserved
			}
			if m.ID == s.cl.node.ID() {
				out.Term = st.Term
			}
		}
		out.Members = append(out.Members, am)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	if err := s.cl.node.RemoveMember(ctx, id); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Removed{ID: id})
}

// releaseOrigins finds who created each release and when, from the audit
// log; releases older than the log show neither.
func releaseOrigins(st *state.State) map[string]state.AuditRecord {
	out := map[string]state.AuditRecord{}
	for _, a := range st.Audit() {
		if a.Command == command.CreateRelease {
			out[strings.TrimPrefix(a.Target, "release/")] = a
		}
	}
	return out
}

func apiFeature(st *state.State, f config.Feature, spec bool, origins map[string]state.AuditRecord) api.Feature {
	out := api.Feature{Name: f.Name, Description: f.Description, Labels: f.Labels, Releases: []api.Release{}}
	for _, r := range f.Releases {
		id := config.ReleaseID(f.Name, r.Version)
		ar := api.Release{Version: r.Version, ID: id, Hash: r.Hash()}
		if a, ok := origins[id]; ok {
			ar.Created, ar.CreatedBy = a.Time, a.Actor
		}
		if spec {
			rc := r
			ar.Spec = &rc
		}
		out.Releases = append(out.Releases, ar)
	}
	for _, c := range st.LabelHistory[f.Name] {
		out.History = append(out.History, apiChange(c))
	}
	return out
}

func apiChange(c state.LabelChange) api.LabelChange {
	return api.LabelChange{Time: c.Time, Actor: c.Actor, Action: c.Action, Label: c.Label, From: c.From, To: c.To, Weight: c.Weight, Reason: c.Reason}
}

func (s *Server) getFeatures(w http.ResponseWriter, r *http.Request) {
	st, err := s.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	origins := releaseOrigins(st)
	out := api.Features{Features: []api.Feature{}}
	for _, f := range st.Config.Features {
		out.Features = append(out.Features, apiFeature(st, f, false, origins))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) feature(w http.ResponseWriter, r *http.Request) (*state.State, config.Feature, bool) {
	st, err := s.readState(r)
	if err != nil {
		writeErr(w, err)
		return nil, config.Feature{}, false
	}
	name := r.PathValue("name")
	f, ok := st.Feature(name)
	if !ok {
		writeAPIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no feature %q", name))
		return nil, config.Feature{}, false
	}
	return st, f, true
}

func (s *Server) getReleases(w http.ResponseWriter, r *http.Request) {
	st, f, ok := s.feature(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, apiFeature(st, f, true, releaseOrigins(st)))
}

// createRelease serves POST /admin/v1/features/{name}/releases: the body is
// a release (config.Release as JSON); version 0 or absent takes the next
// number. The release is checked in full (references, template, schema,
// tools) before it is proposed, and every problem is named by its path.
func (s *Server) createRelease(w http.ResponseWriter, r *http.Request) {
	var rel config.Release
	if err := decodeBody(r, &rel); err != nil {
		badRequest(w, "%v", err)
		return
	}
	st, f, ok := s.feature(w, r)
	if !ok {
		return
	}
	next := 1
	for _, x := range f.Releases {
		next = max(next, x.Version+1)
	}
	if rel.Version == 0 {
		rel.Version = next
	} else if rel.Version != next {
		writeAPIError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("release v%d requested, the next version of %s is v%d; releases are immutable", rel.Version, f.Name, next))
		return
	}
	pinned, err := release.Pin(&st.Config, rel)
	if err != nil {
		badRequest(w, "%s: %v", config.ReleaseID(f.Name, rel.Version), err)
		return
	}
	if err := release.Check(&st.Config, f.Name, pinned); err != nil {
		badRequest(w, "invalid release: %s", problems(err))
		return
	}
	res, err := s.apply(r, command.CreateRelease, command.Release{Feature: f.Name, Release: pinned})
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.Release{Version: res.Version, ID: config.ReleaseID(f.Name, res.Version), Hash: res.Hash, CreatedBy: actor(r)}
	if a, ok := releaseOrigins(s.cl.node.State())[out.ID]; ok {
		out.Created = a.Time
	}
	pinned.Version = res.Version
	out.Spec = &pinned
	writeJSON(w, http.StatusCreated, out)
}

// problems joins a validation error's problems on one line each.
func problems(err error) string {
	var ve config.ValidationError
	if errors.As(err, &ve) {
		msgs := make([]string, len(ve))
		for i, p := range ve {
			msgs[i] = p.Error()
		}
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}

func (s *Server) getDiff(w http.ResponseWriter, r *http.Request) {
	st, f, ok := s.feature(w, r)
	if !ok {
		return
	}
	_ = st
	var vs [2]int
	for i, p := range []string{"a", "b"} {
		n, err := strconv.Atoi(r.URL.Query().Get(p))
		if err != nil || n < 1 {
			badRequest(w, "%s: want a release version, got %q", p, r.URL.Query().Get(p))
			return
		}
		vs[i] = n
	}
	a, okA := f.Release(vs[0])
	b, okB := f.Release(vs[1])
	if !okA || !okB {
		missing := vs[0]
		if okA {
			missing = vs[1]
		}
		writeAPIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no release %s", config.ReleaseID(f.Name, missing)))
		return
	}
	writeJSON(w, http.StatusOK, diffReleases(f.Name, a, b))
}

// diffReleases turns release.Diff's changes into the admin API's shape:
// text fields line by line, other fields as their old and new values.
func diffReleases(feature string, a, b config.Release) api.Diff {
	d := api.Diff{Feature: feature, A: a.Version, B: b.Version, AHash: a.Hash(), BHash: b.Hash(), Fields: []api.FieldDiff{}}
	for _, c := range release.Diff(a, b) {
		fd := api.FieldDiff{Field: c.Path}
		if c.Lines != nil {
			for _, l := range c.Lines {
				fd.Lines = append(fd.Lines, api.DiffLine{Op: string(l.Op), Text: l.Text})
			}
		} else {
			if c.Kind != release.Added {
				fd.Lines = append(fd.Lines, api.DiffLine{Op: api.DiffRemove, Text: c.Old})
			}
			if c.Kind != release.Removed {
				fd.Lines = append(fd.Lines, api.DiffLine{Op: api.DiffAdd, Text: c.New})
			}
		}
		d.Fields = append(d.Fields, fd)
	}
	return d
}

// moveLabel serves POST /admin/v1/features/{name}/labels. From, when set,
// must match where the label points when the move applies, so two
// operators do not undo each other blindly; the state machine checks it in
// the same step as the move.
func (s *Server) moveLabel(w http.ResponseWriter, r *http.Request) {
	var m api.LabelMove
	if err := decodeBody(r, &m); err != nil {
		badRequest(w, "%v", err)
		return
	}
	name := r.PathValue("name")
	if m.Feature == "" {
		m.Feature = name
	}
	if m.Label == "" {
		m.Label = api.LabelProduction
		if m.Action == api.ActionCanary {
			m.Label = api.LabelCanary
		}
	}
	if m.Feature != name {
		badRequest(w, "feature: the body names %q, the path %q", m.Feature, name)
		return
	}
	if err := m.Check(); err != nil {
		badRequest(w, "%v", err)
		return
	}
	st, ok := s.latest(w, r)
	if !ok {
		return
	}
	f, ok := st.Feature(name)
	if !ok {
		writeAPIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no feature %q", name))
		return
	}
	if m.Action == api.ActionPromote && m.To == f.Labels.Production {
		writeAPIError(w, http.StatusUnprocessableEntity, api.CodeInvalidState, fmt.Sprintf("v%d is already production of %s", m.To, name))
		return
	}
	cmd := command.Label{Feature: name, Action: m.Action, Version: m.To, Weight: m.Weight, Reason: m.Reason}
	if m.From != 0 {
		cmd.From = &m.From
	}
	res, err := s.apply(r, command.MoveLabel, cmd)
	if err != nil {
		writeErr(w, err)
		return
	}
	now := s.cl.node.State()
	out := api.LabelMoveResult{Feature: name, Index: res.Index}
	if nf, ok := now.Feature(name); ok {
		out.Labels = nf.Labels
	}
	for _, c := range now.LabelHistory[name] {
		if c.Index == res.Index {
			out.Change = apiChange(c)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// getAudit serves the audit log newest first; cursor is the Next of the
// previous page, limit 1..1000 [100].
func (s *Server) getAudit(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > state.MaxAudit {
			badRequest(w, "limit: want 1..%d, got %q", state.MaxAudit, v)
			return
		}
		limit = n
	}
	var before uint64
	if v := r.URL.Query().Get("cursor"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			badRequest(w, "cursor: want the next value of the previous page, got %q", v)
			return
		}
		before = n
	}
	st, err := s.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	recs := st.Audit()
	out := api.AuditList{Entries: []api.AuditEntry{}}
	for i := len(recs) - 1; i >= 0; i-- {
		a := recs[i]
		if before != 0 && a.Seq >= before {
			continue
		}
		if len(out.Entries) == limit {
			out.Next = strconv.FormatUint(out.Entries[len(out.Entries)-1].Seq, 10)
			break
		}
		out.Entries = append(out.Entries, api.AuditEntry{Seq: a.Seq, Index: a.Index, Time: a.Time, Actor: a.Actor, RequestID: a.RequestID,
			Command: string(a.Command), Target: a.Target, Before: a.Before, After: a.After, Reason: a.Reason})
	}
	writeJSON(w, http.StatusOK, out)
}

func apiKey(k config.Key) api.Key {
	h := strings.TrimPrefix(k.Hash, "sha256:")
	if len(h) > 8 {
		h = h[:8]
	}
	return api.Key{Name: k.Name, Team: k.Team, Features: k.Features, Models: k.Models, Expires: k.Expires, Revoked: k.Revoked,
		RateLimit: k.RateLimit, MaxBudgetUSD: k.MaxBudgetUSD, HashPrefix: h}
}

func (s *Server) getKeys(w http.ResponseWriter, r *http.Request) {
	st, err := s.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.KeyList{Keys: []api.Key{}}
	for _, k := range st.Config.Keys {
		out.Keys = append(out.Keys, apiKey(k))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var in api.KeyCreate
	if err := decodeBody(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if in.Name == "" {
		badRequest(w, "name: a key needs a name")
		return
	}
	st, ok := s.latest(w, r)
	if !ok {
		return
	}
	if keyIndex(st.Config.Keys, in.Name) >= 0 {
		writeAPIError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("key %q exists; rotate it to get a new secret", in.Name))
		return
	}
	secret, hash := config.NewKey()
	k := config.Key{Name: in.Name, Hash: hash, Team: in.Team, Features: in.Features, Models: in.Models, Expires: in.Expires,
		RateLimit: in.RateLimit, MaxBudgetUSD: in.MaxBudgetUSD}
	s.putKey(w, r, k, secret, http.StatusCreated)
}

func (s *Server) putKey(w http.ResponseWriter, r *http.Request, k config.Key, secret string, status int) {
	res, err := s.apply(r, command.PutKey, command.Key{Key: k})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, status, api.KeySecret{Key: apiKey(k), Secret: secret, Index: res.Index})
}

func (s *Server) namedKey(w http.ResponseWriter, r *http.Request) (config.Key, bool) {
	st, ok := s.latest(w, r)
	if !ok {
		return config.Key{}, false
	}
	name := r.PathValue("name")
	i := keyIndex(st.Config.Keys, name)
	if i < 0 {
		writeAPIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no key %q", name))
		return config.Key{}, false
	}
	return st.Config.Keys[i], true
}

// rotateKey gives a key a new secret; the old one stops working as soon as
// each agent applies the change.
func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) {
	k, ok := s.namedKey(w, r)
	if !ok {
		return
	}
	if k.Revoked {
		writeAPIError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("key %q is revoked; create a new key", k.Name))
		return
	}
	secret, hash := config.NewKey()
	k.Hash = hash
	s.putKey(w, r, k, secret, http.StatusOK)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	k, ok := s.namedKey(w, r)
	if !ok {
		return
	}
	if _, err := s.apply(r, command.RevokeKey, command.Name{Name: k.Name}); err != nil {
		writeErr(w, err)
		return
	}
	k.Revoked = true
	writeJSON(w, http.StatusOK, apiKey(k))
}

func (s *Server) getTokens(w http.ResponseWriter, r *http.Request) {
	st, err := s.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.TokenList{Tokens: []api.Token{}}
	for _, t := range st.Tokens {
		out.Tokens = append(out.Tokens, api.Token{Name: t.Name, Role: string(t.Role), Revoked: t.Revoked})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var in api.TokenCreate
	if err := decodeBody(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if !command.Role(in.Role).Valid() {
		badRequest(w, "role: want %s, %s or %s, got %q", api.RoleViewer, api.RoleOperator, api.RoleAdmin, in.Role)
		return
	}
	if slices.ContainsFunc(s.cl.node.State().Tokens, func(t command.Token) bool { return t.Name == in.Name }) {
		writeAPIError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("token %q exists", in.Name))
		return
	}
	var b [24]byte
	rand.Read(b[:])
	secret := "gat_" + hex.EncodeToString(b[:])
	t := command.Token{Name: in.Name, Hash: config.HashKey(secret), Role: command.Role(in.Role)}
	res, err := s.apply(r, command.PutToken, command.TokenPayload{Token: t})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.TokenSecret{Token: api.Token{Name: t.Name, Role: in.Role}, Secret: secret, Index: res.Index})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.apply(r, command.RevokeToken, command.Name{Name: name}); err != nil {
		writeErr(w, err)
		return
	}
	for _, t := range s.cl.node.State().Tokens {
		if t.Name == name {
			writeJSON(w, http.StatusOK, api.Token{Name: t.Name, Role: string(t.Role), Revoked: t.Revoked})
			return
		}
	}
	writeAPIError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no token %q", name))
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	st, err := s.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("ETag", api.ConfigETag(st.ConfigIndex))
	cfg := st.Config
	if p, _ := r.Context().Value(principalKey{}).(principal); !p.role.Allows(command.RoleAdmin) {
		cfg.Keys = withoutHashes(cfg.Keys)
	}
	if r.URL.Query().Get("format") == "yaml" {
		b, err := yaml.Marshal(cfg)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(b)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

// withoutHashes copies keys with their hashes blanked. Only admins, who
// may write the configuration back, need them; a hash is not a key, but
// nobody else has a use for it.
func withoutHashes(keys []config.Key) []config.Key {
	out := make([]config.Key, len(keys))
	for i, k := range keys {
		k.Hash = ""
		out[i] = k
	}
	return out
}

// putConfig serves PUT /admin/v1/config: a whole configuration (YAML or
// JSON) replaces the current one as one change. It is validated, its
// releases compiled, and the command tried on the current state before it
// is proposed; ?dry_run=1 stops there and only reports the changes.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, config.MaxFileBytes+1))
	if err != nil {
		badRequest(w, "request body: %v", err)
		return
	}
	cfg, err := config.Parse("config", body)
	if err != nil {
		badRequest(w, "invalid configuration: %s", problemsOf(err))
		return
	}
	if err := checkReleases(cfg); err != nil {
		badRequest(w, "invalid configuration: %s", problems(err))
		return
	}
	p := command.Config{Config: *cfg}
	if v := r.Header.Get("If-Match"); v != "" {
		n, err := api.ParseConfigETag(v)
		if err != nil {
			badRequest(w, "%v", err)
			return
		}
		p.IfIndex = &n
	}
	st, ok := s.latest(w, r)
	if !ok {
		return
	}
	env, err := command.New(command.ApplyConfig, p)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	env.Actor, env.RequestID, env.Time = actor(r), "dry-run", time.Now().UTC()
	next, _, err := st.Apply(st.Index+1, env)
	if err != nil {
		writeErr(w, err)
		return
	}
	// A configuration the agent taking it cannot serve would leave it on
	// the old one; most often a provider's key variable is unset here.
	if err := s.compiles(&next.Config); err != nil {
		badRequest(w, "this agent cannot serve the configuration, so it is not applied (set what it needs on every agent first): %v", err)
		return
	}
	out := api.ConfigResult{BaseIndex: st.ConfigIndex, Changes: configChanges(&st.Config, cfg)}
	if v := r.URL.Query().Get("dry_run"); v == "1" || v == "true" {
		out.DryRun = true
		writeJSON(w, http.StatusOK, out)
		return
	}
	res, err := s.apply(r, command.ApplyConfig, p)
	if err != nil {
		writeErr(w, err)
		return
	}
	out.Index = res.Index
	writeJSON(w, http.StatusOK, out)
}

// problemsOf flattens a joined error of config.Parse.
func problemsOf(err error) string {
	var msgs []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			msgs = append(msgs, e.Error())
		}
		return strings.Join(msgs, "; ")
	}
	return problems(err)
}

// checkReleases compiles every release of cfg (template, schema, tools), the
// part of a release config.Validate does not check.
func checkReleases(cfg *config.Config) error {
	var ps config.ValidationError
	for _, f := range cfg.Features {
		for _, rel := range f.Releases {
			if _, err := release.Compile(rel); err != nil {
				var ve config.ValidationError
				if errors.As(err, &ve) {
					for _, p := range ve {
						p.Path = strings.TrimSuffix(config.ReleaseID(f.Name, rel.Version)+"."+p.Path, ".")
						ps = append(ps, p)
					}
				} else {
					ps = append(ps, config.Problem{Path: config.ReleaseID(f.Name, rel.Version), Reason: err.Error()})
				}
			}
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

// configChanges lists the named objects next adds, removes or changes
// compared with cur, kind by kind in the order of config.Config's fields,
// then by name. Objects are compared by their JSON encoding.
func configChanges(cur, next *config.Config) []api.ConfigChange {
	out := []api.ConfigChange{}
	a, b := objects(cur), objects(next)
	for _, kind := range kinds(cur, next) {
		names := map[string]bool{}
		for n := range a[kind] {
			names[n] = true
		}
		for n := range b[kind] {
			names[n] = true
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		for _, n := range sorted {
			oa, inA := a[kind][n]
			ob, inB := b[kind][n]
			switch {
			case !inA:
				out = append(out, api.ConfigChange{Kind: kind, Name: n, Op: api.OpAdd})
			case !inB:
				out = append(out, api.ConfigChange{Kind: kind, Name: n, Op: api.OpRemove})
			case oa != ob:
				c := api.ConfigChange{Kind: kind, Name: n, Op: api.OpChange}
				if kind == "features" {
					c.Detail = featureDetail(cur, next, n)
				}
				out = append(out, c)
			}
		}
	}
	return out
}

// objects maps kind -> name -> JSON of every named object of a config;
// fields that are not lists (limits) appear under their own name.
func objects(c *config.Config) map[string]map[string]string {
	var generic map[string]json.RawMessage
	b, _ := json.Marshal(c)
	_ = json.Unmarshal(b, &generic)
	out := map[string]map[string]string{}
	for kind, raw := range generic {
		var list []json.RawMessage
		m := map[string]string{}
		if json.Unmarshal(raw, &list) == nil {
			for i, item := range list {
				var named struct {
					Name string `json:"name"`
				}
				_ = json.Unmarshal(item, &named)
				if named.Name == "" {
					named.Name = "#" + strconv.Itoa(i)
				}
				m[named.Name] = string(item)
			}
		} else if string(raw) != "{}" && string(raw) != "null" {
			m[kind] = string(raw)
		}
		out[kind] = m
	}
	return out
}

func kinds(cs ...*config.Config) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range cs {
		b, _ := json.Marshal(c)
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.Token() // {
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				break
			}
			k, _ := t.(string)
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				break
			}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// featureDetail says what changes in a feature: new releases and label
// moves.
func featureDetail(cur, next *config.Config, name string) string {
	var fa, fb config.Feature
	for _, f := range cur.Features {
		if f.Name == name {
			fa = f
		}
	}
	for _, f := range next.Features {
		if f.Name == name {
			fb = f
		}
	}
	var parts []string
	for _, r := range fb.Releases {
		if _, ok := fa.Release(r.Version); !ok {
			parts = append(parts, fmt.Sprintf("new release v%d", r.Version))
		}
	}
	for _, r := range fa.Releases {
		if _, ok := fb.Release(r.Version); !ok {
			parts = append(parts, fmt.Sprintf("drops release v%d", r.Version))
		}
	}
	if fa.Labels != fb.Labels {
		parts = append(parts, fmt.Sprintf("labels production=v%d canary=v%d@%d%% -> production=v%d canary=v%d@%d%%",
			fa.Labels.Production, fa.Labels.Canary, fa.Labels.CanaryWeight, fb.Labels.Production, fb.Labels.Canary, fb.Labels.CanaryWeight))
	}
	return strings.Join(parts, ", ")
}
