package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// openTransport listens for Raft on bind: plain TCP, or mutual TLS when
// conf is set.
func openTransport(bind string, advertise net.Addr, conf *tls.Config, logger hclog.Logger) (*raft.NetworkTransport, error) {
	if conf == nil {
		return raft.NewTCPTransportWithConfig(bind, advertise, transportConfig(nil, logger))
	}
	if len(conf.Certificates) == 0 && conf.GetCertificate == nil {
		return nil, errors.New("raft TLS: no certificate")
	}
	if conf.ClientCAs == nil || conf.RootCAs == nil {
		return nil, errors.New("raft TLS: no CA to verify peers with")
	}
	// Whatever the caller built, the transport is TLS 1.3 and mutual:
	// a peer that cannot show a certificate the CA signed gets nothing.
	c := conf.Clone()
	c.MinVersion = tls.VersionTLS13
	c.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &tlsStream{ln: tls.NewListener(ln, c), advertise: advertise, conf: c}
	if a, ok := s.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s cannot be dialed by other agents; name an interface", s.Addr())
	}
	return raft.NewNetworkTransportWithConfig(transportConfig(s, logger)), nil
}

// transportConfig is every Raft transport's configuration. Pipelined
// replication is off (one AppendEntries in flight per follower): with
// raft's default of two in flight, a follower answering with a newer term
// can leave the replication goroutine blocked on a pipeline nobody reads,
// so that follower gets no more entries while heartbeats still reach it,
// and shutting the node down waits forever. An agent stopping under load
// hung that way. Configuration and spend traffic gains nothing from the
// pipeline.
func transportConfig(s raft.StreamLayer, logger hclog.Logger) *raft.NetworkTransportConfig {
	return &raft.NetworkTransportConfig{Stream: s, MaxPool: 3, Timeout: 10 * time.Second, Logger: logger, MaxRPCsInFlight: 1}
}

// tlsStream is a raft.StreamLayer over TLS. Accepted connections finish
// their handshake on the first read, in the transport's per-connection
// goroutine, so a slow or refused peer never holds up the accept loop.
type tlsStream struct {
	ln        net.Listener
	advertise net.Addr
	conf      *tls.Config
}

func (s *tlsStream) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *tlsStream) Close() error              { return s.ln.Close() }

func (s *tlsStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// Dial connects and completes the handshake within timeout, verifying the
// peer's certificate against the CA and the host it was dialed at.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c := s.conf
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			return nil, fmt.Errorf("raft address %q: %w", address, err)
		}
		c = c.Clone()
		c.ServerName = host
	}
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(address), c)
}

// certRefused reports whether err is a peer's certificate this agent could
// not verify: a configuration error that waiting does not fix, unlike a
// peer that is down.
func certRefused(err error) bool {
	var v *tls.CertificateVerificationError
	return errors.As(err, &v)
}
