package fake

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Recording is one answer as a provider sends it on the wire: status,
// headers and body. Recordings live in testdata files written as HTTP/1.1
// responses, copied from the providers' API references, so a test replays
// the real format byte for byte instead of one the Fake makes up.
type Recording struct {
	Status int
	Header http.Header
	Body   []byte
}

// ReadRecording reads a recording file.
func ReadRecording(path string) (Recording, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Recording{}, err
	}
	r, err := ParseRecording(data)
	if err != nil {
		return Recording{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseRecording reads an HTTP/1.1 response: a status line, headers, a
// blank line and the body, which runs to the end of the data. Lines may end
// in LF alone.
func ParseRecording(data []byte) (Recording, error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
	if err != nil {
		return Recording{}, fmt.Errorf("not an HTTP response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Recording{}, fmt.Errorf("body: %w", err)
	}
	resp.Header.Del("Content-Length")
	return Recording{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// Frame is one message of AWS's binary event stream.
type Frame struct {
	// Event is the :event-type of an event, or with Exception set the
	// :exception-type of an exception.
	Event     string
	Exception bool
	Payload   string
}

// EventStream encodes frames as AWS's event stream (application/
// vnd.amazon.eventstream) through the AWS SDK's encoder, as Bedrock's
// ConverseStream sends them.
func EventStream(frames ...Frame) []byte {
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, f := range frames {
		var m eventstream.Message
		if f.Exception {
			m.Headers.Set(":message-type", eventstream.StringValue("exception"))
			m.Headers.Set(":exception-type", eventstream.StringValue(f.Event))
		} else {
			m.Headers.Set(":message-type", eventstream.StringValue("event"))
			m.Headers.Set(":event-type", eventstream.StringValue(f.Event))
		}
		m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		m.Payload = []byte(f.Payload)
		if err := enc.Encode(&buf, m); err != nil {
			panic("fake: encode event stream: " + err.Error())
		}
	}
	return buf.Bytes()
}

// Step is one answer of a Replay.
type Step struct {
	Recording
	// CutAfter, when above 0, closes the connection after that many bytes
	// of the body, as a connection that breaks mid-answer does.
	CutAfter int
}

// Replay answers requests with recorded steps in order; once they run
// out, the last step repeats. It keeps every request for the test to
// check what the provider sent. It is safe for concurrent use.
type Replay struct {
	mu       sync.Mutex
	steps    []Step
	n        int
	received []Request
}

var _ http.Handler = (*Replay)(nil)

// NewReplay returns a Replay of steps; it needs at least one.
func NewReplay(steps ...Step) *Replay {
	if len(steps) == 0 {
		panic("fake: a Replay needs at least one step")
	}
	return &Replay{steps: steps}
}

// Requests returns the requests received so far, oldest first.
func (r *Replay) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.received...)
}

func (r *Replay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, maxRequestBody))
	r.mu.Lock()
	step := r.steps[min(r.n, len(r.steps)-1)]
	r.n++
	if len(r.received) < 256 {
		r.received = append(r.received, Request{Path: req.URL.RequestURI(), Header: req.Header.Clone(), Body: body})
	}
	r.mu.Unlock()
	for k, v := range step.Header {
		w.Header()[k] = v
	}
	status := step.Status
	if status == 0 {
		status = http.StatusOK
	}
	if step.CutAfter > 0 && step.CutAfter < len(step.Body) {
		// Announce the whole body, send part of it, and drop the line.
		w.Header().Set("Content-Length", strconv.Itoa(len(step.Body)))
		w.WriteHeader(status)
		w.Write(step.Body[:step.CutAfter])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(step.Body)))
	w.WriteHeader(status)
	w.Write(step.Body)
}
