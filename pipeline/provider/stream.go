package provider

import (
	"context"
	"errors"
	"io"
	"sync"

	"gantry/pipeline/chat"
)

// eventDecoder turns one API's server-sent events into chat chunks. It keeps
// whatever state the translation needs; a stream owns one decoder.
type eventDecoder interface {
	// decode returns the chunk an event makes, nil for events that carry
	// nothing for the client, io.EOF at the API's end marker, or an error
	// for an event that reports a failure or cannot be read.
	decode(ev sseEvent) (*chat.Chunk, error)
	// complete reports whether the answer is whole, so that the body ending
	// without an end marker is a clean end rather than a cut.
	complete() bool
}

// eventSource reads one framing of events from a response body: the
// server-sent events of most APIs, or AWS's binary event stream. Next
// returns io.EOF at a clean end, io.ErrUnexpectedEOF when the body ends
// inside an event, and errEventTooLarge for an event over the bound.
type eventSource interface {
	Next() (sseEvent, error)
}

// sseStream is a Stream over an HTTP response body of events.
type sseStream struct {
	ctx     context.Context
	body    io.ReadCloser
	events  eventSource
	dec     eventDecoder
	pending *chat.Chunk // the first chunk, read ahead by startStream
	err     error       // sticky: once the stream failed or ended, Recv repeats it
	once    sync.Once
}

var _ Stream = (*sseStream)(nil)

// startStream reads ahead to the first chunk, so that a failure before any
// output reaches the caller from Stream and the router can still retry or
// fall back without the client having seen a byte.
func startStream(ctx context.Context, body io.ReadCloser, dec eventDecoder) (Stream, error) {
	return startEvents(ctx, body, newSSEReader(body, MaxEventBytes), dec)
}

// startEvents is startStream for any framing of events.
func startEvents(ctx context.Context, body io.ReadCloser, events eventSource, dec eventDecoder) (Stream, error) {
	s := &sseStream{ctx: ctx, body: body, events: events, dec: dec}
	c, err := s.next(false)
	if err != nil {
		s.Close()
		if err == io.EOF {
			return nil, &Error{Kind: KindProtocol, Message: "the stream ended before its first chunk"}
		}
		return nil, err
	}
	s.pending = c
	return s, nil
}

func (s *sseStream) Recv() (*chat.Chunk, error) {
	if c := s.pending; c != nil {
		s.pending = nil
		return c, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	c, err := s.next(true)
	if err != nil {
		s.err = err
	}
	return c, err
}

// next reads events until one makes a chunk. started tells whether the
// caller has output already: a failure after that is a cut; before, it is
// classified like any failed request.
func (s *sseStream) next(started bool) (*chat.Chunk, error) {
	for {
		ev, err := s.events.Next()
		switch {
		case err == io.EOF:
			if s.dec.complete() {
				return nil, io.EOF
			}
			return nil, &Error{Kind: KindCut, Message: "the stream ended without its end marker"}
		case errors.Is(err, errEventTooLarge):
			return nil, &Error{Kind: KindProtocol, Err: err}
		case err != nil && started:
			return nil, MidStreamError(s.ctx, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, TransportError(s.ctx, err, KindCut)
		case err != nil:
			return nil, TransportError(s.ctx, err, KindConnect)
		}
		c, err := s.dec.decode(ev)
		if err != nil || c != nil {
			return c, err
		}
	}
}

func (s *sseStream) Close() error {
	var err error
	s.once.Do(func() { err = s.body.Close() })
	return err
}

// MidStreamError classifies a failure after output has begun: whatever
// broke, the client holds a partial answer, so it is a cut, timeouts
// included. A cancelled caller is still not an upstream failure.
func MidStreamError(ctx context.Context, err error) error {
	err = TransportError(ctx, err, KindCut)
	var pe *Error
	if errors.As(err, &pe) {
		pe.Kind = KindCut
	}
	return err
}
