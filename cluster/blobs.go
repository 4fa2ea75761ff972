package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"gantry/cluster/state"
)

// pathBlobs serves document bodies by hash to other agents.
const pathBlobs = "/cluster/v1/blobs/"

// Blobs is what this agent serves to the others: the document bodies its
// blob store holds, by the hash a collection's manifest names them with.
// Get returns an error wrapping ErrBlobNotFound for a body it lacks.
type Blobs interface {
	Get(hash string) ([]byte, error)
}

// ErrBlobNotFound: the agent asked does not hold the body.
var ErrBlobNotFound = errors.New("document body not found")

// ErrBlobMismatch: an agent answered with bytes that are not the body
// asked for; they are dropped.
var ErrBlobMismatch = errors.New("document body does not match its hash")

// handleBlob serves GET /cluster/v1/blobs/{hash}.
func (n *Node) handleBlob(w http.ResponseWriter, r *http.Request) {
	hash := r.PathValue("hash")
	if n.opts.Blobs == nil {
		writeError(w, fmt.Errorf("%w: %s: this agent keeps no document bodies", state.ErrNotFound, hash))
		return
	}
	b, err := n.opts.Blobs.Get(hash)
	if errors.Is(err, ErrBlobNotFound) {
		writeError(w, fmt.Errorf("%w: %w", state.ErrNotFound, err))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// FetchBlob asks the member with the given id for the body with hash,
// which the manifest says is size bytes. It reads at most size bytes and
// returns the body only if its SHA-256 is hash, so a peer can neither
// flood this agent nor hand it other content.
func (n *Node) FetchBlob(ctx context.Context, member, hash string, size int64) ([]byte, error) {
	m, ok := n.State().Member(member)
	if !ok || m.HTTPAddr == "" {
		return nil, fmt.Errorf("%w: member %s has not announced an admin address", errTransport, member)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.HTTPAddr+pathBlobs+hash, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errTransport, member, err)
	}
	req.Header.Set(SecretHeader, n.opts.Secret)
	resp, err := n.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch %s from %s: %w", errTransport, hash, member, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s on %s", ErrBlobNotFound, hash, member)
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: fetch from %s", ErrForbidden, member)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: fetch %s from %s: status %d", errTransport, hash, member, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, size+1))
	if err != nil {
		return nil, fmt.Errorf("%w: fetch %s from %s: %w", errTransport, hash, member, err)
	}
	if int64(len(b)) != size {
		return nil, fmt.Errorf("%w: %s from %s: %d bytes or more, the manifest says %d", ErrBlobMismatch, hash, member, len(b), size)
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != hash {
		return nil, fmt.Errorf("%w: %s from %s hashes to %s", ErrBlobMismatch, hash, member, got)
	}
	return b, nil
}
