package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on what an upstream may send back.
const (
	// MaxResponseBytes bounds a complete (non-streamed) answer.
	MaxResponseBytes = 32 << 20
	// maxErrorBody is how much of an error response is read for its message.
	maxErrorBody = 64 << 10
	// maxMessageLen is how much of an upstream's message is kept; it ends up
	// in traces and logs, not in front of a user.
	maxMessageLen = 512
	// maxRetryAfter caps a Retry-After, so a confused upstream cannot park a
	// route for a day.
	maxRetryAfter = 10 * time.Minute
)

// DefaultClient is the HTTP client providers use when none is given. It has
// no overall timeout: streams last as long as the answer, and every call's
// context bounds its attempt.
var DefaultClient = &http.Client{
	Transport: newTransport(),
	// A redirect would carry the request, and headers such as x-api-key,
	// somewhere the configuration did not name; the 3xx is reported as is.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func newTransport() *http.Transport {
	t := Transport()
	// A gateway talks to few hosts with many concurrent calls.
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}

// endpoint is one upstream URL with the headers every call to it carries.
type endpoint struct {
	url            string
	completeHeader http.Header
	streamHeader   http.Header
	client         *http.Client
}

// newEndpoint joins baseURL (or def when it is empty) and path. header
// holds the credentials; a nil client means DefaultClient.
func newEndpoint(baseURL, def, path string, header http.Header, client *http.Client) endpoint {
	if baseURL == "" {
		baseURL = def
	}
	if client == nil {
		client = DefaultClient
	}
	header.Set("User-Agent", "gantry")
	header.Set("Content-Type", "application/json")
	e := endpoint{url: strings.TrimRight(baseURL, "/") + path, completeHeader: header.Clone(), streamHeader: header.Clone(), client: client}
	e.completeHeader.Set("Accept", "application/json")
	e.streamHeader.Set("Accept", "text/event-stream")
	return e
}

// complete posts body and reads the whole answer.
func (e endpoint) complete(ctx context.Context, body []byte) ([]byte, error) {
	resp, err := post(ctx, e.client, e.url, e.completeHeader, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readAll(ctx, resp.Body, resp.ContentLength)
}

// stream posts body and returns the event stream that answers it.
func (e endpoint) stream(ctx context.Context, body []byte) (io.ReadCloser, error) {
	resp, err := post(ctx, e.client, e.url, e.streamHeader, body)
	if err != nil {
		return nil, err
	}
	return streamBody(resp)
}

// streamBody hands over the body of a 2xx answer to a stream request,
// unless it is a JSON document.
func streamBody(resp *http.Response) (io.ReadCloser, error) {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		// A server that ignored "stream", or that reports an error as a
		// JSON document with status 200; read as events it would look like
		// a cut stream and hide the real problem.
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		return nil, &Error{Kind: KindProtocol, Message: "a JSON document instead of an event stream: " + upstreamMessage(data)}
	}
	return resp.Body, nil
}

// post sends a JSON body and returns the response when its status is 2xx.
// Every failure is an *Error, except a cancelled ctx, which is returned
// wrapped as it is: the caller left, no upstream failed.
func post(ctx context.Context, client *http.Client, url string, header http.Header, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", url, err)
	}
	// header carries Content-Type; the client may add to the request's
	// map (a cookie jar does), so the endpoint's own is not handed over.
	req.Header = make(http.Header, len(header))
	for k, v := range header {
		req.Header[k] = v
	}
	return do(ctx, client, req)
}

// do sends a built request; it is post without the building, for APIs
// whose requests are signed or carry more than JSON headers.
func do(ctx context.Context, client *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, TransportError(ctx, err, KindConnect)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp, nil
}

// TransportError classifies a failure to send or to read. kind is what a
// failure that is neither a timeout nor a cancellation counts as.
func TransportError(ctx context.Context, err error, kind Kind) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return &Error{Kind: KindTimeout, Err: ctxErr}
		}
		return fmt.Errorf("upstream call abandoned: %w", ctxErr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Kind: KindTimeout, Err: err}
	}
	return &Error{Kind: kind, Err: err}
}

