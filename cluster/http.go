package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"gantry/cluster/command"
	"gantry/cluster/state"
)

// SecretHeader carries the cluster secret between agents.
const SecretHeader = "X-Gantry-Cluster-Secret"

// forwardedHeader marks a request one agent forwarded to the leader, so a
// leader that has just lost leadership answers instead of forwarding again.
const forwardedHeader = "X-Gantry-Forwarded"

// Paths of the cluster API that Handler serves. The agent mounts Handler at
// PathPrefix on its admin server.
const (
	PathPrefix = "/cluster/v1/"
	pathJoin   = "/cluster/v1/join"
	pathNotify = "/cluster/v1/notify"
	pathApply  = "/cluster/v1/apply"
	pathRead   = "/cluster/v1/read"
	pathRemove = "/cluster/v1/remove"
	pathStatus = "/cluster/v1/status"
)

// maxBody bounds a request body of the cluster API.
const maxBody = command.MaxBytes + 64<<10

// errTransport marks a failure to reach another agent, after which a
// forwarded command's outcome is unknown and it is retried.
var errTransport = errors.New("cluster transport")

// Handler serves the cluster API: join, bootstrap announcements, forwarded
// writes and reads, member removal and status. Every request must carry the
// cluster secret in SecretHeader.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathJoin, n.handleJoin)
	mux.HandleFunc("POST "+pathNotify, n.handleNotify)
	mux.HandleFunc("POST "+pathApply, n.handleApply)
	mux.HandleFunc("POST "+pathRead, n.handleRead)
	mux.HandleFunc("POST "+pathRemove, n.handleRemove)
	mux.HandleFunc("GET "+pathStatus, n.handleStatus)
	mux.HandleFunc("GET "+pathBlobs+"{hash}", n.handleBlob)
	return n.authenticate(mux)
}

func (n *Node) authenticate(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(n.opts.Secret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get(SecretHeader)))
		// Comparing digests keeps the comparison constant-time whatever
		// the lengths.
		if n.opts.Secret == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			writeError(w, ErrForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// HTTPStatus maps an error of this package or of cluster/state to the status
// an admin API answers with.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, state.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, state.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, state.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, state.ErrStale):
		return http.StatusPreconditionFailed
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, state.ErrUnknownCommand):
		return http.StatusNotImplemented
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader), errors.Is(err, ErrHalted), errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// codes name the sentinels on the wire so a forwarding agent gets the same
// error its caller would have got from the leader.
var codes = []struct {
	code string
	err  error
}{
	{"invalid", state.ErrInvalid},
	{"not_found", state.ErrNotFound},
	{"conflict", state.ErrConflict},
	{"stale", state.ErrStale},
	{"unknown_command", state.ErrUnknownCommand},
	{"forbidden", ErrForbidden},
	{"halted", ErrHalted},
	{"not_leader", ErrNotLeader},
	{"no_leader", ErrNoLeader},
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	var body errorBody
	body.Error.Code = "internal"
	for _, c := range codes {
		if errors.Is(err, c.err) {
			body.Error.Code = c.code
			break
		}
	}
	body.Error.Message = err.Error()
	writeJSON(w, HTTPStatus(err), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %w", state.ErrInvalid, err)
	}
	return nil
}

