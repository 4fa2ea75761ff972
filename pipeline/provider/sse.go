package provider

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEventBytes bounds one server-sent event, so a server that never ends a
// line cannot make the gateway buffer without limit. Real chunks are a few
// hundred bytes; a tool call's arguments arrive in many small pieces.
const MaxEventBytes = 1 << 20

// errEventTooLarge is returned when an event outgrows MaxEventBytes.
var errEventTooLarge = fmt.Errorf("server-sent event longer than %d bytes", MaxEventBytes)

// sseEvent is one dispatched server-sent event. Data is only valid until the
// next call of Next.
type sseEvent struct {
	Event string
	Data  []byte
}

// sseReader reads the text/event-stream format: "field: value" lines, events
// ended by a blank line, comments starting with ':'. Only LF and CRLF line
// ends are understood; no LLM API sends bare CR.
type sseReader struct {
	r     *bufio.Reader
	max   int
	line  []byte
	data  []byte
	event string
	has   bool // a data or event field was seen since the last dispatch
	// dataLines counts the pending event's data lines, so lines are joined
	// with '\n' even when the first one is empty.
	dataLines int
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 16<<10), max: max}
}

// Next returns the next event. It returns io.EOF when the input ends after a
// complete line, and io.ErrUnexpectedEOF when it ends in the middle of one,
// which is what a connection cut mid-event looks like. Fields that were
// complete before EOF but never closed by a blank line are dispatched, since
// several servers omit the last blank line.
func (s *sseReader) Next() (sseEvent, error) {
	for {
		line, err := s.readLine()
		if err == io.EOF {
			if s.has {
				return s.dispatch(), nil
			}
			return sseEvent{}, io.EOF
		}
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if s.has {
				return s.dispatch(), nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(name) {
		case "data":
			if s.dataLines > 0 {
				s.data = append(s.data, '\n')
			}
			if len(s.data)+len(value) > s.max {
				return sseEvent{}, errEventTooLarge
			}
			s.data = append(s.data, value...)
			s.has = true
			s.dataLines++
		case "event":
			s.event = string(value)
			s.has = true
		}
		// id, retry and unknown fields carry nothing an LLM client needs.
	}
}

func (s *sseReader) dispatch() sseEvent {
	ev := sseEvent{Event: s.event, Data: s.data}
	s.data = s.data[:0]
	s.event = ""
	s.has = false
	s.dataLines = 0
	return ev
}

// readLine returns one line without its line end. The slice is only valid
// until the next call.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		if len(s.line)+len(frag) > s.max+2 {
			return nil, errEventTooLarge
		}
		switch {
		case err == nil:
			if len(s.line) == 0 {
				return trimEOL(frag), nil
			}
			s.line = append(s.line, frag...)
			return trimEOL(s.line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			s.line = append(s.line, frag...)
		case err == io.EOF:
			if len(s.line)+len(frag) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}
