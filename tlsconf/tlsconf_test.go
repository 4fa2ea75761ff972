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
	if s.MinVersion != tls.VersionTLS13 || s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil || len(s.Certificates) != 1 {
		t.Errorf("server config: min %x, client auth %v, CAs %v, %d certificates", s.MinVersion, s.ClientAuth, s.ClientCAs != nil, len(s.Certificates))
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
