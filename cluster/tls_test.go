package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/tlsconf"
	"gantry/tlsconf/tlstest"
)

// startTLSNode is startNode with mutual TLS on both the admin server and
// the Raft transport, using the files of one certificate.
func startTLSNode(t *testing.T, id string, files tlsconf.Files, edit func(*Options)) *testNode {
	t.Helper()
	creds, err := tlsconf.LoadPeer(files)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{}
	tn.srv = httptest.NewUnstartedServer(tn)
	tn.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	startTLS(tn.srv, creds)
	opts := testOptions(t, id)
	opts.HTTPAddr = tn.srv.URL
	opts.TLS = creds.Peer()
	opts.HTTPClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: creds.Client()}}
	if edit != nil {
		edit(&opts)
	}
	tn.opts = opts
	n, err := Open(context.Background(), opts)
	if err != nil {
		tn.srv.Close()
		t.Fatalf("open %s: %v", id, err)
	}
	tn.Node = n
	h := n.Handler()
	tn.h.Store(&h)
	t.Cleanup(tn.stop)
	return tn
}

// startTLSCluster starts three nodes with certificates of ca; the others
// join the first through a bare host:port, which must mean https.
func startTLSCluster(t *testing.T, ca *tlstest.CA) []*testNode {
	t.Helper()
	nodes := []*testNode{startTLSNode(t, "n0", ca.Issue(t, "n0"), func(o *Options) { o.Bootstrap = true })}
	bare := strings.TrimPrefix(nodes[0].srv.URL, "https://")
	for _, id := range []string{"n1", "n2"} {
		nodes = append(nodes, startTLSNode(t, id, ca.Issue(t, id), func(o *Options) { o.Join = []string{bare} }))
	}
	waitFormed(t, nodes)
	return nodes
}

func TestTLSClusterReplicatesFromAFollower(t *testing.T) {
	nodes := startTLSCluster(t, tlstest.NewCA(t, "gantry test CA"))
	f := followerOf(t, nodes)
	res := apply(t, f, env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
	if res.Index == 0 {
		t.Fatal("no index for the write")
	}
	waitConverged(t, nodes)
	for _, n := range nodes {
		if _, ok := n.State().Feature("support"); !ok {
			t.Fatalf("%s lacks the replicated feature", n.ID())
		}
		if got := n.State().Index; got < res.Index {
			t.Fatalf("%s at index %d, write was at %d", n.ID(), got, res.Index)
		}
	}
	// A consistent read on a follower asks the leader over https.
	if _, err := f.ConsistentState(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("consistent read on a follower: %v", err)
	}
	// Status fans out to every member over https, and the directory
	// advertises https addresses.
	for _, m := range mustMembers(t, f) {
		if !strings.HasPrefix(m.HTTPAddr, "https://") || m.Status == nil {
			t.Fatalf("member %s: address %q, status %v, error %q", m.ID, m.HTTPAddr, m.Status, m.Error)
		}
	}
}

func TestTLSClusterRefusesAnotherCA(t *testing.T) {
	nodes := startTLSCluster(t, tlstest.NewCA(t, "gantry test CA"))
	l := leaderOf(t, nodes)
	other := tlstest.NewCA(t, "another CA")
	// The stranger knows the cluster secret; only its certificate is wrong.
	strangerFiles := other.Issue(t, "stranger")
	stranger := startTLSNode(t, "stranger", strangerFiles, nil)

	t.Run("join over https", func(t *testing.T) {
		// A certificate that does not verify is a configuration error:
		// the join stops at once with it instead of retrying in silence.
		err := stranger.Join(ctxT(t, 5*time.Second), []string{l.srv.URL})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("join = %v, want the leader's certificate refused", err)
		}
		if l.inConfiguration(stranger.ID()) {
			t.Fatal("the stranger joined")
		}
	})

	raftAddr := l.RaftAddr()
	dial := func(c *tls.Config) (*tls.Conn, error) {
		c.ServerName = "127.0.0.1"
		return tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", raftAddr, c)
	}
	t.Run("the stranger cannot verify the cluster's raft transport", func(t *testing.T) {
		conn, err := dial(stranger.opts.TLS.Clone())
		if err == nil {
			conn.Close()
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("dial = %v, want the leader's certificate refused", err)
		}
	})

	// A client that trusts the cluster's CA but cannot show a certificate
	// it signed is refused by the raft transport: the connection ends
	// with an alert before it carries a single RPC.
	for _, tc := range []struct {
		name  string
		files *tlsconf.Files
		want  string
	}{
		{"no client certificate", nil, "certificate required"},
		{"client certificate of another CA", &strangerFiles, "unknown certificate authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: l.opts.TLS.RootCAs}
			if tc.files != nil {
				cert, err := tls.LoadX509KeyPair(tc.files.Cert, tc.files.Key)
				if err != nil {
					t.Fatal(err)
				}
				// Present it even though the server asks for another
				// issuer, as a determined stranger would.
				c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
			}
			conn, err := dial(c)
			if err == nil {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(3 * time.Second))
				// A TLS 1.3 client finishes its handshake before the
				// server checks its certificate; the refusal arrives on
				// the first read.
				_, err = conn.Read(make([]byte, 1))
			}
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want the server to refuse the connection: %s", err, tc.want)
			}
		})
	}

	t.Run("a stranger put in the configuration gets nothing", func(t *testing.T) {
		// Even if the leader is made to add it, the transport refuses to
		// talk to it: it never learns a leader or a single command.
		m := state.Member{ID: stranger.ID(), RaftAddr: stranger.RaftAddr(), HTTPAddr: stranger.srv.URL}
		if err := l.addMember(ctxT(t, 5*time.Second), m); err != nil {
			t.Fatal(err)
		}
		res := apply(t, l, env(t, command.ApplyConfig, command.Config{Config: seedConfig()}))
		time.Sleep(1500 * time.Millisecond)
		if got := stranger.State().Index; got != 0 || stranger.Leader() != "" {
			t.Fatalf("stranger at index %d with leader %q; the cluster is at %d", got, stranger.Leader(), res.Index)
		}
	})
}

// startTLS serves srv with an agent's server configuration as it is, not
// with httptest's own certificate, which StartTLS would add.
func startTLS(srv *httptest.Server, creds *tlsconf.Creds) {
	srv.Listener = tls.NewListener(srv.Listener, creds.Server())
	srv.Start()
	srv.URL = "https://" + srv.Listener.Addr().String()
}
