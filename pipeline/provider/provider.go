// Package provider calls language-model upstreams. Each kind translates the
// OpenAI-shaped chat types of package chat to its own API and back, and
// classifies every failure so the router can decide to retry, fall back or
// give up.
package provider

import (
	"context"
	"fmt"
	"time"

	"gantry/config"
	"gantry/pipeline/chat"
)

// Provider is one configured upstream. Implementations are safe for
// concurrent use. The request's Model is already the upstream model id; the
// caller never chooses the upstream URL or credentials.
type Provider interface {
	// Complete sends a request and waits for the whole answer.
	Complete(ctx context.Context, req *chat.Request) (*chat.Response, error)
	// Stream sends a request and returns its chunks as they arrive. An error
	// before the first chunk comes from Stream itself; a failure after that
	// from Recv. Implementations ask the upstream for usage when it can
	// report it, so the last chunk may carry Usage and no choices.
	Stream(ctx context.Context, req *chat.Request) (Stream, error)
}

// Stream yields the chunks of one streamed answer.
type Stream interface {
	// Recv returns the next chunk, io.EOF after a clean end, or an *Error
	// with Kind Cut when the stream broke off.
	Recv() (*chat.Chunk, error)
	// Close releases the connection; it is safe to call more than once.
	Close() error
}

// Kind classifies an upstream failure.
type Kind string

const (
	KindStatus   Kind = "status"   // the upstream answered with an error status
	KindTimeout  Kind = "timeout"  // no answer within the attempt's time
	KindConnect  Kind = "connect"  // the connection failed or was refused
	KindProtocol Kind = "protocol" // the upstream answered with something unreadable
	KindCut      Kind = "cut"      // a stream ended without its end marker
)

// Error is an upstream failure.
type Error struct {
	Kind       Kind
	Status     int           // HTTP status for KindStatus
	RetryAfter time.Duration // from a Retry-After header, 0 when absent
	Message    string        // the upstream's message, shortened
	// Code is the provider's own name for the error, when it gave one:
	// rate_limit_exceeded, overloaded_error, RESOURCE_EXHAUSTED,
	// ThrottlingException, …
	Code string
	Err  error
}

func (e *Error) Error() string {
	msg := string(e.Kind)
	if e.Status != 0 {
		msg = fmt.Sprintf("%s %d", msg, e.Status)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether another attempt, here or at a fallback, may
// succeed: rate limits, server errors, timeouts, broken connections and
// unreadable answers. Client errors (400, 401, 404, …) are not.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindStatus:
		return e.Status == 429 || e.Status == 408 || e.Status >= 500
	default:
		return true
	}
}

// SupportsChoices reports whether providers of kind answer a request for n
// choices with n choices. Anthropic's Messages API has no such parameter,
// and the simulator answers with one.
func SupportsChoices(kind string) bool { return kind == config.KindOpenAI }
