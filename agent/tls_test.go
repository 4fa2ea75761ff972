package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gantry/api"
	"gantry/tlsconf"
	"gantry/tlsconf/tlstest"
)

// tlsClient is an HTTP client that trusts ca and presents files' certificate
// when files is not nil.
func tlsClient(t *testing.T, ca string, files *tlsconf.Files) *http.Client {
	t.Helper()
	f := tlsconf.Files{CA: ca}
	if files != nil {
		f.Cert, f.Key = files.Cert, files.Key
	}
	c, err := tlsconf.LoadClient(f)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c.Client()}}
}

func call(hc *http.Client, method, url, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestMutualTLSAgentServesOnlyCertifiedClients(t *testing.T) {
	ca := tlstest.NewCA(t, "gantry test CA")
	a := startClusterAgent(t, func(o *Options) { o.TLS = ca.Issue(t, "a1") })
	base := "https://" + strings.TrimPrefix(a.base, "http://")
	operator := ca.Issue(t, "operator")
	good := tlsClient(t, ca.CAFile(), &operator)

	// The admin API answers a client with a certificate of the CA.
	var st api.Status
	eventually(t, "the agent serves its replicated configuration over https", func() bool {
		code, body, err := call(good, "GET", base+api.PathStatus, devAdmin, "")
		return err == nil && code == 200 && json.Unmarshal([]byte(body), &st) == nil && st.ServingIndex > 0
	})
	if code, body, err := call(good, "POST", base+"/v1/chat/completions", devKey, `{"model":"cheap","messages":[{"role":"user","content":"hi"}]}`); err != nil || code != 200 {
		t.Fatalf("gateway over mutual TLS: %d %v %s", code, err, body)
	}
	// The member directory tells the console and other agents to use https.
	var ms api.Members
	if code, body, err := call(good, "GET", base+api.PathMembers, devAdmin, ""); err != nil || code != 200 || json.Unmarshal([]byte(body), &ms) != nil {
		t.Fatalf("members: %d %v %s", code, err, body)
	}
	if len(ms.Members) != 1 || ms.Members[0].HTTPAddr != base {
		t.Fatalf("members = %+v, want one at %s", ms.Members, base)
	}

	// Clients without a certificate of the CA get no answer at all, on the
	// gateway, the admin API and the probes alike.
	other := tlstest.NewCA(t, "another CA").Issue(t, "stranger")
	strangers := map[string]*http.Client{
		"no certificate":                      tlsClient(t, ca.CAFile(), nil),
		"a certificate of another CA":         tlsClient(t, ca.CAFile(), &other),
		"no certificate, trusting any server": {Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}},
		"a client of another CA altogether":   tlsClient(t, other.CA, &other),
	}
	for name, hc := range strangers {
		for _, path := range []string{api.PathStatus, "/v1/models", "/healthz"} {
			code, _, err := call(hc, "GET", base+path, devAdmin, "")
			if err == nil {
				t.Errorf("%s: GET %s answered %d; want the connection refused", name, path, code)
			}
		}
	}
	// Plain HTTP to the TLS port is not served either.
	if code, _, err := call(http.DefaultClient, "GET", a.base+"/healthz", "", ""); err == nil && code == 200 {
		t.Error("plain HTTP answered 200 on a mutual TLS agent")
	}
}

func TestMutualTLSStartupErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "gantry test CA")
	good := ca.Issue(t, "a1")
	elsewhere := ca.IssueWith(t, "elsewhere", func(c *x509.Certificate) {
		c.IPAddresses, c.DNSNames = []net.IP{net.ParseIP("10.9.8.7")}, nil
	})
	for _, tc := range []struct {
		name  string
		files tlsconf.Files
		want  string
	}{
		{"a flag missing", tlsconf.Files{Cert: good.Cert, CA: good.CA}, "missing --tls-key"},
		{"a file missing", tlsconf.Files{Cert: good.Cert, Key: good.Key, CA: good.CA + ".absent"}, "--tls-ca " + good.CA + ".absent"},
		{"a certificate for another address", elsewhere, "does not name 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := Run(ctx, Options{Dev: true, HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), NodeID: "a1", TLS: tc.files,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard})
			if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v; want a startup error naming %q", err, tc.want)
			}
		})
	}
}
