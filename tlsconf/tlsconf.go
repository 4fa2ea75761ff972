// Package tlsconf loads the PEM files of Gantry's mutual TLS and builds the
// tls.Configs that agents, the CLI and the console use. Every connection
// is TLS 1.3; an agent requires a client certificate its CA verifies, and
// every dialer verifies the server against the CA and the name it dialed.
package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Files names the PEM files, as the --tls-cert, --tls-key and --tls-ca
// flags do.
type Files struct {
	Cert string // certificate, optionally followed by intermediates
	Key  string // the certificate's private key
	CA   string // the certificates that verify peers
}

// Any reports whether any file is named.
func (f Files) Any() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Creds are a loaded certificate and the CA pool that verifies peers.
// The certificate can be replaced while configurations built from Creds
// are in use (Reload); the CA cannot.
type Creds struct {
	cur   atomic.Pointer[keyPair] // nil for a client without a certificate
	roots *x509.CertPool          // nil: the system's roots (clients only)
	caPEM []byte
}

type keyPair struct {
	cert *tls.Certificate
	leaf *x509.Certificate
}

func (c *Creds) pair() *keyPair { return c.cur.Load() }

// Reload reads f again and, if it is a valid agent certificate under the
// same CA, serves it from the next handshake on; connections already open
// keep the old one. A changed CA file is refused: peers' pools would have
// to change at the same moment, which takes a restart of every agent.
func (c *Creds) Reload(f Files) error {
	n, err := LoadPeer(f)
	if err != nil {
		return err
	}
	if !bytes.Equal(n.caPEM, c.caPEM) {
		return fmt.Errorf("--tls-ca %s changed; a new CA takes a restart of every agent", f.CA)
	}
	c.cur.Store(n.pair())
	return nil
}

// NotAfter is when the current certificate expires.
func (c *Creds) NotAfter() time.Time {
	if p := c.pair(); p != nil {
		return p.leaf.NotAfter
	}
	return time.Time{}
}

// LoadPeer loads an agent's files. All three are required; the
// certificate must chain to the CA and allow both server and client
// authentication, because agents dial each other with it too.
func LoadPeer(f Files) (*Creds, error) {
	var missing []string
	for _, m := range []struct{ flag, path string }{{"--tls-cert", f.Cert}, {"--tls-key", f.Key}, {"--tls-ca", f.CA}} {
		if m.path == "" {
			missing = append(missing, m.flag)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("mutual TLS needs --tls-cert, --tls-key and --tls-ca; missing %s", strings.Join(missing, " and "))
	}
	c, err := load(f)
	if err != nil {
		return nil, err
	}
	p := c.pair()
	inter := x509.NewCertPool()
	for _, der := range p.cert.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	for _, u := range []struct {
		usage x509.ExtKeyUsage
		name  string
	}{{x509.ExtKeyUsageServerAuth, "server"}, {x509.ExtKeyUsageClientAuth, "client"}} {
		opts := x509.VerifyOptions{Roots: c.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{u.usage}}
		if _, err := p.leaf.Verify(opts); err != nil {
			return nil, fmt.Errorf("--tls-cert %s is not valid for %s authentication under --tls-ca %s: %w", f.Cert, u.name, f.CA, err)
		}
	}
	return c, nil
}

// LoadClient loads the files of the CLI or the console: the certificate
// and key go together; without a CA the system's roots verify the agent.
// It returns nil when no file is named.
func LoadClient(f Files) (*Creds, error) {
	switch {
	case !f.Any():
		return nil, nil
	case f.Cert != "" && f.Key == "":
		return nil, fmt.Errorf("--tls-cert %s needs --tls-key", f.Cert)
	case f.Key != "" && f.Cert == "":
		return nil, fmt.Errorf("--tls-key %s needs --tls-cert", f.Key)
	}
	return load(f)
}

func load(f Files) (*Creds, error) {
	c := &Creds{}
	if f.CA != "" {
		pem, err := read("--tls-ca", f.CA)
		if err != nil {
			return nil, err
		}
		c.roots, c.caPEM = x509.NewCertPool(), pem
		if !c.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", f.CA)
		}
	}
	if f.Cert == "" {
		return c, nil
	}
	certPEM, err := read("--tls-cert", f.Cert)
	if err != nil {
		return nil, err
	}
	if !hasBlock(certPEM, "CERTIFICATE") {
		return nil, fmt.Errorf("--tls-cert %s: no PEM certificate in it", f.Cert)
	}
	keyPEM, err := read("--tls-key", f.Key)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-key %s (the key of --tls-cert %s): %w", f.Key, f.Cert, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: %w", f.Cert, err)
		}
	}
	c.cur.Store(&keyPair{cert: &cert, leaf: cert.Leaf})
	return c, nil
}

func read(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return b, nil
}

func hasBlock(data []byte, typ string) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == typ {
			return true
		}
	}
}

// CheckHost reports whether the certificate names host, the address other
// agents reach this one at; they verify it. An unspecified address
// (0.0.0.0, ::) is not checked: nobody dials it.
func (c *Creds) CheckHost(host string) error {
	if c == nil || c.pair() == nil || host == "" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil
	}
	if err := c.pair().leaf.VerifyHostname(host); err != nil {
		return fmt.Errorf("the --tls-cert certificate does not name %s, the address other agents dial: add it as a subject alternative name (%w)", host, err)
	}
	return nil
}

// Server is the configuration of an agent's listeners: TLS 1.3, and every
// client must present a certificate the CA verifies.
func (c *Creds) Server() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.pair().cert, nil },
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      c.roots,
	}
}

// Client is the configuration of a dialer: TLS 1.3, the server verified
// against the CA (net/http fills in the name it dials), and the
// certificate, if any, presented. Nil Creds give nil: plain defaults.
func (c *Creds) Client() *tls.Config {
	if c == nil {
		return nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.roots}
	if c.pair() != nil {
		// Always present the certificate: Go's default picks one only
		// when its issuer is among the names the server lists, which an
		// intermediate CA can defeat, and then sends none.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.pair().cert, nil }
	}
	return tc
}

// Peer serves both roles at once, for a transport that listens and dials
// with one configuration (Raft's).
func (c *Creds) Peer() *tls.Config {
	tc := c.Server()
	cl := c.Client()
	tc.RootCAs, tc.GetClientCertificate = cl.RootCAs, cl.GetClientCertificate
	return tc
}

// ClientFlags adds --tls-cert, --tls-key and --tls-ca to an operator
// command, defaulting to $GANTRY_TLS_CERT, $GANTRY_TLS_KEY and
// $GANTRY_TLS_CA as --agent and --token default to theirs.
func ClientFlags(fs *flag.FlagSet, f *Files) {
	fs.StringVar(&f.Cert, "tls-cert", os.Getenv("GANTRY_TLS_CERT"), "client certificate (PEM) for agents with mutual TLS (default $GANTRY_TLS_CERT)")
	fs.StringVar(&f.Key, "tls-key", os.Getenv("GANTRY_TLS_KEY"), "the client certificate's private key (PEM) (default $GANTRY_TLS_KEY)")
	fs.StringVar(&f.CA, "tls-ca", os.Getenv("GANTRY_TLS_CA"), "CA certificates (PEM) that verify the agents (default $GANTRY_TLS_CA, else the system's)")
}
