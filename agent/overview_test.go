package agent

import (
	"net/http"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
)

// TestOverviewEndpoint serves real traffic and reads the overview.
func TestOverviewEndpoint(t *testing.T) {
	a := startAgent(t, quietConfig())
	for range 5 {
		resp := a.post("/v1/features/ticket-triage/invoke", `{"vars":{"ticket":"My parcel never arrived"}}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("invoke: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.s.store.Stats().Count < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	o := decode[api.Overview](t, a.admin(api.PathOverview+"?window=60"))
	if o.Node != "test" || o.WindowSeconds != 60 || o.RequestsPerSec <= 0 || o.P95 <= 0 {
		t.Fatalf("overview: %+v", o)
	}
	if len(o.Features) != 1 || o.Features[0].Feature != "ticket-triage" || o.Features[0].Requests != 5 {
		t.Fatalf("features: %+v", o.Features)
	}
	if len(o.Releases) != 1 || o.Releases[0].Label != config.LabelProduction || o.Releases[0].Version == 0 {
		t.Fatalf("releases: %+v", o.Releases)
	}
	for _, bad := range []string{"?window=5", "?window=x", "?window=99999"} {
		resp := a.admin(api.PathOverview + bad)
		e := decode[api.ErrorResponse](t, resp)
		if resp.StatusCode != http.StatusBadRequest || e.Error.Code != api.CodeBadRequest {
			t.Errorf("%s: %d %+v, want 400 bad_request", bad, resp.StatusCode, e)
		}
	}
	req, _ := http.NewRequest("GET", a.srv.URL+api.PathOverview, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d, want 401", resp.StatusCode)
	}
}
