package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
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

// putConfig serves PUT /admin/v1/config: a whole configuration (YAML or
// JSON) replaces the current one as one change. It is validated, its
// releases compiled, and the command tried on the current state before it
// is proposed; ?dry_run=1 stops there and only reports the changes.
func (a *API) putConfig(w http.ResponseWriter, r *http.Request) {
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
	if err := release.CheckConfig(cfg); err != nil {
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
	out := api.ConfigResult{BaseIndex: st.ConfigIndex, Changes: configChanges(&st.Config, cfg)}
	if v := r.URL.Query().Get("dry_run"); v == "1" || v == "true" {
		out.DryRun = true
		httpio.JSON(w, http.StatusOK, out)
		return
	}
	res, err := a.apply(r, command.ApplyConfig, p)
	if err != nil {
		writeErr(w, err)
		return
	}
	out.Index = res.Index
	httpio.JSON(w, http.StatusOK, out)
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
