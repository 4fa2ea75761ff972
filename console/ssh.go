package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/gliderlabs/ssh"
	"github.com/muesli/termenv"
	gossh "golang.org/x/crypto/ssh"
)

// ReadOnlyMarker in an authorized_keys line, as an option before the key
// type or as a word of the comment, makes that key's sessions read-only:
//
//	gantry-readonly ssh-ed25519 AAAA... observer@example
//	ssh-ed25519 AAAA... alice@example gantry-readonly
const ReadOnlyMarker = "gantry-readonly"

// SSHOptions configure the console's SSH listener.
type SSHOptions struct {
	Options               // every session's console; ReadOnly makes all sessions read-only
	Addr           string // listen address, e.g. 127.0.0.1:2222
	AuthorizedKeys string // authorized_keys file; read at every login, so edits apply at once
	// HostKey is the server's ed25519 key file; it is generated on first
	// start and kept. Empty means DefaultHostKeyPath(AuthorizedKeys).
	HostKey string
	// Ready, when set, is called with the bound address once listening.
	Ready func(addr string)
}

// DefaultHostKeyPath is where the host key lives when --host-key is not
// given: the user's configuration directory, or next to the authorized
// keys file when there is none.
func DefaultHostKeyPath(authorizedKeys string) string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "gantry", "ssh_host_ed25519_key")
	}
	return filepath.Join(filepath.Dir(authorizedKeys), "gantry_ssh_host_ed25519_key")
}

// authorizedKey is one admitted public key.
type authorizedKey struct {
	key      gossh.PublicKey
	comment  string
	readOnly bool
}

// LoadAuthorizedKeys parses an authorized_keys file. Blank lines and
// comments are skipped; a line that does not parse is an error naming it.
func LoadAuthorizedKeys(path string) ([]authorizedKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	var out []authorizedKey
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, comment, opts, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("authorized keys %s:%d: %w", path, n, err)
		}
		ak := authorizedKey{key: key, comment: comment}
		for _, o := range opts {
			ak.readOnly = ak.readOnly || o == ReadOnlyMarker
		}
		for _, w := range strings.Fields(comment) {
			ak.readOnly = ak.readOnly || w == ReadOnlyMarker
		}
		out = append(out, ak)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("authorized keys %s: no keys", path)
	}
	return out, nil
}

// LoadOrCreateHostKey reads an OpenSSH private key, or generates an
// ed25519 key and writes it (mode 0600) when the file does not exist.
func LoadOrCreateHostKey(path string) (gossh.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		block, merr := gossh.MarshalPrivateKey(priv, "gantry console host key")
		if merr != nil {
			return nil, merr
		}
		b = pem.EncodeToMemory(block)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("host key: %w", err)
		}
		// O_EXCL: two consoles starting at once must not both write.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateHostKey(path)
		}
		if err != nil {
			return nil, fmt.Errorf("host key: %w", err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return nil, fmt.Errorf("host key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("host key %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	s, err := gossh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return s, nil
}

// SSHServer serves the console over SSH: every session with a terminal
// gets its own program, renderer and agent connections; sessions without
// one are refused.
type SSHServer struct {
	opts SSHOptions
	srv  *ssh.Server
	ln   net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // sessions
}

type ctxKey int

const (
	keyReadOnly ctxKey = iota
	keyOperator
)

// NewSSHServer loads the host key and the authorized keys and listens on
// opts.Addr. Serve starts answering.
func NewSSHServer(o SSHOptions) (*SSHServer, error) {
	if o.AuthorizedKeys == "" {
		return nil, errors.New("--ssh-listen needs --authorized-keys FILE")
	}
	if _, err := LoadAuthorizedKeys(o.AuthorizedKeys); err != nil {
		return nil, err
	}
	if o.HostKey == "" {
		o.HostKey = DefaultHostKeyPath(o.AuthorizedKeys)
	}
	signer, err := LoadOrCreateHostKey(o.HostKey)
	if err != nil {
		return nil, err
	}
	s := &SSHServer{opts: o}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &ssh.Server{
		Handler:          s.session,
		PublicKeyHandler: s.admit,
		IdleTimeout:      0,
		MaxTimeout:       0,
	}
	s.srv.AddHostKey(signer)
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	s.ln = ln
	return s, nil
}

// Addr is the bound address.
func (s *SSHServer) Addr() string { return s.ln.Addr().String() }

// Serve answers connections until Close; it returns nil after Close.
func (s *SSHServer) Serve() error {
	if s.opts.Ready != nil {
		s.opts.Ready(s.Addr())
	}
	err := s.srv.Serve(s.ln)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops listening, ends every session and waits for them.
func (s *SSHServer) Close() error {
	s.cancel()
	err := s.srv.Close()
	s.wg.Wait()
	if errors.Is(err, ssh.ErrServerClosed) {
		err = nil
	}
	return err
}

// admit accepts only the listed keys, reading the file anew so a removed
// key is refused at once.
func (s *SSHServer) admit(ctx ssh.Context, key ssh.PublicKey) bool {
	keys, err := LoadAuthorizedKeys(s.opts.AuthorizedKeys)
	if err != nil {
		return false
	}
	for _, k := range keys {
		if ssh.KeysEqual(k.key, key) {
			ctx.SetValue(keyReadOnly, k.readOnly)
			ctx.SetValue(keyOperator, fmt.Sprintf("ssh:%s %s", ctx.User(), gossh.FingerprintSHA256(key)))
			return true
		}
	}
	return false
}

// session runs one operator's console.
func (s *SSHServer) session(sess ssh.Session) {
	s.wg.Add(1)
	defer s.wg.Done()
	pty, winCh, isPty := sess.Pty()
	if !isPty {
		fmt.Fprintln(sess.Stderr(), "Gantry console needs a terminal: connect with ssh -t.")
		sess.Exit(1)
		return
	}
	o := s.opts.Options
	ro, _ := sess.Context().Value(keyReadOnly).(bool)
	o.ReadOnly = o.ReadOnly || ro
	o.Operator, _ = sess.Context().Value(keyOperator).(string)
	o.Renderer = sessionRenderer(sess, pty)

	// The session's context ends when the client goes away; the server's
	// when it closes.
	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	env := append(sess.Environ(), "TERM="+pty.Term)
	relay := func(ctx context.Context, send func(tea.Msg)) {
		for {
			select {
			case <-ctx.Done():
				return
			case w, ok := <-winCh: // the first is the PTY's size
				if !ok {
					return
				}
				send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
			}
		}
	}
	err := run(ctx, o, sess, sess, relay, tea.WithEnvironment(env), tea.WithoutSignalHandler())
	code := 0
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "gantry console: %v\r\n", err)
		code = 1
	}
	sess.Exit(code)
}

// sessionRenderer is a lipgloss renderer for the session's terminal, so
// one operator's colour support never decides another's.
func sessionRenderer(sess ssh.Session, pty ssh.Pty) *lipgloss.Renderer {
	env := sshEnv(append(sess.Environ(), "TERM="+pty.Term))
	return lipgloss.NewRenderer(sess, termenv.WithEnvironment(env), termenv.WithTTY(true), termenv.WithUnsafe(), termenv.WithColorCache(true))
}

// sshEnv is a session's environment for termenv.
type sshEnv []string

func (e sshEnv) Environ() []string { return e }

func (e sshEnv) Getenv(k string) string {
	for i := len(e) - 1; i >= 0; i-- {
		if name, v, ok := strings.Cut(e[i], "="); ok && name == k {
			return v
		}
	}
	return ""
}
