package blobs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, max int64) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestPutGet(t *testing.T) {
	s, _ := open(t, 1<<10)
	hash, err := s.Put([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if hash != Sum([]byte("hello")) || !ValidHash(hash) {
		t.Fatalf("hash %s", hash)
	}
	again, err := s.Put([]byte("hello"))
	if err != nil || again != hash {
		t.Fatalf("second put: %s %v", again, err)
	}
	b, err := s.Get(hash)
	if err != nil || string(b) != "hello" {
		t.Fatalf("get: %q %v", b, err)
	}
	if !s.Has(hash) || s.Has(Sum([]byte("other"))) {
		t.Fatal("Has disagrees with what was stored")
	}
	if _, err := s.Get(Sum([]byte("other"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing blob: %v, want ErrNotFound", err)
	}
	if _, err := s.Put(make([]byte, 1<<10+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized put: %v, want ErrTooLarge", err)
	}
	if n, bytes, err := s.Usage(); err != nil || n != 1 || bytes != 5 {
		t.Fatalf("usage %d blobs %d bytes %v, want 1 of 5", n, bytes, err)
	}
}

func TestHashesNeverNamePaths(t *testing.T) {
	s, _ := open(t, 1<<10)
	for _, h := range []string{"", "sha256:", "sha256:../../etc/passwd", "md5:abc", "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("0", 63) + "/"} {
		if ValidHash(h) {
			t.Fatalf("%q passes as a hash", h)
		}
		if _, err := s.Get(h); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%q) = %v, want refused as not a hash", h, err)
		}
		if s.Has(h) {
			t.Fatalf("Has(%q)", h)
		}
	}
}

func TestCorruptBodyIsDropped(t *testing.T) {
	s, dir := open(t, 1<<10)
	hash, err := s.Put([]byte("original"))
	if err != nil {
		t.Fatal(err)
	}
	hx := strings.TrimPrefix(hash, Prefix)
	if err := os.WriteFile(filepath.Join(dir, hx[:2], hx), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(hash); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered blob: %v, want ErrCorrupt", err)
	}
	if s.Has(hash) {
		t.Fatal("a corrupt blob is kept; it would never be fetched again")
	}
}

func TestCollect(t *testing.T) {
	s, dir := open(t, 1<<10)
	keep, _ := s.Put([]byte("named by a manifest"))
	old, _ := s.Put([]byte("named by nothing"))
	fresh, _ := s.Put([]byte("just uploaded"))
	tmp := filepath.Join(dir, "ab", ".tmp-123")
	os.MkdirAll(filepath.Dir(tmp), 0o700)
	os.WriteFile(tmp, []byte("half"), 0o600)
	past := time.Now().Add(-time.Hour)
	for _, h := range []string{keep, old} {
		hx := strings.TrimPrefix(h, Prefix)
		os.Chtimes(filepath.Join(dir, hx[:2], hx), past, past)
	}
	os.Chtimes(tmp, past, past)

	n, bytes, err := s.Collect(func(h string) bool { return h == keep }, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || bytes != int64(len("named by nothing")) {
		t.Fatalf("collected %d blobs of %d bytes, want the one unnamed old blob", n, bytes)
	}
	if !s.Has(keep) || s.Has(old) || !s.Has(fresh) {
		t.Fatalf("after collect: keep %v old %v fresh %v; want keep and fresh only", s.Has(keep), s.Has(old), s.Has(fresh))
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a leftover temporary file was not collected")
	}
	// Storing an unnamed body again makes it fresh, so a collection
	// running while its manifest change commits leaves it alone.
	if _, err := s.Put([]byte("named by nothing")); err != nil {
		t.Fatal(err)
	}
	hx := strings.TrimPrefix(fresh, Prefix)
	os.Chtimes(filepath.Join(dir, hx[:2], hx), past, past)
	if _, err := s.Put([]byte("just uploaded")); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.Collect(func(h string) bool { return h == keep }, time.Now().Add(-time.Minute)); n != 0 {
		t.Fatalf("collected %d freshly stored blobs", n)
	}
}

func TestPutAll(t *testing.T) {
	s, _ := open(t, 1<<10)
	bodies := [][]byte{[]byte("one"), []byte("two"), []byte("one"), []byte("three")}
	hashes, err := s.PutAll(bodies)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bodies {
		if hashes[i] != Sum(b) {
			t.Fatalf("hash %d is %s, want that of %q", i, hashes[i], b)
		}
		if got, err := s.Get(hashes[i]); err != nil || string(got) != string(b) {
			t.Fatalf("body %d: %q %v", i, got, err)
		}
	}
	if _, err := s.PutAll([][]byte{[]byte("fine"), make([]byte, 2<<10)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an oversized body among others: %v, want ErrTooLarge", err)
	}
}
