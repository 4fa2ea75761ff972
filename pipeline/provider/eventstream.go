package provider

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// frameReader reads AWS's binary event stream (application/
// vnd.amazon.eventstream), as Bedrock's ConverseStream sends it, through
// the AWS SDK's decoder. The SDK trusts a frame's announced length, so the
// prelude is checked here first: a frame over MaxEventBytes, or one whose
// headers do not fit inside it, is refused before anything is buffered.
type frameReader struct {
	r   *bufio.Reader
	dec *eventstream.Decoder
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 16<<10), dec: eventstream.NewDecoder()}
}

// Frame sizes: a 12-byte prelude (total length, headers length, CRC) and a
// 4-byte CRC at the end.
const (
	framePrelude  = 12
	frameOverhead = framePrelude + 4
)

// Next returns the next frame as an event. Event is the frame's
// :event-type, or "exception:<type>" for an exception frame and
// "error:<code>" for an error frame, whose Data is then the message.
func (f *frameReader) Next() (sseEvent, error) {
	head, err := f.r.Peek(8)
	if len(head) == 0 && err == io.EOF {
		return sseEvent{}, io.EOF
	}
	if err != nil {
		return sseEvent{}, unexpected(err)
	}
	total, headers := binary.BigEndian.Uint32(head[:4]), binary.BigEndian.Uint32(head[4:8])
	if total > MaxEventBytes {
		return sseEvent{}, errEventTooLarge
	}
	if total < frameOverhead || headers > total-frameOverhead {
		return sseEvent{}, &Error{Kind: KindProtocol, Message: "an event stream frame announces impossible lengths"}
	}
	msg, err := f.dec.Decode(f.r, f.buf[:0])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return sseEvent{}, io.ErrUnexpectedEOF
		}
		var pe *Error
		if errors.As(err, &pe) {
			return sseEvent{}, err
		}
		return sseEvent{}, &Error{Kind: KindProtocol, Message: "an unreadable event stream frame", Err: err}
	}
	f.buf = msg.Payload
	str := func(name string) string {
		if v := msg.Headers.Get(name); v != nil {
			if s, ok := v.Get().(string); ok {
				return s
			}
		}
		return ""
	}
	switch str(":message-type") {
	case "exception":
		return sseEvent{Event: "exception:" + str(":exception-type"), Data: msg.Payload}, nil
	case "error":
		return sseEvent{Event: "error:" + str(":error-code"), Data: []byte(str(":error-message"))}, nil
	}
	return sseEvent{Event: str(":event-type"), Data: msg.Payload}, nil
}

// unexpected turns a read failure inside a frame into the error that says
// the body ended early; other failures pass.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

var _ eventSource = (*frameReader)(nil)
var _ eventSource = (*sseReader)(nil)
