package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Hash is the content address of a release: the SHA-256 of its canonical
// JSON encoding with the version number left out, so two releases that would
// behave alike have the same hash. encoding/json writes struct fields in a
// fixed order and map keys sorted, which makes the encoding canonical.
func (r Release) Hash() string {
	r.Version = 0
	b, err := json.Marshal(r)
	if err != nil {
		// Only values that came from YAML or JSON reach here; they encode.
		panic("config: release does not encode: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// KeyPrefix starts every virtual key, so a leaked one is recognisable.
const KeyPrefix = "gk_"

// Bounds of a virtual key's length. Keys Gantry makes are the prefix and 32
// random bytes in unpadded base64url (46 characters); dev mode accepts a
// shorter key chosen by a script.
const (
	minKeyLen = len(KeyPrefix) + 8
	maxKeyLen = 256
)

// NewKey returns a fresh virtual key and its hash. The key is shown once; only
// the hash is stored.
func NewKey() (secret, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("config: no randomness: " + err.Error())
	}
	secret = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashKey(secret)
}

// HashKey is the stored form of a virtual key. Keys carry 256 random bits, so
// a fast hash is enough: there is nothing to brute-force.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	// One allocation: every request authenticates with it.
	var b [len("sha256:") + 2*sha256.Size]byte
	copy(b[:], "sha256:")
	hex.Encode(b[len("sha256:"):], sum[:])
	return string(b[:])
}

// KeyFingerprint names a presented key without revealing it: the first 8
// hex digits of its hash, as the key list shows them (HashPrefix), so a
// caller refused for a bad or revoked key can be told apart and found.
func KeyFingerprint(secret string) string { return HashFingerprint(HashKey(secret)) }

// HashFingerprint is the fingerprint of a stored key hash.
func HashFingerprint(hash string) string {
	h := strings.TrimPrefix(hash, "sha256:")
	return h[:min(len(h), 8)]
}

// WellFormedKey reports whether s has the shape of a virtual key. It is a
// cheap first check before the hash lookup.
func WellFormedKey(s string) bool {
	if len(s) < minKeyLen || len(s) > maxKeyLen || !strings.HasPrefix(s, KeyPrefix) {
		return false
	}
	for i := len(KeyPrefix); i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validHash(h string) bool {
	rest, ok := strings.CutPrefix(h, "sha256:")
	if !ok || len(rest) != 64 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// TokenPrefix starts every admin token Gantry makes.
const TokenPrefix = "gat_"

// MinTokenLen is the shortest admin token an agent accepts from a file.
const MinTokenLen = 20

// NewToken makes a random admin token.
func NewToken() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("config: no randomness: " + err.Error())
	}
	return TokenPrefix + hex.EncodeToString(b[:])
}
