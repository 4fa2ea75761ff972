package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"gantry/agent/admin"
	"gantry/agent/gateway"
	"gantry/api"
	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/config"
)

// clusterAgent is an agent run by Run, with its own single-node cluster.
type clusterAgent struct {
	t       *testing.T
	base    string
	s       *Server
	dataDir string
}

// startClusterAgent runs a dev agent through Run and waits until the
// cluster is seeded and its gateway serves the replicated configuration.
func startClusterAgent(t *testing.T, mutate func(*Options)) *clusterAgent {
	t.Helper()
	ready := make(chan string, 1)
	// The example's simulator fails a few calls on purpose; these tests
	// assert single calls, so they serve it without failures.
	quiet, err := yaml.Marshal(quietConfig())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "gantry.yaml")
	if err := os.WriteFile(file, quiet, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{Dev: true, DevKey: devKey, DevAdminToken: devAdmin, HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), NodeID: "a1", ConfigFile: file,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard, Ready: func(addr string) { ready <- addr }}
	if mutate != nil {
		mutate(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent did not stop within 30s")
		}
	})
	var a *clusterAgent
	select {
	case addr := <-ready:
		a = &clusterAgent{t: t, base: "http://" + addr, dataDir: opts.DataDir}
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not start within 30s")
	}
	return a
}

// waitSeeded waits until the dev admin token is in the replicated state and
// the gateway serves the replicated configuration.
func (a *clusterAgent) waitSeeded() {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var st api.Status
		var toks api.TokenList
		if a.do("GET", api.PathStatus, devAdmin, nil, &st) == 200 && st.ServingIndex > 0 &&
			a.do("GET", api.PathTokens, devAdmin, nil, &toks) == 200 && len(toks.Tokens) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.t.Fatal("the cluster was not seeded within 30s")
}

