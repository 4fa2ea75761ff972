package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gantry/cluster/command"
)

// memBlobs is a blob store in memory.
type memBlobs map[string][]byte

func (m memBlobs) Get(hash string) ([]byte, error) {
	b, ok := m[hash]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrBlobNotFound, hash)
	}
	return b, nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestFetchBlob(t *testing.T) {
	body := []byte(`{"text":"Hold the dial for ten seconds."}`)
	hash := sha(body)
	a := startNode(t, "a", func(o *Options) { o.Bootstrap = true; o.Voters = 1; o.Blobs = memBlobs{hash: body} })
	// A member that answers with other bytes than it was asked for.
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"text":"Something else entirely, same length!"}`)[:len(body)])
	}))
	defer liar.Close()
	flood := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 1 << 10 {
			w.Write(body)
		}
	}))
	defer flood.Close()
	waitFor(t, 10*time.Second, "a leads", func() bool { return a.IsLeader() })
	for id, url := range map[string]string{"liar": liar.URL, "flood": flood.URL} {
		apply(t, a, env(t, command.PutMember, command.Member{ID: id, RaftAddr: "127.0.0.1:1", HTTPAddr: url}))
	}

	ctx := ctxT(t, 5*time.Second)
	got, err := a.FetchBlob(ctx, "a", hash, int64(len(body)))
	if err != nil || string(got) != string(body) {
		t.Fatalf("fetch from a: %q %v", got, err)
	}
	if _, err := a.FetchBlob(ctx, "a", sha([]byte("absent")), 6); !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("absent body: %v, want ErrBlobNotFound", err)
	}
	if _, err := a.FetchBlob(ctx, "liar", hash, int64(len(body))); !errors.Is(err, ErrBlobMismatch) {
		t.Fatalf("other bytes: %v, want ErrBlobMismatch", err)
	}
	if _, err := a.FetchBlob(ctx, "flood", hash, int64(len(body))); !errors.Is(err, ErrBlobMismatch) {
		t.Fatalf("endless answer: %v, want ErrBlobMismatch after reading the manifest's size", err)
	}
	if _, err := a.FetchBlob(ctx, "nobody", hash, int64(len(body))); err == nil {
		t.Fatal("fetch from an unknown member succeeded")
	}

	// Without the cluster secret nothing is served.
	resp, err := http.Get(a.srv.URL + pathBlobs + hash)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("blob without the secret: status %d, want 403", resp.StatusCode)
	}
}