func (n *Node) handleApply(w http.ResponseWriter, r *http.Request) {
	var env command.Envelope
	if err := readJSON(r, &env); err != nil {
		writeError(w, err)
		return
	}
	if err := env.Check(); err != nil {
		writeError(w, fmt.Errorf("%w: %w", state.ErrInvalid, err))
		return
	}
	res, err := n.applyLocal(r.Context(), env)
	if err != nil {
		writeError(w, leaderErr(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// leaderErr turns raft's leadership errors into ErrNotLeader, so the agent
// that forwarded retries elsewhere.
func leaderErr(err error) error {
	if errors.Is(err, ErrClosed) || errors.Is(err, raft.ErrRaftShutdown) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	if retryable(err) && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}

type readReply struct {
	Index uint64 `json:"index"`
}

func (n *Node) handleRead(w http.ResponseWriter, r *http.Request) {
	index, err := n.readIndex(r.Context())
	if err != nil {
		writeError(w, leaderErr(err))
		return
	}
	writeJSON(w, http.StatusOK, readReply{Index: index})
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	var m state.Member
	if err := readJSON(r, &m); err != nil {
		writeError(w, err)
		return
	}
	var err error
	if n.IsLeader() {
		err = n.addMember(r.Context(), m)
	} else if r.Header.Get(forwardedHeader) != "" {
		err = ErrNotLeader
	} else {
		err = n.forward(r.Context(), pathJoin, m, nil)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Leader string `json:"leader"`
	}{n.Leader()})
}

func (n *Node) handleNotify(w http.ResponseWriter, r *http.Request) {
	var m state.Member
	if err := readJSON(r, &m); err != nil {
		writeError(w, err)
		return
	}
	if m.ID == "" || m.RaftAddr == "" {
		writeError(w, fmt.Errorf("%w: announcement needs an id and a raft address", state.ErrInvalid))
		return
	}
	n.mu.Lock()
	if len(n.announced) < state.MaxMembers || n.announced[m.ID] != (state.Member{}) {
		n.announced[m.ID] = m
	}
	n.mu.Unlock()
	writeJSON(w, http.StatusOK, struct{}{})
}

type removeRequest struct {
	ID string `json:"id"`
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req removeRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var err error
	if n.IsLeader() {
		err = n.removeLocal(r.Context(), req.ID)
	} else if r.Header.Get(forwardedHeader) != "" {
		err = ErrNotLeader
	} else {
		err = n.forward(r.Context(), pathRemove, req, nil)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Status())
}

// leaderURL is the admin URL of the leader, from the member directory.
func (n *Node) leaderURL() (string, error) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", ErrNoLeader
	}
	if string(id) == n.opts.NodeID {
		// Raft names this node leader but it is stepping up or down.
		return "", fmt.Errorf("%w: leadership is changing", ErrNoLeader)
	}
	m, ok := n.State().Member(string(id))
	if !ok || m.HTTPAddr == "" {
		return "", fmt.Errorf("%w: leader %s has not announced its admin address yet", ErrNoLeader, id)
	}
	return m.HTTPAddr, nil
}

// forward sends a request to the leader's cluster API.
func (n *Node) forward(ctx context.Context, path string, in, out any) error {
	base, err := n.leaderURL()
	if err != nil {
		return err
	}
	return n.send(ctx, http.MethodPost, base, path, in, out, true)
}

func (n *Node) forwardApply(ctx context.Context, env command.Envelope) (state.Result, error) {
	var res state.Result
	err := n.forward(ctx, pathApply, env, &res)
	return res, err
}

func (n *Node) forwardReadIndex(ctx context.Context) (uint64, error) {
	var rep readReply
	for wait := 20 * time.Millisecond; ; wait = min(wait*2, 500*time.Millisecond) {
		// This agent may win the election while it waits for a leader;
		// then the read is its own to answer.
		var err error
		if n.IsLeader() {
			var index uint64
			if index, err = n.readIndex(ctx); err == nil {
				return index, nil
			}
		} else if err = n.forward(ctx, pathRead, struct{}{}, &rep); err == nil {
			return rep.Index, nil
		}
		if !retryable(err) {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("consistent read: %w: %w", ctx.Err(), err)
		case <-n.ctx.Done():
			return 0, ErrClosed
		case <-time.After(wait):
		}
	}
}

// call makes one authenticated request to another agent.
func (n *Node) call(ctx context.Context, method, base, path string, in, out any) error {
	return n.send(ctx, method, base, path, in, out, false)
}

// send makes one authenticated request; forwarded marks a request relayed
// to the leader on another agent's behalf.
func (n *Node) send(ctx context.Context, method, base, path string, in, out any, forwarded bool) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return fmt.Errorf("%w: %s%s: %w", errTransport, base, path, err)
	}
	req.Header.Set(SecretHeader, n.opts.Secret)
	if forwarded {
		req.Header.Set(forwardedHeader, n.opts.NodeID)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s%s: %w", errTransport, base, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%w: read %s%s: %w", errTransport, base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return fmt.Errorf("%w: %s%s: status %d", errTransport, base, path, resp.StatusCode)
		}
		for _, c := range codes {
			if c.code == eb.Error.Code {
				return fmt.Errorf("%w: %s (from %s)", c.err, strings.TrimSpace(eb.Error.Message), base)
			}
		}
		return fmt.Errorf("%s%s: %s", base, path, eb.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: decode %s%s reply: %w", errTransport, base, path, err)
		}
	}
	return nil
}
