package agent

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"gantry/tlsconf"
)

// loadTLS loads the agent's mutual TLS files; nil when none are named. One
// listener serves the gateway, the admin API and the cluster API, so with
// TLS on every HTTP client needs a certificate the CA signed.
func loadTLS(f tlsconf.Files) (*tlsconf.Creds, error) {
	if !f.Any() {
		return nil, nil
	}
	c, err := tlsconf.LoadPeer(f)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return c, nil
}

// checkTLSHosts fails the start when the certificate does not name the
// hosts other agents will dial: they verify it, and a cluster that cannot
// form would otherwise show only in debug logs.
func (s *Server) checkTLSHosts(httpAddr string) error {
	if s.tls == nil {
		return nil
	}
	raftAddr := s.opts.Cluster.RaftAddr
	if raftAddr == "" {
		raftAddr = DefaultRaftAddr
	}
	for _, a := range []string{httpAddr, raftAddr} {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("agent: address %q: %w", a, err)
		}
		if err := s.tls.CheckHost(host); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	return nil
}

// scheme is how other agents and clients reach this agent's HTTP server.
func (s *Server) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// serve serves HTTP on ln, over TLS when it is on.
func (s *Server) serve(srv *http.Server, ln net.Listener) error {
	if s.tls == nil {
		return srv.Serve(ln)
	}
	srv.TLSConfig = s.tls.Server()
	return srv.ServeTLS(ln, "", "")
}

// raftTLS secures the Raft transport; nil keeps it plain TCP.
func (s *Server) raftTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Peer()
}

// peerClient carries forwarded writes, joins and status calls to other
// agents, presenting this agent's certificate; nil leaves the cluster its
// default client.
func (s *Server) peerClient() *http.Client {
	if s.tls == nil {
		return nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = s.tls.Client()
	return &http.Client{Transport: t, Timeout: 10 * time.Second}
}

// reloadTLS reads the certificate and key again (SIGHUP), so a renewed
// certificate is served from the next handshake without a restart.
func (s *Server) reloadTLS() {
	if s.tls == nil {
		return
	}
	if err := s.tls.Reload(s.opts.TLS); err != nil {
		s.log.Error("certificate reload refused; still serving the previous one", "err", err)
		return
	}
	s.log.Info("certificate reloaded", "file", s.opts.TLS.Cert, "expires", s.tls.NotAfter())
}
