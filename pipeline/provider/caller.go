package provider

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// caller sends calls whose URL depends on the model, as Gemini, Azure and
// Bedrock put the model or deployment in the path. header holds the
// credentials and is never changed after construction; sign, when set,
// signs each request (Bedrock's SigV4) after its headers are complete.
type caller struct {
	client *http.Client
	header http.Header
	sign   func(req *http.Request, body []byte) error
}

func newCaller(header http.Header, client *http.Client) caller {
	if client == nil {
		client = DefaultClient
	}
	header.Set("User-Agent", "gantry")
	header.Set("Content-Type", "application/json")
	return caller{client: client, header: header}
}

func (c caller) request(ctx context.Context, url, accept string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", url, err)
	}
	req.Header = c.header.Clone()
	req.Header.Set("Accept", accept)
	if c.sign != nil {
		if err := c.sign(req, body); err != nil {
			return nil, err
		}
	}
	return do(ctx, c.client, req)
}

// complete posts body to url and reads the whole answer.
func (c caller) complete(ctx context.Context, url string, body []byte) ([]byte, error) {
	resp, err := c.request(ctx, url, "application/json", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readAll(ctx, resp.Body, resp.ContentLength)
}

// stream posts body to url and returns the body of the stream answering it.
func (c caller) stream(ctx context.Context, url, accept string, body []byte) (io.ReadCloser, error) {
	resp, err := c.request(ctx, url, accept, body)
	if err != nil {
		return nil, err
	}
	return streamBody(resp)
}
