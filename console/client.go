// Package console is the operator side of Gantry: a client for the admin
// API and live feed of one or more agents, and the `gantry console`
// program that feeds what it hears to the TUI, locally or over SSH.
package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"gantry/api"
	"gantry/api/adminclient"
	"gantry/pipeline/trace"
)

// ErrNotFound is what errors.Is matches for a 404 answer: an endpoint the
// agent does not serve (yet), or a trace or feature it does not know.
var ErrNotFound = adminclient.ErrNotFound

// Error is an admin API call that the agent answered with an error status.
type Error = adminclient.Error

// Client talks to one agent's admin API and live feed. It is safe for
// concurrent use; set Operator and FeedIdle before the first call.
type Client struct {
	*adminclient.Client
	// FeedIdle is how long the feed may stay silent before the
	// connection is taken for dead; agents send a keepalive every 15 s.
	// 0 is DefaultFeedIdle.
	FeedIdle time.Duration
}

// DefaultFeedIdle is three missed keepalives: a half-open connection is
// noticed within it, not only when TCP gives up.
const DefaultFeedIdle = 45 * time.Second

// ErrFeedIdle is why a silent feed was dropped.
var ErrFeedIdle = errors.New("feed silent too long: no keepalive from the agent")

// DefaultTimeout bounds one admin call other than the feed: a console
// redraws from these answers and must not sit on a dead agent.
const DefaultTimeout = 10 * time.Second

// NewClient returns a client for the agent at base, e.g.
// http://127.0.0.1:7400; a bare host:port means http.
func NewClient(base, token string) (*Client, error) {
	return NewTLSClient(base, token, nil)
}

// NewTLSClient is NewClient for agents with mutual TLS: tc carries the
// client certificate and the CA, and a bare host:port means https. A nil
// tc is NewClient.
func NewTLSClient(base, token string, tc *tls.Config) (*Client, error) {
	ac, err := adminclient.New(base, token, tc)
	if err != nil {
		return nil, err
	}
	ac.Timeout = DefaultTimeout
	return &Client{Client: ac}, nil
}

// do sends a request and decodes a 2xx JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.Call(ctx, method, path, body, out)
	return err
}

// Traces lists traces, newest first.
func (c *Client) Traces(ctx context.Context, q api.TraceQuery) (api.TraceList, error) {
	var out api.TraceList
	path := api.PathTraces
	if v := q.Values().Encode(); v != "" {
		path += "?" + v
	}
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// Trace fetches one trace by trace or request id.
func (c *Client) Trace(ctx context.Context, id string) (*trace.Trace, error) {
	var out trace.Trace
	if err := c.do(ctx, http.MethodGet, api.TracePath(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Overview is the agent's view of recent traffic.
func (c *Client) Overview(ctx context.Context) (api.Overview, error) {
	var out api.Overview
	err := c.do(ctx, http.MethodGet, api.PathOverview, nil, &out)
	return out, err
}

// Members is the cluster's membership as the agent sees it.
func (c *Client) Members(ctx context.Context) (api.Members, error) {
	var out api.Members
	err := c.do(ctx, http.MethodGet, api.PathMembers, nil, &out)
	return out, err
}

// Features lists the features with their releases and labels.
func (c *Client) Features(ctx context.Context) ([]api.Feature, error) {
	var out api.Features
	err := c.do(ctx, http.MethodGet, api.PathFeatures, nil, &out)
	return out.Features, err
}

// Releases is one feature with its releases, labels and history.
func (c *Client) Releases(ctx context.Context, feature string) (api.Feature, error) {
	var out api.Feature
	err := c.do(ctx, http.MethodGet, api.ReleasesPath(feature), nil, &out)
	return out, err
}

// Diff is what changes from release a to release b of a feature.
func (c *Client) Diff(ctx context.Context, feature string, a, b int) (api.Diff, error) {
	var out api.Diff
	err := c.do(ctx, http.MethodGet, api.DiffPath(feature, a, b), nil, &out)
	return out, err
}

// MoveLabel promotes, rolls back or sets the canary of a feature. The
// agent forwards it to the cluster's leader and audits it under the name
// of the caller's token.
func (c *Client) MoveLabel(ctx context.Context, m api.LabelMove) (api.LabelMoveResult, error) {
	var out api.LabelMoveResult
	if err := m.Check(); err != nil {
		return out, fmt.Errorf("label move: %w", err)
	}
	err := c.do(ctx, http.MethodPost, api.LabelsPath(m.Feature), m, &out)
	return out, err
}

// Budgets are the budgets with their spend.
func (c *Client) Budgets(ctx context.Context) (api.Budgets, error) {
	var out api.Budgets
	err := c.do(ctx, http.MethodGet, api.PathBudgets, nil, &out)
	return out, err
}

// Health is the agent's /healthz answer: its node id.
func (c *Client) Health(ctx context.Context) (node string, err error) {
	var out struct {
		Node string `json:"node"`
	}
	err = c.do(ctx, http.MethodGet, "/healthz", nil, &out)
	return out.Node, err
}

// Feed reads the live feed until ctx ends or the connection breaks, and
// calls fn with each trace summary. connected is called once the agent has
// accepted the stream. It returns nil only when ctx ended.
func (c *Client) Feed(ctx context.Context, connected func(), fn func(trace.Summary)) error {
	idle := c.FeedIdle
	if idle <= 0 {
		idle = DefaultFeedIdle
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(idle, func() { cancel(ErrFeedIdle) })
	defer watchdog.Stop()
	resp, err := c.Stream(rctx, api.PathFeed, "text/event-stream")
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if cause := context.Cause(rctx); cause != nil {
			err = cause
		}
		return fmt.Errorf("feed: %w", err)
	}
	defer resp.Body.Close()
	if connected != nil {
		connected()
	}
	body := &idleReader{r: resp.Body, t: watchdog, idle: idle}
	err = readEvents(body, func(data []byte) error {
		var s trace.Summary
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("feed event %.80q: %w", data, err)
		}
		fn(s)
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	if cause := context.Cause(rctx); cause != nil {
		err = cause
	}
	if err == nil {
		err = io.ErrUnexpectedEOF // the agent ended the stream: it is going away
	}
	return fmt.Errorf("feed: %w", err)
}

// idleReader pushes the feed's watchdog back on every read that brings
// bytes, keepalive comments included.
type idleReader struct {
	r    io.Reader
	t    *time.Timer
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.Reset(r.idle)
	}
	return n, err
}

// readEvents parses server-sent events and calls fn with each event's data
// (data lines joined by newlines). Comments and other fields are skipped.
// It returns nil at the end of the stream.
func readEvents(r io.Reader, fn func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var data []byte
	have := false
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if have {
				if err := fn(data); err != nil {
					return err
				}
			}
			data, have = data[:0], false
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if string(name) != "data" {
			continue
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		if have {
			data = append(data, '\n')
		}
		data = append(data, value...)
		have = true
	}
	return sc.Err()
}