// readAll reads a whole answer up to MaxResponseBytes. size is the
// announced length, -1 when unknown; a known one is read into one buffer.
func readAll(ctx context.Context, body io.Reader, size int64) ([]byte, error) {
	var data []byte
	var err error
	if size >= 0 && size <= MaxResponseBytes {
		data, err = readSized(body, size)
	} else {
		data, err = io.ReadAll(io.LimitReader(body, MaxResponseBytes+1))
	}
	if err != nil {
		return nil, TransportError(ctx, err, KindCut)
	}
	if len(data) > MaxResponseBytes {
		return nil, &Error{Kind: KindProtocol, Message: fmt.Sprintf("answer longer than %d bytes", MaxResponseBytes)}
	}
	return data, nil
}

// readSized reads a body announced as size bytes. The one spare byte
// makes room for io.EOF, so a body that is longer than announced is still
// read, and bounded, as a whole.
func readSized(body io.Reader, size int64) ([]byte, error) {
	data := make([]byte, 0, size+1)
	for {
		if len(data) == cap(data) {
			if len(data) > MaxResponseBytes {
				return data, nil
			}
			data = append(data, 0)[:len(data)]
		}
		n, err := body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return data, err
		}
	}
}

// statusError turns an error response into a KindStatus *Error with the
// upstream's message and its Retry-After.
func statusError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := upstreamMessage(body)
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	code := errorCode(resp.Header, body)
	return &Error{
		Kind:       KindStatus,
		Status:     normalStatus(resp.StatusCode, code),
		Code:       code,
		RetryAfter: waitHint(resp.StatusCode, resp.Header, body, time.Now()),
		Message:    msg,
	}
}

// upstreamMessage finds the human message in an error body: OpenAI's and
// Anthropic's {"error": {"message": …}}, the {"error": "…"} of Ollama and
// others, a top-level "message" or "detail", or else the text itself.
func upstreamMessage(body []byte) string {
	var shape struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &shape) == nil {
		var inner struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		}
		var text string
		switch {
		case json.Unmarshal(shape.Error, &inner) == nil && inner.Message != "":
			return shorten(inner.Message)
		case json.Unmarshal(shape.Error, &text) == nil && text != "":
			return shorten(text)
		case shape.Message != "":
			return shorten(shape.Message)
		case json.Unmarshal(shape.Detail, &text) == nil && text != "":
			return shorten(text)
		case inner.Type != "":
			return shorten(inner.Type)
		}
	}
	return shorten(string(body))
}

// shorten makes s one line of at most maxMessageLen bytes of valid UTF-8.
func shorten(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxMessageLen {
		return s
	}
	cut := maxMessageLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// retryAfter reads how long the upstream asks us to wait: OpenAI's
// retry-after-ms, else Retry-After in seconds or as an HTTP date. It returns
// 0 when neither is present or readable, and at most maxRetryAfter.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Retry-After-Ms")), 64); err == nil {
		if d := capped(v, time.Millisecond); d > 0 {
			return d
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return capped(secs, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// capped converts n units to a duration in [0, maxRetryAfter]; NaN is 0.
func capped(n float64, unit time.Duration) time.Duration {
	switch {
	case !(n > 0):
		return 0
	case n >= float64(maxRetryAfter)/float64(unit):
		return maxRetryAfter
	default:
		return time.Duration(n * float64(unit))
	}
}

// inStreamError is an error event inside a stream. Before any chunk it
// stands for the status the upstream would have sent had it failed before
// the headers, so the router treats an invalid request as final and an
// overload as retryable; after output has begun it is a cut.
func inStreamError(data []byte, started bool) *Error {
	msg := upstreamMessage(data)
	if started {
		return &Error{Kind: KindCut, Message: "the upstream reported an error mid-stream: " + msg}
	}
	return &Error{Kind: KindStatus, Status: inStreamStatus(data), Message: "in stream: " + msg}
}

// inStreamStatus maps the error type or numeric code of an in-stream error
// body to an HTTP status; unknown errors count as server errors.
func inStreamStatus(data []byte) int {
	var body struct {
		Error struct {
			Type string          `json:"type"`
			Code json.RawMessage `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) != nil {
		return http.StatusInternalServerError
	}
	if n, err := strconv.Atoi(strings.Trim(string(body.Error.Code), `"`)); err == nil && n >= 400 && n <= 599 {
		return n
	}
	switch body.Error.Type {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error", "rate_limit_exceeded":
		return http.StatusTooManyRequests
	case "overloaded_error":
		return 529
	case "timeout_error":
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