// do sends a request with token and decodes a JSON answer into out; it
// returns the status.
func (a *clusterAgent) do(method, path, token string, in, out any) int {
	a.t.Helper()
	var body io.Reader
	switch v := in.(type) {
	case nil:
	case string:
		body = strings.NewReader(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			a.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if raw, ok := out.(*string); ok {
			*raw = string(data)
		} else if resp.StatusCode/100 == 2 || strings.Contains(string(data), `"error"`) {
			if err := json.Unmarshal(data, out); err != nil {
				a.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
			}
		}
	}
	return resp.StatusCode
}

// must is do that fails the test unless the status is want.
func (a *clusterAgent) must(want int, method, path, token string, in, out any) {
	a.t.Helper()
	var raw string
	if got := a.do(method, path, token, in, &raw); got != want {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

// gateway calls the chat endpoint with key and returns the status.
func (a *clusterAgent) gateway(key string) int {
	a.t.Helper()
	return a.do("POST", "/v1/chat/completions", key, `{"model":"cheap","messages":[{"role":"user","content":"hi"}]}`, nil)
}

// eventually retries cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClusterAdminRoles(t *testing.T) {
	a := startClusterAgent(t, nil)
	a.waitSeeded()

	tokens := map[string]string{}
	for _, role := range []string{string(config.RoleViewer), string(config.RoleOperator), string(config.RoleAdmin)} {
		var ts api.TokenSecret
		a.must(201, "POST", api.PathTokens, devAdmin, api.TokenCreate{Name: "t-" + role, Role: role}, &ts)
		if !strings.HasPrefix(ts.Secret, "gat_") || ts.Token.Role != role {
			t.Fatalf("token create answered %+v", ts)
		}
		tokens[role] = ts.Secret
	}
	var list api.TokenList
	var raw string
	a.do("GET", api.PathTokens, devAdmin, nil, &raw)
	for _, secret := range tokens {
		if strings.Contains(raw, secret) || strings.Contains(raw, "sha256:") {
			t.Fatalf("token list shows a secret or hash: %s", raw)
		}
	}
	a.must(200, "GET", api.PathTokens, devAdmin, nil, &list)
	if got, want := len(list.Tokens), 4; got != want {
		t.Fatalf("%d tokens, want %d (dev and three made here)", got, want)
	}

	promote := api.LabelMove{Action: config.MoveCanary, To: 2, Weight: 30}
	cases := []struct {
		name         string
		method, path string
		body         any
		token        string
		want         int
	}{
		{"no token reads", "GET", api.PathFeatures, nil, "", 401},
		{"unknown token reads", "GET", api.PathFeatures, nil, "gat_nobody", 401},
		{"viewer reads features", "GET", api.PathFeatures, nil, tokens[string(config.RoleViewer)], 200},
		{"viewer reads traces", "GET", api.PathTraces, nil, tokens[string(config.RoleViewer)], 200},
		{"viewer moves a label", "POST", api.LabelsPath("support-answer"), promote, tokens[string(config.RoleViewer)], 403},
		{"viewer creates a key", "POST", api.PathKeys, api.KeyCreate{Name: "v-key"}, tokens[string(config.RoleViewer)], 403},
		{"viewer writes through a generic admin endpoint", "POST", "/admin/v1/collections/docs/documents", "{}", tokens[string(config.RoleViewer)], 403},
		{"operator moves a label", "POST", api.LabelsPath("support-answer"), promote, tokens[string(config.RoleOperator)], 200},
		{"operator applies a config", "PUT", api.PathConfig + "?dry_run=1", "{}", tokens[string(config.RoleOperator)], 403},
		{"operator lists tokens", "GET", api.PathTokens, nil, tokens[string(config.RoleOperator)], 403},
		{"operator removes a member", "DELETE", api.MemberPath("x"), nil, tokens[string(config.RoleOperator)], 403},
		{"admin lists tokens", "GET", api.PathTokens, nil, tokens[string(config.RoleAdmin)], 200},
		{"admin removes an unknown member", "DELETE", api.MemberPath("nobody"), nil, tokens[string(config.RoleAdmin)], 404},
	}
	for _, tc := range cases {
		var e api.ErrorResponse
		got := a.do(tc.method, tc.path, tc.token, tc.body, &e)
		if got != tc.want {
			t.Fatalf("%s: status %d, want %d (%+v)", tc.name, got, tc.want, e)
		}
		if got >= 400 && e.Error.Code == "" {
			t.Fatalf("%s: error without the admin API's shape", tc.name)
		}
	}

	// Key hashes are in the configuration admins read, to write it back,
	// and blanked for everyone else.
	for role, want := range map[string]bool{string(config.RoleViewer): false, string(config.RoleOperator): false, string(config.RoleAdmin): true} {
		var cfg config.Config
		a.must(200, "GET", api.PathConfig, tokens[role], nil, &cfg)
		if len(cfg.Keys) == 0 {
			t.Fatalf("%s reads a configuration without keys", role)
		}
		for _, k := range cfg.Keys {
			if got := strings.HasPrefix(k.Hash, "sha256:"); got != want {
				t.Fatalf("%s reads key %s with hash %q; want hash shown: %v", role, k.Name, k.Hash, want)
			}
		}
	}

	// The operator's move names it in the audit log.
	var audit api.AuditList
	a.must(200, "GET", api.PathAudit+"?limit=1", tokens[string(config.RoleViewer)], nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != "token:t-operator" || audit.Entries[0].Command != "move_label" {
		t.Fatalf("newest audit entry %+v, want t-operator's move_label", audit.Entries)
	}

	// A revoked token stops working.
	a.must(200, "POST", api.TokenPath("t-viewer", "revoke"), tokens[string(config.RoleAdmin)], nil, nil)
	if got := a.do("GET", api.PathFeatures, tokens[string(config.RoleViewer)], nil, nil); got != 401 {
		t.Fatalf("revoked token read with status %d, want 401", got)
	}
}

func TestClusterReleasesAndLabels(t *testing.T) {
	a := startClusterAgent(t, nil)
	a.waitSeeded()

	var fs api.Features
	a.must(200, "GET", api.PathFeatures+"?consistent=1", devAdmin, nil, &fs)
	if len(fs.Features) != 2 || fs.Features[0].Name != "support-answer" || fs.Features[0].Labels.Production != 1 {
		t.Fatalf("features %+v", fs.Features)
	}

	// An invalid release is refused with the path and reason of each
	// problem, and nothing is written.
	// The state index is no witness: the agent writes counters and spend
	// of its own meanwhile. The feature's releases are.
	var before api.Feature
	a.must(200, "GET", api.ReleasesPath("support-answer"), devAdmin, nil, &before)
	var e api.ErrorResponse
	bad := `{"system":"x","template":[{"role":"user","content":"{{missing"}],"route":"no-such-route"}`
	if got := a.do("POST", api.ReleasesPath("support-answer"), devAdmin, bad, &e); got != 400 {
		t.Fatalf("invalid release: status %d, want 400", got)
	}
	for _, want := range []string{"support-answer@next.route", "no-such-route", "support-answer@next.template"} {
		if !strings.Contains(e.Error.Message, want) {
			t.Fatalf("invalid release message %q lacks %q", e.Error.Message, want)
		}
	}
	var after api.Feature
	a.must(200, "GET", api.ReleasesPath("support-answer"), devAdmin, nil, &after)
	if len(after.Releases) != len(before.Releases) || after.Labels != before.Labels {
		t.Fatalf("a refused release changed the feature: %d releases, labels %+v -> %d releases, labels %+v",
			len(before.Releases), before.Labels, len(after.Releases), after.Labels)
	}
	if got := a.do("POST", api.ReleasesPath("nope"), devAdmin, `{"route":"cheap"}`, nil); got != 404 {
		t.Fatalf("release of an unknown feature: status %d, want 404", got)
	}

	var rel api.Release
	good := `{"system":"Answer in one sentence.","template":[{"role":"user","content":"{{question}}"}],"variables":[{"name":"question","required":true}],"route":"cheap"}`
	a.must(201, "POST", api.ReleasesPath("support-answer"), devAdmin, good, &rel)
	if rel.Version != 3 || rel.ID != "support-answer@v3" || !strings.HasPrefix(rel.Hash, "sha256:") || rel.CreatedBy != "token:dev" {
		t.Fatalf("created release %+v", rel)
	}

	var d api.Diff
	a.must(200, "GET", api.DiffPath("support-answer", 2, 3), devAdmin, nil, &d)
	fields := map[string]bool{}
	for _, f := range d.Fields {
		fields[f.Field] = true
	}
	for _, want := range []string{"system", "route", "template[0].content"} {
		if !fields[want] {
			t.Fatalf("diff v2..v3 lacks %s: %s", want, d.Summary())
		}
	}
	if got := a.do("GET", api.DiffPath("support-answer", 1, 9), devAdmin, nil, nil); got != 404 {
		t.Fatalf("diff with an unknown release: status %d, want 404", got)
	}

	// Label moves: a stale From is a conflict, promoting production is
	// refused, a promote is served by the gateway.
	move := func(m api.LabelMove) (int, api.LabelMoveResult, api.ErrorResponse) {
		var raw string
		status := a.do("POST", api.LabelsPath("support-answer"), devAdmin, m, &raw)
		var res api.LabelMoveResult
		var e api.ErrorResponse
		if status == 200 {
			json.Unmarshal([]byte(raw), &res)
		} else {
			json.Unmarshal([]byte(raw), &e)
		}
		return status, res, e
	}
	if st, _, e := move(api.LabelMove{Action: config.MovePromote, From: 2, To: 3}); st != 409 || e.Error.Code != api.CodeConflict {
		t.Fatalf("promote with a stale from: %d %+v, want 409 conflict", st, e)
	}
	if st, _, e := move(api.LabelMove{Action: config.MovePromote, To: 1}); st != 409 || !strings.Contains(e.Error.Message, "already production") {
		t.Fatalf("promote of production: %d %+v, want 409 saying it is production already", st, e)
	}
	if st, _, e := move(api.LabelMove{Action: config.MoveCanary, To: 2, Weight: 101}); st != 400 {
		t.Fatalf("canary weight 101: %d %+v, want 400", st, e)
	}
	if st, _, e := move(api.LabelMove{Action: config.MoveCanary, To: 2}); st != 400 {
		t.Fatalf("canary without a weight: %d %+v, want 400", st, e)
	}
	if st, res, e := move(api.LabelMove{Action: config.MoveAbort, From: 2}); st != 200 || res.Labels.Canary != 0 || res.Labels.CanaryWeight != 0 || res.Labels.Production != 1 {
		t.Fatalf("end the canary: %d %+v %+v", st, res, e)
	}
	st, res, e := move(api.LabelMove{Action: config.MovePromote, From: 1, To: 3, Reason: "shorter answers"})
	if st != 200 || res.Labels.Production != 3 || res.Change.From != 1 || res.Change.To != 3 || res.Change.Actor != "token:dev" || res.Change.Reason != "shorter answers" {
		t.Fatalf("promote: %d %+v %+v", st, res, e)
	}
	eventually(t, "the gateway serves v3 after the promote", func() bool {
		var inv gateway.InvokeResponse
		status := a.do("POST", "/v1/features/support-answer/invoke", devKey, `{"vars":{"question":"Where is my order?"}}`, &inv)
		return status == 200 && inv.Release == "support-answer@v3"
	})
	st, res, _ = move(api.LabelMove{Action: config.MoveRollback})
	if st != 200 || res.Labels.Production != 1 {
		t.Fatalf("rollback: %d %+v", st, res)
	}

	var f api.Feature
	a.must(200, "GET", api.ReleasesPath("support-answer"), devAdmin, nil, &f)
	if len(f.Releases) != 3 || f.Releases[2].Spec == nil || f.Releases[2].Spec.Route != "cheap" || len(f.History) < 3 {
		t.Fatalf("feature after moves: %+v", f)
	}
	if last := f.History[len(f.History)-1]; last.Action != "rollback" || last.From != 3 || last.To != 1 {
		t.Fatalf("last label change %+v, want rollback v3 -> v1", last)
	}

	// The audit log pages newest first.
	var p1, p2 api.AuditList
	a.must(200, "GET", api.PathAudit+"?limit=2", devAdmin, nil, &p1)
	if len(p1.Entries) != 2 || p1.Next == "" || p1.Entries[0].Seq <= p1.Entries[1].Seq {
		t.Fatalf("audit page 1: %+v", p1)
	}
	a.must(200, "GET", api.PathAudit+"?limit=2&cursor="+p1.Next, devAdmin, nil, &p2)
	if len(p2.Entries) == 0 || p2.Entries[0].Seq >= p1.Entries[1].Seq {
		t.Fatalf("audit page 2 %+v does not follow page 1 %+v", p2.Entries, p1.Entries)
	}

	// Who moved the labels of support-answer, and what did each move
	// change? The rollback is first, with its diff.
	var moves api.AuditList
	a.must(200, "GET", api.PathAudit+"?"+api.AuditQuery{Actor: "token:dev", Kind: "move_label", Object: "SUPPORT-answer"}.Values().Encode(), devAdmin, nil, &moves)
	if len(moves.Entries) < 3 {
		t.Fatalf("label moves of support-answer by token:dev: %+v", moves.Entries)
	}
	for _, m := range moves.Entries {
		if m.Command != "move_label" || m.Actor != "token:dev" || !strings.Contains(m.Target, "support-answer") {
			t.Fatalf("filtered audit holds %+v", m)
		}
	}
	if d := moves.Entries[0].Diff; len(d) != 1 || d[0] != (api.AuditChange{Field: "production", Before: "v3", After: "v1"}) {
		t.Fatalf("diff of the rollback %+v, want production v3 -> v1", d)
	}
	var none api.AuditList
	a.must(200, "GET", api.PathAudit+"?actor=token:nobody", devAdmin, nil, &none)
	if len(none.Entries) != 0 {
		t.Fatalf("entries of an actor who changed nothing: %+v", none.Entries)
	}
	var refused api.ErrorResponse
	a.must(400, "GET", api.PathAudit+"?limit=0", devAdmin, nil, &refused)
}

func TestClusterKeys(t *testing.T) {
	a := startClusterAgent(t, nil)
	a.waitSeeded()

	var ks api.KeySecret
	a.must(201, "POST", api.PathKeys, devAdmin, api.KeyCreate{Name: "team-a", Team: "a"}, &ks)
	if !strings.HasPrefix(ks.Secret, "gk_") || ks.Key.Name != "team-a" {
		t.Fatalf("key create answered %+v", ks)
	}
	if got := a.do("POST", api.PathKeys, devAdmin, api.KeyCreate{Name: "team-a"}, nil); got != 409 {
		t.Fatalf("second key of the same name: status %d, want 409", got)
	}
	eventually(t, "the new key works on the gateway", func() bool { return a.gateway(ks.Secret) == 200 })

	var raw string
	a.must(200, "GET", api.PathKeys, devAdmin, nil, nil)
	a.do("GET", api.PathKeys, devAdmin, nil, &raw)
	if strings.Contains(raw, ks.Secret) || strings.Contains(raw, "sha256:") {
		t.Fatalf("key list shows a secret or a whole hash: %s", raw)
	}

	var rot api.KeySecret
	a.must(200, "POST", api.KeyPath("team-a", "rotate"), devAdmin, nil, &rot)
	if rot.Secret == ks.Secret || rot.Key.HashPrefix == ks.Key.HashPrefix {
		t.Fatalf("rotation kept the secret: %+v", rot)
	}
	eventually(t, "the old secret stops working after rotation", func() bool { return a.gateway(ks.Secret) == 401 })
	if got := a.gateway(rot.Secret); got != 200 {
		t.Fatalf("rotated key: status %d, want 200", got)
	}

	a.must(200, "POST", api.KeyPath("team-a", "revoke"), devAdmin, nil, nil)
	eventually(t, "a revoked key stops working", func() bool { return a.gateway(rot.Secret) == 401 })
	if got := a.do("POST", api.KeyPath("nobody", "rotate"), devAdmin, nil, nil); got != 404 {
		t.Fatalf("rotate an unknown key: status %d, want 404", got)
	}
}

func TestClusterConfigApply(t *testing.T) {
	a := startClusterAgent(t, nil)
	a.waitSeeded()

	var cur string
	a.must(200, "GET", api.PathConfig+"?format=yaml&consistent=1", devAdmin, nil, nil)
	a.do("GET", api.PathConfig+"?format=yaml", devAdmin, nil, &cur)
	const desc = "Answers a customer's question about their order."
	next := strings.Replace(cur, desc, "Answers customers.", 1)
	if next == cur {
		t.Fatalf("the served YAML has no description to change:\n%s", cur)
	}

	var before api.Status
	a.must(200, "GET", api.PathStatus, devAdmin, nil, &before)
	var plan api.ConfigResult
	a.must(200, "PUT", api.PathConfig+"?dry_run=1", devAdmin, next, &plan)
	if !plan.DryRun || len(plan.Changes) != 1 || plan.Changes[0].Kind != "features" || plan.Changes[0].Name != "support-answer" || plan.Changes[0].Op != config.OpChange {
		t.Fatalf("dry run changes %+v", plan.Changes)
	}
	if f := plan.Changes[0].Fields; len(f) != 1 || f[0].Path != "description" || f[0].New != `"Answers customers."` {
		t.Fatalf("dry run fields %+v, want description old -> new", f)
	}
	var mid string // the state index is no witness: counters and spend move it
	a.do("GET", api.PathConfig+"?format=yaml&consistent=1", devAdmin, nil, &mid)
	if mid != cur {
		t.Fatalf("a dry run changed the configuration:\n%s", mid)
	}

	var res api.ConfigResult
	a.must(200, "PUT", api.PathConfig, devAdmin, next, &res)
	if res.DryRun || res.Index <= before.StateIndex || len(res.Changes) != 1 {
		t.Fatalf("apply answered %+v", res)
	}
	var fs api.Features
	a.must(200, "GET", api.PathFeatures, devAdmin, nil, &fs)
	if fs.Features[0].Description != "Answers customers." {
		t.Fatalf("description %q after apply", fs.Features[0].Description)
	}
	var same api.ConfigResult
	a.must(200, "PUT", api.PathConfig+"?dry_run=1", devAdmin, next, &same)
	if len(same.Changes) != 0 {
		t.Fatalf("re-applying the same config reports changes %+v", same.Changes)
	}
	if same.BaseIndex != res.Index {
		t.Fatalf("dry run base index %d, want %d: the index the configuration last changed", same.BaseIndex, res.Index)
	}
	// Labels in a file place a feature's labels when it is created, and
	// only then.
	var moved api.ConfigResult
	a.must(200, "PUT", api.PathConfig+"?dry_run=1", devAdmin, strings.Replace(next, "canary_weight: 10", "canary_weight: 40", 1), &moved)
	if len(moved.Changes) != 0 {
		t.Fatalf("a file moving the canary of an existing feature reports changes %+v", moved.Changes)
	}

	// Read, edit, write back with If-Match: a write made in between makes
	// the stale one fail with 412 and changes nothing.
	ifMatch := func(method, etag, body string) (*http.Response, string) {
		req, _ := http.NewRequest(method, a.base+api.PathConfig+"?format=yaml", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+devAdmin)
		if etag != "" {
			req.Header.Set("If-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	got, yaml := ifMatch("GET", "", "")
	etag := got.Header.Get("ETag")
	if etag != api.ConfigETag(res.Index) {
		t.Fatalf("ETag %q, want %q", etag, api.ConfigETag(res.Index))
	}
	mine := strings.Replace(yaml, "Answers customers.", "Answers them all.", 1)
	theirs := strings.Replace(yaml, "Answers customers.", "Answers briefly.", 1)
	if resp, body := ifMatch("PUT", etag, theirs); resp.StatusCode != 200 {
		t.Fatalf("first conditional write: %s %s", resp.Status, body)
	}
	resp, body := ifMatch("PUT", etag, mine)
	if resp.StatusCode != http.StatusPreconditionFailed || !strings.Contains(body, api.CodeStale) {
		t.Fatalf("stale write: %s %s, want 412 stale", resp.Status, body)
	}
	a.must(200, "GET", api.PathFeatures, devAdmin, nil, &fs)
	if d := fs.Features[0].Description; d != "Answers briefly." {
		t.Fatalf("description %q after a stale write, want the one written first", d)
	}
	if resp, body := ifMatch("PUT", `"x"`, mine); resp.StatusCode != 400 || !strings.Contains(body, "If-Match") {
		t.Fatalf("malformed If-Match: %s %s, want 400 naming If-Match", resp.Status, body)
	}

	cases := []struct {
		name, body, want string
	}{
		{"unknown field", "providers:\n  - name: p\n    kind: sim\n    colour: red\n", "colour"},
		{"bad reference", "models:\n  - name: m\n    provider: nope\n", "models[0].provider"},
		{"bad template", strings.Replace(next, "{{customer}}", "{{customer", 1), "support-answer@v1"},
		{"changed release", strings.Replace(next, "Answer in at most three sentences.", "Be brief.", 1), "immutable"},
		{"empty document", "", "declares nothing"},
		{"only comments", "# nothing\n# here\n", "declares nothing"},
	}
	for _, tc := range cases {
		var e api.ErrorResponse
		got := a.do("PUT", api.PathConfig, devAdmin, tc.body, &e)
		if got/100 != 4 || !strings.Contains(e.Error.Message, tc.want) {
			t.Fatalf("%s: status %d %q, want a 4xx naming %q", tc.name, got, e.Error.Message, tc.want)
		}
	}
}

// An agent that cannot reach a cluster has no leader: reads answer from its
// local state, writes answer 503 with a clear message, and /readyz says it
// has no configuration yet.
func TestClusterNoLeader(t *testing.T) {
	a := startClusterAgent(t, func(o *Options) {
		o.adminTimeouts = admin.Timeouts{Write: time.Second, Read: time.Second}
		o.Dev, o.DevKey, o.ConfigFile = false, "", ""
		o.Cluster = ClusterOptions{Join: []string{"127.0.0.1:1"}, Secret: "s3cret", RaftAddr: "127.0.0.1:0"}
	})
	if got := a.do("GET", "/readyz", "", nil, nil); got != 503 {
		t.Fatalf("/readyz without configuration: %d, want 503", got)
	}
	var fs api.Features
	a.must(200, "GET", api.PathFeatures, devAdmin, nil, &fs)
	if len(fs.Features) != 0 {
		t.Fatalf("features before joining: %+v", fs)
	}
	var e api.ErrorResponse
	got := a.do("POST", api.PathKeys, devAdmin, api.KeyCreate{Name: "k"}, &e)
	if got != 503 || e.Error.Code != api.CodeUnavailable || !strings.Contains(e.Error.Message, "no leader") {
		t.Fatalf("write without a leader: %d %+v, want 503 naming the missing leader", got, e)
	}
}

func TestClusterOptionsCheck(t *testing.T) {
	cases := []struct {
		name string
		o    ClusterOptions
		dev  bool
		want string // "" means valid
	}{
		{"lone agent", ClusterOptions{}, false, ""},
		{"lone dev agent", ClusterOptions{}, true, ""},
		{"three with a secret", ClusterOptions{BootstrapExpect: 3, Join: []string{"a:1", "b:1", "c:1"}, Secret: "s"}, false, ""},
		{"five voters", ClusterOptions{Voters: 5, Join: []string{"a:1"}, Secret: "s"}, false, ""},
		{"join without a secret", ClusterOptions{Join: []string{"a:1"}}, false, "--cluster-secret"},
		{"expect without join", ClusterOptions{BootstrapExpect: 3, Secret: "s"}, false, "--join"},
		{"expect above voters", ClusterOptions{BootstrapExpect: 4, Join: []string{"a:1"}, Secret: "s"}, false, "--bootstrap-expect"},
		{"four voters", ClusterOptions{Voters: 4}, false, "--voters"},
		{"dev joining", ClusterOptions{Join: []string{"a:1"}, Secret: "s"}, true, "--dev"},
		{"snapshots every few writes", ClusterOptions{SnapshotThreshold: 8}, false, "--raft-snapshot-threshold"},
		{"snapshot checks too often", ClusterOptions{SnapshotInterval: time.Millisecond}, false, "--raft-snapshot-interval"},
		{"small snapshots, checked often", ClusterOptions{SnapshotThreshold: 64, SnapshotInterval: time.Second}, false, ""},
	}
	for _, tc := range cases {
		err := tc.o.check(tc.dev)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Fatalf("%s: check() = %q, want an error containing %q", tc.name, got, tc.want)
		}
	}
}

// applied returns st with the command applied at the next index.
func applied(t *testing.T, st *state.State, typ command.Type, payload any) *state.State {
	t.Helper()
	env, err := command.New(typ, payload)
	if err != nil {
		t.Fatal(err)
	}
	env.RequestID, env.Time = fmt.Sprintf("test-%d", st.Index+1), time.Now().UTC()
	next, _, err := st.Apply(st.Index+1, env)
	if err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
	return next
}

// The data plane follows the replicated state: a new configuration is
// compiled and swapped in, one that does not compile leaves the previous
// one serving, and a command that does not touch the configuration moves
// the serving index without a compile.
func TestSwapState(t *testing.T) {
	a := startAgent(t, quietConfig())
	r := newReplica(a.s.log, "test", a.s.Reload)

	cfg := quietConfig()
	cfg.Keys = append(cfg.Keys, config.Key{Name: "dev", Hash: config.HashKey(devKey)})
	cfg.Features[0].Labels = config.Labels{Production: 2}
	st1 := applied(t, state.New(), command.ApplyConfig, command.Config{Config: *cfg})
	r.swapState(st1)
	snap1 := a.s.gw.Snapshot()
	if got := r.Served(); got != st1.Index {
		t.Fatalf("serving index %d, want %d", got, st1.Index)
	}
	if f, _ := snap1.Feature("support-answer"); f.Labels.Production != 2 {
		t.Fatalf("served production v%d, want v2 from the state", f.Labels.Production)
	}

	st2 := applied(t, st1, command.PutToken, command.TokenPayload{Token: command.Token{Name: "ops", Hash: config.HashKey("gat_ops"), Role: config.RoleOperator}})
	r.swapState(st2)
	if a.s.gw.Snapshot() != snap1 || r.Served() != st2.Index {
		t.Fatalf("a token change recompiled the configuration or left the serving index at %d", r.Served())
	}

	// A provider whose key variable is unset on this agent does not
	// compile here.
	broken := *cfg
	broken.Providers = append(slices.Clone(cfg.Providers), config.Provider{Name: "remote", Kind: config.KindOpenAI,
		BaseURL: "http://127.0.0.1:1/v1", APIKeyEnv: "SWAP_TEST_UNSET_API_KEY"})
	broken.Models = append(slices.Clone(cfg.Models), config.Model{Name: "remote-m", Provider: "remote"})
	st3 := applied(t, st2, command.ApplyConfig, command.Config{Config: broken})
	r.swapState(st3)
	if a.s.gw.Snapshot() != snap1 || r.Served() != st2.Index {
		t.Fatalf("a configuration that does not compile replaced the serving one")
	}
	if why := r.unservedReason(); !strings.Contains(why, fmt.Sprintf("index %d does not compile", st3.Index)) || !strings.Contains(why, "SWAP_TEST_UNSET_API_KEY") {
		t.Fatalf("unserved reason %q does not say which index and what failed", why)
	}
	// A later command that leaves the broken configuration as it is must
	// not mark it served either.
	st3b := applied(t, st3, command.PutToken, command.TokenPayload{Token: command.Token{Name: "ops2", Hash: config.HashKey("gat_ops2"), Role: config.RoleOperator}})
	r.swapState(st3b)
	if a.s.gw.Snapshot() != snap1 || r.Served() != st2.Index || r.Followed() != st3b.Index {
		t.Fatalf("after a token change on a broken configuration: serving index %d (want %d), followed %d (want %d)",
			r.Served(), st2.Index, r.Followed(), st3b.Index)
	}

	st4 := applied(t, st3b, command.ApplyConfig, command.Config{Config: *cfg, Prune: true})
	r.swapState(st4)
	if snap := a.s.gw.Snapshot(); len(snap.Config.Providers) != len(cfg.Providers) || len(snap.Config.Models) != len(cfg.Models) || r.Served() != st4.Index {
		t.Fatalf("after a fixed configuration the gateway serves %d providers at index %d", len(snap.Config.Providers), r.Served())
	}
	if why := r.unservedReason(); why != "" {
		t.Fatalf("after a fixed configuration the agent still reports %q", why)
	}
}
