package cli

import (
	"context"
	"crypto/tls"
	"net/http"

	"gantry/api/adminclient"
)

// client is the admin client with the last answer's header kept, so a
// command can report which members served a write.
type client struct {
	*adminclient.Client
	header http.Header
}

func newClient(agent, token string) (*client, error) { return newTLSClient(agent, token, nil) }

// newTLSClient is newClient for an agent with mutual TLS: tc carries the
// client certificate and the CA, and a bare host:port means https.
func newTLSClient(agent, token string, tc *tls.Config) (*client, error) {
	c, err := adminclient.New(agent, token, tc)
	if err != nil {
		return nil, err
	}
	return &client{Client: c}, nil
}

func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	return c.callIf(ctx, method, path, "", in, out)
}

func (c *client) callIf(ctx context.Context, method, path, ifMatch string, in, out any) error {
	h, err := c.CallIf(ctx, method, path, ifMatch, in, out)
	c.header = h
	return err
}
