package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"gantry/api"
)

// client calls one agent's admin API.
type client struct {
	base  string
	token string
	hc    *http.Client
	// header is the last answer's header.
	header http.Header
}

func newClient(agent, token string) *client { return newTLSClient(agent, token, nil) }

// newTLSClient is newClient for an agent with mutual TLS: tc carries the
// client certificate and the CA, and a bare host:port means https.
func newTLSClient(agent, token string, tc *tls.Config) *client {
	base := strings.TrimRight(agent, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		if tc != nil {
			base = "https://" + base
		} else {
			base = "http://" + base
		}
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if tc != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc.Clone() // a transport writes into its config; one each
		hc.Transport = t
	}
	// Writes may wait out an election on the agent (up to 8s) before it
	// answers.
	return &client{base: base, token: token, hc: hc}
}

// call sends one request; a JSON body is encoded from in unless it is
// already bytes, and a 2xx answer is decoded into out. An error answer
// comes back as *api.Error with the agent's code and message.
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	return c.callIf(ctx, method, path, "", in, out)
}

// callIf is call with an If-Match header when ifMatch is not empty.
func (c *client) callIf(ctx context.Context, method, path, ifMatch string, in, out any) error {
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
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s unreachable: %w", c.base, err)
	}
	defer resp.Body.Close()
	c.header = resp.Header
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return &e.Error
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
