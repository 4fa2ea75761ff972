package console

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// newClientKey is a fresh ed25519 key and its authorized_keys line.
func newClientKey(t *testing.T) (gossh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

// startSSH serves the console for agent a with the given authorized_keys
// content until the test ends.
func startSSH(t *testing.T, a *fakeAgent, authorized, hostKey string) *SSHServer {
	t.Helper()
	dir := t.TempDir()
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(authorized), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := NewSSHServer(SSHOptions{
		Options:        Options{FleetOptions: FleetOptions{Agents: []string{a.srv.URL}, Token: testToken, PollEvery: 100 * time.Millisecond}},
		Addr:           "127.0.0.1:0",
		AuthorizedKeys: ak,
		HostKey:        hostKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv
}

func dial(t *testing.T, addr string, key gossh.Signer, hostKeys *[]gossh.PublicKey) (*gossh.Client, error) {
	t.Helper()
	return gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User: "ana",
		Auth: []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error {
			if hostKeys != nil {
				*hostKeys = append(*hostKeys, k)
			}
			return nil
		},
		Timeout: 5 * time.Second,
	})
}

// syncBuffer is a bytes.Buffer safe to read while a session writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitOutput(t *testing.T, out *syncBuffer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s, ok := out.String(), true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("screen never showed %q; it shows:\n%s", want, out.String())
}

func TestSSHConsole(t *testing.T) {
	a := newFakeAgent(t, "n1")
	operator, opLine := newClientKey(t)
	observer, obsLine := newClientKey(t)
	stranger, _ := newClientKey(t)
	hostKey := filepath.Join(t.TempDir(), "host_key")
	authorized := "# operators\n" + opLine + " ana@example\n" + ReadOnlyMarker + " " + obsLine + "\n"
	srv := startSSH(t, a, authorized, hostKey)

	// session opens a shell as key, with a PTY or without.
	session := func(t *testing.T, key gossh.Signer, pty bool) (*gossh.Session, io.WriteCloser, *syncBuffer, *syncBuffer) {
		t.Helper()
		c, err := dial(t, srv.Addr(), key, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if pty {
			if err := s.RequestPty("xterm-256color", 40, 120, gossh.TerminalModes{}); err != nil {
				t.Fatal(err)
			}
		}
		in, err := s.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, errOut := &syncBuffer{}, &syncBuffer{}
		s.Stdout, s.Stderr = out, errOut
		if err := s.Shell(); err != nil {
			t.Fatal(err)
		}
		return s, in, out, errOut
	}

	t.Run("pty gets the console", func(t *testing.T) {
		s, in, out, _ := session(t, operator, true)
		waitOutput(t, out, "Gantry console", "Overview  from n1")
		in.Write([]byte("4"))
		waitOutput(t, out, "cccccccc") // the releases arrived over this session's own fleet
		if strings.Contains(out.String(), "READ-ONLY") {
			t.Fatal("an operator key got a read-only console")
		}
		// The PTY's window changes reach the program.
		if err := s.WindowChange(20, 50); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, out, "Terminal too small: 50x20")
		in.Write([]byte("q"))
		if err := waitSession(s); err != nil {
			t.Fatalf("quit: %v", err)
		}
	})
	t.Run("read-only key", func(t *testing.T) {
		s, in, out, _ := session(t, observer, true)
		waitOutput(t, out, "[READ-ONLY]")
		in.Write([]byte("4"))
		waitOutput(t, out, "cccccccc")
		in.Write([]byte("p"))
		waitOutput(t, out, "read-only: promote is disabled")
		in.Write([]byte{3}) // ctrl+c quits too
		if err := waitSession(s); err != nil {
			t.Fatalf("quit: %v", err)
		}
	})
	t.Run("no pty is refused", func(t *testing.T) {
		s, _, out, errOut := session(t, operator, false)
		err := waitSession(s)
		var exit *gossh.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
			t.Fatalf("session without a PTY ended with %v, want exit status 1", err)
		}
		if !strings.Contains(errOut.String(), "needs a terminal") || strings.Contains(out.String(), "Gantry console") {
			t.Fatalf("stderr %q stdout %q: want a refusal and no console", errOut.String(), out.String())
		}
	})
	t.Run("unknown key is refused", func(t *testing.T) {
		if c, err := dial(t, srv.Addr(), stranger, nil); err == nil {
			c.Close()
			t.Fatal("a key not in authorized_keys was admitted")
		}
	})
	if moves, _ := a.labelMoves(); len(moves) != 0 {
		t.Fatalf("sessions sent moves: %+v", moves)
	}
}

func waitSession(s *gossh.Session) error {
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		s.Close()
		return errors.New("session did not end within 10s")
	}
}

// TestSSHHostKeyPersists: the host key is made once and kept, so clients
// see the same key after a restart.
func TestSSHHostKeyPersists(t *testing.T) {
	a := newFakeAgent(t, "n1")
	key, line := newClientKey(t)
	hostKey := filepath.Join(t.TempDir(), "keys", "host_key")
	var seen []gossh.PublicKey
	for range 2 {
		srv := startSSH(t, a, line+"\n", hostKey)
		c, err := dial(t, srv.Addr(), key, &seen)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if len(seen) != 2 || !bytes.Equal(seen[0].Marshal(), seen[1].Marshal()) || seen[0].Type() != gossh.KeyAlgoED25519 {
		t.Fatalf("host keys %v, want the same ed25519 key twice", seen)
	}
	fi, err := os.Stat(hostKey)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v, mode %v, want 0600", err, fi.Mode())
	}
}

func TestLoadAuthorizedKeys(t *testing.T) {
	_, k1 := newClientKey(t)
	_, k2 := newClientKey(t)
	_, k3 := newClientKey(t)
	for _, tc := range []struct {
		name     string
		content  string
		readOnly []bool
		err      string
	}{
		{"plain, option and comment marker", "\n# comment\n" + k1 + " ana\n" + ReadOnlyMarker + " " + k2 + " bob\n" + k3 + " carol " + ReadOnlyMarker + "\n", []bool{false, true, true}, ""},
		{"garbage line", k1 + "\nnot a key\n", nil, ":2:"},
		{"empty", "# nobody\n", nil, "no keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ak")
			os.WriteFile(p, []byte(tc.content), 0o600)
			keys, err := LoadAuthorizedKeys(p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || len(keys) != len(tc.readOnly) {
				t.Fatalf("%v: %d keys", err, len(keys))
			}
			for i, k := range keys {
				if k.readOnly != tc.readOnly[i] {
					t.Errorf("key %d read-only %v, want %v", i, k.readOnly, tc.readOnly[i])
				}
			}
		})
	}
}
