package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/tlsconf"
	"gantry/tlsconf/tlstest"
)

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one naming %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestLoadPeer(t *testing.T) {
	ca := tlstest.NewCA(t, "gantry test CA")
	f := ca.Issue(t, "n1")
	c, err := tlsconf.LoadPeer(f)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server()
	if s.MinVersion != tls.VersionTLS13 || s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil || s.GetCertificate == nil {
		t.Errorf("server config: min %x, client auth %v, CAs %v, certificate %v", s.MinVersion, s.ClientAuth, s.ClientCAs != nil, s.GetCertificate != nil)
	}
	p := c.Peer()
	if p.RootCAs == nil || p.GetClientCertificate == nil || p.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("peer config does not both present and verify certificates")
	}
	if err := c.CheckHost("127.0.0.1"); err != nil {
		t.Errorf("127.0.0.1: %v", err)
	}
	if err := c.CheckHost("0.0.0.0"); err != nil {
		t.Errorf("an unspecified address is not checked: %v", err)
	}
	wantErr(t, c.CheckHost("10.9.8.7"), "10.9.8.7", "subject alternative name")
}

func TestLoadPeerNamesWhatIsWrong(t *testing.T) {
	ca := tlstest.NewCA(t, "gantry test CA")
	good := ca.Issue(t, "n1")
	other := tlstest.NewCA(t, "another CA").Issue(t, "n2")
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not PEM\n"), 0o600)

	_, err := tlsconf.LoadPeer(tlsconf.Files{Cert: good.Cert})
	wantErr(t, err, "missing --tls-key and --tls-ca")
	_, err = tlsconf.LoadPeer(tlsconf.Files{Cert: good.Cert, Key: good.Key})
	wantErr(t, err, "missing --tls-ca")

	missing := filepath.Join(dir, "absent.crt")
	_, err = tlsconf.LoadPeer(tlsconf.Files{Cert: missing, Key: good.Key, CA: good.CA})
	wantErr(t, err, "--tls-cert "+missing, "no such file")
	_, err = tlsconf.LoadPeer(tlsconf.Files{Cert: junk, Key: good.Key, CA: good.CA})
	wantErr(t, err, "--tls-cert "+junk, "no PEM certificate")
	_, err = tlsconf.LoadPeer(tlsconf.Files{Cert: good.Cert, Key: good.Key, CA: junk})
	wantErr(t, err, "--tls-ca "+junk, "no PEM certificate")
	_, err = tlsconf.LoadPeer(tlsconf.Files{Cert: good.Cert, Key: other.Key, CA: good.CA})
	wantErr(t, err, "--tls-key "+other.Key)
	_, err = tlsconf.LoadPeer(tlsconf.Files{Cert: other.Cert, Key: other.Key, CA: good.CA})
	wantErr(t, err, "--tls-cert "+other.Cert, "not valid", "--tls-ca "+good.CA)

	serverOnly := ca.IssueWith(t, "server-only", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	_, err = tlsconf.LoadPeer(serverOnly)
	wantErr(t, err, "not valid for client authentication")
}

func TestLoadClient(t *testing.T) {
	ca := tlstest.NewCA(t, "gantry test CA")
	f := ca.Issue(t, "operator")
	if c, err := tlsconf.LoadClient(tlsconf.Files{}); c != nil || err != nil {
		t.Errorf("no files: %v, %v; want nil, nil", c, err)
	}
	_, err := tlsconf.LoadClient(tlsconf.Files{Cert: f.Cert, CA: f.CA})
	wantErr(t, err, "--tls-cert "+f.Cert+" needs --tls-key")
	_, err = tlsconf.LoadClient(tlsconf.Files{Key: f.Key})
	wantErr(t, err, "--tls-key "+f.Key+" needs --tls-cert")
	c, err := tlsconf.LoadClient(tlsconf.Files{CA: f.CA})
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.Client(); cc.RootCAs == nil || cc.GetClientCertificate != nil {
		t.Errorf("a CA alone verifies the agent and presents no certificate")
	}
	c, err = tlsconf.LoadClient(f)
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.Client(); cc.MinVersion != tls.VersionTLS13 || cc.GetClientCertificate == nil {
		t.Errorf("client config does not present its certificate over TLS 1.3")
	}
}

// A renewed certificate is served from the next handshake, by a listener
// that was configured before the renewal; a new CA or a broken file is
// refused and the old certificate stays.
func TestReloadServesTheRenewedCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "gantry test CA")
	f := ca.Issue(t, "n1")
	c, err := tlsconf.LoadPeer(f)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.Server())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	op := ca.Issue(t, "operator")
	client, err := tlsconf.LoadClient(op)
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", ln.Addr().String(), client.Client())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := served()

	renewed := ca.Issue(t, "n1") // the same files, a new certificate
	if renewed != f {
		t.Fatalf("renewal wrote %+v, not over %+v", renewed, f)
	}
	if got := served(); got != first {
		t.Fatal("the renewed certificate was served before the reload")
	}
	if err := c.Reload(f); err != nil {
		t.Fatal(err)
	}
	second := served()
	if second == first {
		t.Fatal("the old certificate is still served after the reload")
	}

	other := tlstest.NewCA(t, "another CA").Issue(t, "n1")
	wantErr(t, c.Reload(other), "--tls-ca", "restart")
	if err := os.WriteFile(f.Key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Reload(f), "--tls-key")
	if got := served(); got != second {
		t.Fatal("a refused reload changed the served certificate")
	}
}
