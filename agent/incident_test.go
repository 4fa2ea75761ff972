package agent

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gantry/api"
	"gantry/config"
)

// TestRefusedCallFindsItsCaller is an operator chasing a burst of 401s: the
// refused call's trace names the caller's address, user agent and the
// fingerprint of the key it presented, never the key, and the trace list
// finds it by that fingerprint, by error kind and by text.
func TestRefusedCallFindsItsCaller(t *testing.T) {
	a := startAgent(t, quietConfig())
	const wrong = "gk_not-a-key-we-know-0000"
	req, _ := http.NewRequest("POST", a.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"sim-small","messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", "Bearer "+wrong)
	req.Header.Set("User-Agent", "billing-batch/2.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	tr := a.waitTrace(resp.Header.Get("X-Request-Id"))
	fp := config.KeyFingerprint(wrong)
	if tr.KeyFP != fp || tr.UserAgent != "billing-batch/2.1" || !strings.HasPrefix(tr.ClientAddr, "127.0.0.1:") {
		t.Fatalf("refused trace: key_fp %q user_agent %q client %q; want %q, billing-batch/2.1, 127.0.0.1:*", tr.KeyFP, tr.UserAgent, tr.ClientAddr, fp)
	}
	if strings.Contains(tr.KeyFP, wrong) || tr.Key != "" {
		t.Fatalf("trace holds the key: %+v", tr)
	}
	for _, q := range []url.Values{{"key_fp": {fp}}, {"error_kind": {"invalid_api_key"}}, {"q": {"billing-batch"}}} {
		list := decode[api.TraceList](t, a.admin(api.PathTraces+"?"+q.Encode()))
		if len(list.Traces) != 1 || list.Traces[0].ID != tr.ID || list.Traces[0].KeyFP != fp {
			t.Fatalf("search %v: %+v, want the refused call", q, list.Traces)
		}
	}
}
