// Package adminclient calls one agent's admin API. The CLI and the console
// both use it, so a token, a TLS setting or an error answer means the same
// thing whichever of them an operator types into.
package adminclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gantry/api"
)

// ErrNotFound is what errors.Is matches for a 404 answer: an endpoint the
// agent does not serve (yet), or an object it does not know.
var ErrNotFound = errors.New("not found")

// Error is a call that the agent answered with an error status.
type Error struct {
	Method, Path string
	Status       int
	API          *api.Error // the decoded body; nil when it was not the admin shape
}

// Error is the agent's own code and message when it gave them: that is what
// an operator needs to read; the request is in Method and Path.
func (e *Error) Error() string {
	if e.API != nil {
		return e.API.Error()
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
}

// Unwrap lets callers branch on the admin API's code with errors.As.
func (e *Error) Unwrap() error {
	if e.API == nil {
		return nil
	}
	return e.API
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// DefaultTimeout bounds one call other than a stream. Writes may wait out an
// election on the agent (up to 8 s) and a --wait for every member.
const DefaultTimeout = 30 * time.Second

// maxAnswer bounds what one answer may bring into memory.
const maxAnswer = 64 << 20

// Client talks to one agent. It is safe for concurrent use; set Operator and
// Timeout before the first call.
type Client struct {
	base  string
	token string
	hc    *http.Client // no overall timeout: calls bound themselves, streams do not
	// Operator names the person behind the token (for example the SSH user
	// and key); it travels in X-Gantry-Operator so the agent audits who acted
	// through a shared token.
	Operator string
	// Timeout bounds each call; 0 is DefaultTimeout.
	Timeout time.Duration
}

// New returns a client for the agent at base, e.g. http://127.0.0.1:7400. A
// bare host:port means https when tc is set (mutual TLS: the client
// certificate and the CA) and http when it is nil.
func New(base, token string, tc *tls.Config) (*Client, error) {
	if !strings.Contains(base, "://") {
		if tc != nil {
			base = "https://" + base
		} else {
			base = "http://" + base
		}
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, fmt.Errorf("agent URL %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("agent URL %q: want http://host:port or https://host:port", base)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 8
	t.TLSClientConfig = tc.Clone() // a transport writes into its config; one each
	return &Client{base: u.String(), token: token, hc: &http.Client{Transport: t}}, nil
}

// URL is the agent's base URL.
func (c *Client) URL() string { return c.base }

// Call sends one request and decodes a 2xx answer into out. A body of bytes
// is sent as YAML (configuration, datasets); anything else is encoded as
// JSON. An out of type *[]byte receives the raw answer. The answer's header
// comes back whatever the status. An error answer is an *Error.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	return c.CallIf(ctx, method, path, "", in, out)
}

// CallIf is Call with an If-Match header when ifMatch is not empty.
func (c *Client) CallIf(ctx context.Context, method, path, ifMatch string, in, out any) (http.Header, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := c.request(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent %s unreachable: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.Header, answerError(method, path, resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return resp.Header, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	switch o := out.(type) {
	case nil:
	case *[]byte:
		*o = data
	default:
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// Stream opens a long-lived GET (the live feed) with no overall timeout:
// ctx ends it. The caller closes the body of a 200 answer; any other status
// is an *Error.
func (c *Client) Stream(ctx context.Context, path, accept string) (*http.Response, error) {
	req, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, answerError(http.MethodGet, path, resp)
	}
	return resp, nil
}

func (c *Client) request(ctx context.Context, method, path string, in any) (*http.Request, error) {
	var body io.Reader
	ctype := "application/json"
	switch v := in.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(v)
		ctype = "application/yaml"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.Operator != "" {
		req.Header.Set("X-Gantry-Operator", c.Operator)
	}
	return req, nil
}

func answerError(method, path string, resp *http.Response) error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er api.ErrorResponse
	if json.Unmarshal(b, &er) == nil && (er.Error.Code != "" || er.Error.Message != "") {
		e.API = &er.Error
	}
	return e
}
