package admin

import (
	"net/http"
	"time"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/config"
	"gantry/pipeline/release"

	"go.yaml.in/yaml/v3"
)

func (a *API) getConfig(w http.ResponseWriter, r *http.Request) {
	st, err := a.readState(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("ETag", api.ConfigETag(st.ConfigIndex))
	cfg := st.Config
	if !callerRole(r).Allows(config.RoleAdmin) {
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
	httpio.JSON(w, http.StatusOK, cfg)
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

// putConfig serves PUT /admin/v1/config: a configuration file (YAML or
// JSON) declared onto the cluster's state as one change. It changes only
// what the file declares and what the file changed since it was last
// applied, never what operators did at run time (labels, releases and keys
// made through the API); ?prune=1 also removes what an earlier file
// declared and this one does not, and ?force=REASON lets a prune remove
// every provider, feature or key, with the reason in the audit log. The
// file is validated, its releases compiled and the command tried on the
// current state before it is proposed; the answer lists every object it
// changes, field by field. ?dry_run=1 stops before proposing.
func (a *API) putConfig(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, config.MaxFileBytes)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	cfg, err := config.Parse("config", body)
	if err != nil {
		badRequest(w, "invalid configuration: %s", problemsOf(err))
		return
	}
	if cfg.DeclaresNothing() {
		badRequest(w, "the configuration declares nothing (an empty document, or only comments); nothing was applied")
		return
	}
	if err := release.CheckConfig(cfg); err != nil {
		badRequest(w, "invalid configuration: %s", problems(err))
		return
	}
	q := r.URL.Query()
	p := command.Config{Config: *cfg, Prune: flag(q.Get("prune")), Force: q.Get("force")}
	if v := r.Header.Get("If-Match"); v != "" {
		n, err := api.ParseConfigETag(v)
		if err != nil {
			badRequest(w, "%v", err)
			return
		}
		p.IfIndex = &n
	}
	st, ok := a.latest(w, r)
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
	if err := a.Compiles(&next.Config); err != nil {
		badRequest(w, "this agent cannot serve the configuration, so it is not applied (set what it needs on every agent first): %v", err)
		return
	}
	changes := config.Changes(&st.Config, &next.Config, st.Declared, cfg)
	if !callerRole(r).Allows(config.RoleAdmin) {
		changes = withoutKeyHashes(changes)
	}
	out := api.ConfigResult{BaseIndex: st.ConfigIndex, Changes: changes}
	if flag(q.Get("dry_run")) {
		out.DryRun = true
		httpio.JSON(w, http.StatusOK, out)
		return
	}
	res, err := a.apply(w, r, command.ApplyConfig, p)
	if err != nil {
		writeErr(w, err)
		return
	}
	out.Index = res.Index
	httpio.JSON(w, http.StatusOK, out)
}

// flag reads a boolean query parameter.
func flag(v string) bool { return v == "1" || v == "true" }

// withoutKeyHashes blanks key hashes in changes, as GET does for anyone
// but admins.
func withoutKeyHashes(cs []api.ConfigChange) []api.ConfigChange {
	for i, c := range cs {
		for j, f := range c.Fields {
			if c.Kind == "keys" && f.Path == "hash" {
				cs[i].Fields[j].Old, cs[i].Fields[j].New = "", ""
			}
		}
	}
	return cs
}
