package trace

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// TraceID is a W3C trace id.
type TraceID [16]byte

// SpanID is a W3C parent (span) id.
type SpanID [8]byte

// String is the id as 32 lower-case hex digits.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zeros, which W3C forbids.
func (id TraceID) IsZero() bool { return id == TraceID{} }

// String is the id as 16 lower-case hex digits.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zeros, which W3C forbids.
func (id SpanID) IsZero() bool { return id == SpanID{} }

// NewTraceID returns a random, non-zero trace id. crypto/rand never fails
// on the platforms Gantry supports, and random ids keep one tenant from
// guessing another's traces.
func NewTraceID() TraceID {
	var id TraceID
	for id.IsZero() {
		rand.Read(id[:])
	}
	return id
}

// NewSpanID returns a random, non-zero span id.
func NewSpanID() SpanID {
	var id SpanID
	for id.IsZero() {
		rand.Read(id[:])
	}
	return id
}

// FlagSampled is the W3C sampled flag.
const FlagSampled byte = 0x01

// Parent is the trace context a caller sent in its traceparent header.
type Parent struct {
	TraceID TraceID
	SpanID  SpanID // the caller's span, parent of ours
	Flags   byte
}

// Sampled reports the caller's sampled flag.
func (p Parent) Sampled() bool { return p.Flags&FlagSampled != 0 }

// String formats p as a version 00 traceparent.
func (p Parent) String() string { return FormatTraceparent(p.TraceID, p.SpanID, p.Flags) }

// ErrTraceparent is wrapped by every traceparent parse error.
var ErrTraceparent = errors.New("invalid traceparent")

const traceparentLen = 55 // 2 + 1 + 32 + 1 + 16 + 1 + 2

// ParseTraceparent parses a W3C traceparent header value. Version 00 must
// be exactly 55 characters; a later version may carry more fields after a
// dash, which are ignored as the W3C recommendation says. Hex must be
// lower case; version ff and all-zero ids are invalid.
func ParseTraceparent(s string) (Parent, error) {
	var p Parent
	if len(s) < traceparentLen {
		return p, fmt.Errorf("%w: %d characters, want %d", ErrTraceparent, len(s), traceparentLen)
	}
	ver, ok := hexByte(s[0:2])
	if !ok {
		return p, fmt.Errorf("%w: version %q is not two lower-case hex digits", ErrTraceparent, s[0:2])
	}
	switch {
	case ver == 0xff:
		return p, fmt.Errorf("%w: version ff is forbidden", ErrTraceparent)
	case ver == 0 && len(s) != traceparentLen:
		return p, fmt.Errorf("%w: version 00 is %d characters, want %d", ErrTraceparent, len(s), traceparentLen)
	case len(s) > traceparentLen && s[traceparentLen] != '-':
		return p, fmt.Errorf("%w: character %d is %q, want '-'", ErrTraceparent, traceparentLen, s[traceparentLen])
	}
	for _, i := range [...]int{2, 35, 52} {
		if s[i] != '-' {
			return p, fmt.Errorf("%w: character %d is %q, want '-'", ErrTraceparent, i, s[i])
		}
	}
	if !decodeLowerHex(p.TraceID[:], s[3:35]) {
		return p, fmt.Errorf("%w: trace id %q is not 32 lower-case hex digits", ErrTraceparent, s[3:35])
	}
	if p.TraceID.IsZero() {
		return p, fmt.Errorf("%w: trace id is all zeros", ErrTraceparent)
	}
	if !decodeLowerHex(p.SpanID[:], s[36:52]) {
		return p, fmt.Errorf("%w: parent id %q is not 16 lower-case hex digits", ErrTraceparent, s[36:52])
	}
	if p.SpanID.IsZero() {
		return p, fmt.Errorf("%w: parent id is all zeros", ErrTraceparent)
	}
	if p.Flags, ok = hexByte(s[53:55]); !ok {
		return p, fmt.Errorf("%w: flags %q are not two lower-case hex digits", ErrTraceparent, s[53:55])
	}
	return p, nil
}

// FormatTraceparent formats a version 00 traceparent.
func FormatTraceparent(tid TraceID, sid SpanID, flags byte) string {
	var b [traceparentLen]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

func decodeLowerHex(dst []byte, s string) bool {
	for i := range dst {
		b, ok := hexByte(s[2*i : 2*i+2])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

func hexByte(s string) (byte, bool) {
	hi, ok1 := nibble(s[0])
	lo, ok2 := nibble(s[1])
	return hi<<4 | lo, ok1 && ok2
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
