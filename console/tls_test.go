package console

import (
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"gantry/api"
	"gantry/tlsconf"
	"gantry/tlsconf/tlstest"
)

// serveTLS serves a fake agent's handler again, behind mutual TLS with
// files' certificate.
func serveTLS(t *testing.T, a *fakeAgent, files tlsconf.Files) *httptest.Server {
	t.Helper()
	creds, err := tlsconf.LoadPeer(files)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.srv.Config.Handler)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	// The agent's configuration as it is; StartTLS would add httptest's
	// own certificate.
	srv.Listener = tls.NewListener(srv.Listener, creds.Server())
	srv.Start()
	srv.URL = "https://" + srv.Listener.Addr().String()
	t.Cleanup(func() {
		a.dropFeeds()
		srv.Close()
	})
	return srv
}

func TestFleetOverMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "gantry test CA")
	a, b := newFakeAgent(t, "n1"), newFakeAgent(t, "n2")
	as, bs := serveTLS(t, a, ca.Issue(t, "n1")), serveTLS(t, b, ca.Issue(t, "n2"))
	a.members = &api.Members{Leader: "n1", Members: []api.Member{
		{ID: "n1", HTTPAddr: as.URL, Role: api.RoleLeader, Voter: true, Healthy: true},
		{ID: "n2", HTTPAddr: bs.URL, Role: api.RoleFollower, Voter: true, Healthy: true},
	}}
	operator, err := tlsconf.LoadClient(ca.Issue(t, "operator"))
	if err != nil {
		t.Fatal(err)
	}

	// A bare host:port means https when the console has a certificate.
	c, err := NewTLSClient(strings.TrimPrefix(as.URL, "https://"), testToken, operator.Client())
	if err != nil {
		t.Fatal(err)
	}
	if node, err := c.Health(testCtx(t)); err != nil || node != "n1" {
		t.Fatalf("health over mutual TLS: %q, %v", node, err)
	}
	// Without a certificate of the CA the agent refuses the connection.
	other, err := tlsconf.LoadClient(tlstest.NewCA(t, "another CA").Issue(t, "stranger"))
	if err != nil {
		t.Fatal(err)
	}
	strangerTLS := other.Client()
	strangerTLS.RootCAs = operator.Client().RootCAs // it trusts the agent; the agent does not trust it
	noCert, err := tlsconf.LoadClient(tlsconf.Files{CA: ca.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no certificate", noCert.Client()},
		{"a certificate of another CA", strangerTLS},
	} {
		sc, err := NewTLSClient(as.URL, testToken, tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Health(testCtx(t)); err == nil {
			t.Errorf("%s: the agent answered", tc.name)
		}
	}

	// The fleet reaches every member over mutual TLS.
	f, _ := runFleet(t, FleetOptions{Agents: []string{as.URL}, TLS: operator.Client()})
	waitOpenFeeds(t, a, 1)
	waitOpenFeeds(t, b, 1)
	if got := f.Agents(); !reflect.DeepEqual(got, []string{"n1", "n2"}) {
		t.Fatalf("agents %v, want [n1 n2]", got)
	}
}
