package console

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gantry/api"
	"gantry/pipeline/trace"
)

func newTestClient(t *testing.T, url, token string) *Client {
	t.Helper()
	c, err := NewClient(url, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewClientURLs(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"http://127.0.0.1:7400", "http://127.0.0.1:7400", ""},
		{"127.0.0.1:7400", "http://127.0.0.1:7400", ""},
		{"https://gantry.example/", "https://gantry.example", ""},
		{"ftp://x", "", "want http"},
		{"http://", "", "want http"},
	} {
		c, err := NewClient(tc.in, "t")
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: err %v, want one saying %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err == "" && c.URL() != tc.want:
			t.Errorf("%q: URL %q, want %q", tc.in, c.URL(), tc.want)
		}
	}
}

func TestClientReads(t *testing.T) {
	f := newFakeAgent(t, "n1")
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := range 5 {
		f.serve(summary("t"+string(rune('0'+i)), "", now.Add(time.Duration(i)*time.Second)))
	}
	c := newTestClient(t, f.srv.URL, testToken)
	ctx := testCtx(t)

	list, err := c.Traces(ctx, api.TraceQuery{Limit: 3})
	if err != nil || len(list.Traces) != 3 || list.Traces[0].ID != "t4" {
		t.Fatalf("Traces: %v %+v, want the 3 newest, newest first", err, list.Traces)
	}
	list, err = c.Traces(ctx, api.TraceQuery{Since: now.Add(3 * time.Second)})
	if err != nil || len(list.Traces) != 2 {
		t.Fatalf("Traces since: %v %+v, want 2", err, list.Traces)
	}
	tr, err := c.Trace(ctx, "t2")
	if err != nil || tr.ID != "t2" || tr.Node != "n1" || len(tr.Spans) != 1 {
		t.Fatalf("Trace: %v %+v", err, tr)
	}
	o, err := c.Overview(ctx)
	if err != nil || o.Node != "n1" || len(o.Releases) != 1 {
		t.Fatalf("Overview: %v %+v", err, o)
	}
	fs, err := c.Features(ctx)
	if err != nil || len(fs) != 1 || fs[0].Labels.Production != 2 || len(fs[0].Releases) != 3 {
		t.Fatalf("Features: %v %+v", err, fs)
	}
	d, err := c.Diff(ctx, "support-answer", 2, 3)
	if err != nil || d.A != 2 || d.B != 3 || d.Summary() != "1 field changed: system +1 -1" {
		t.Fatalf("Diff: %v %+v", err, d)
	}
	node, err := c.Health(ctx)
	if err != nil || node != "n1" {
		t.Fatalf("Health: %v %q", err, node)
	}
}

func TestClientErrors(t *testing.T) {
	f := newFakeAgent(t, "n1")
	ctx := testCtx(t)
	good := newTestClient(t, f.srv.URL, testToken)
	good.Operator = "ssh:ana SHA256:abc"
	tests := []struct {
		name     string
		call     func() error
		status   int
		code     string
		notFound bool
	}{
		{"wrong token", func() error { _, err := newTestClient(t, f.srv.URL, "nope").Overview(ctx); return err }, 401, api.CodeUnauthorized, false},
		{"no such trace", func() error { _, err := good.Trace(ctx, "missing"); return err }, 404, api.CodeNotFound, true},
		{"endpoint the agent lacks", func() error { _, err := good.Members(ctx); return err }, 404, "", true},
		{"label moved meanwhile", func() error {
			_, err := good.MoveLabel(ctx, api.LabelMove{Feature: "support-answer", Action: "promote", From: 1, To: 3})
			return err
		}, 409, api.CodeConflict, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ce *Error
			if !errors.As(err, &ce) || ce.Status != tc.status {
				t.Fatalf("err %v, want status %d", err, tc.status)
			}
			var ae *api.Error
			if got := errors.As(err, &ae); got != (tc.code != "") || got && ae.Code != tc.code {
				t.Fatalf("err %v: api code want %q", err, tc.code)
			}
			if errors.Is(err, ErrNotFound) != tc.notFound {
				t.Fatalf("errors.Is(%v, ErrNotFound) != %v", err, tc.notFound)
			}
		})
	}
	// A malformed move never leaves the console.
	if _, err := good.MoveLabel(ctx, api.LabelMove{Feature: "support-answer", Action: "canary", To: 3}); err == nil {
		t.Fatal("a canary without a weight was sent")
	}
	moves, ops := f.labelMoves()
	if len(moves) != 1 || ops[0] != "ssh:ana SHA256:abc" {
		t.Fatalf("agent saw moves %+v from %q, want the one conflicting move with the operator header", moves, ops)
	}
}

func TestClientMoveLabel(t *testing.T) {
	f := newFakeAgent(t, "n1")
	c := newTestClient(t, f.srv.URL, testToken)
	want := api.LabelMove{Feature: "support-answer", Action: "promote", From: 2, To: 3, Reason: "shorter answers"}
	res, err := c.MoveLabel(testCtx(t), want)
	if err != nil || res.Labels.Production != 3 || res.Index != 42 || res.Change.From != 2 {
		t.Fatalf("MoveLabel: %v %+v", err, res)
	}
	moves, _ := f.labelMoves()
	if len(moves) != 1 || !reflect.DeepEqual(moves[0], want) {
		t.Fatalf("agent got %+v, want %+v", moves, want)
	}
}

func TestReadEvents(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"one event", "data: {\"id\":\"a\"}\n\n", []string{`{"id":"a"}`}},
		{"comments and keepalives", ": feed\n\ndata: 1\n\n: keepalive\n\ndata: 2\n\n", []string{"1", "2"}},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"a\nb"}},
		{"CRLF and other fields", "event: x\r\nid: 7\r\ndata:3\r\n\r\n", []string{"3"}},
		{"unterminated last event is dropped", "data: 1\n\ndata: 2", []string{"1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := readEvents(strings.NewReader(tc.in), func(b []byte) error { got = append(got, string(b)); return nil })
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestClientFeed(t *testing.T) {
	f := newFakeAgent(t, "n1")
	c := newTestClient(t, f.srv.URL, testToken)
	ctx := testCtx(t)
	got := make(chan trace.Summary, 10)
	connected := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- c.Feed(ctx, func() { close(connected) }, func(s trace.Summary) { got <- s }) }()
	<-connected
	now := time.Now()
	for _, id := range []string{"a", "b", "c"} {
		f.serve(summary(id, "", now))
	}
	for _, want := range []string{"a", "b", "c"} {
		select {
		case s := <-got:
			if s.ID != want || s.Node != "n1" {
				t.Fatalf("feed gave %+v, want %s from n1", s, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("feed gave nothing for %s", want)
		}
	}
	f.dropFeeds() // the agent goes away: the feed says so
	if err := <-done; err == nil || !strings.Contains(err.Error(), "feed") {
		t.Fatalf("a dropped feed returned %v, want an error", err)
	}

	// A feed ended by its context is no error.
	cctx, cancel := context.WithCancel(ctx)
	connected = make(chan struct{})
	go func() { done <- c.Feed(cctx, func() { close(connected) }, func(trace.Summary) {}) }()
	<-connected
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("cancelled feed: %v", err)
	}
	f.setFeedDown(true)
	err := c.Feed(ctx, func() { t.Error("connected to a feed that answered 503") }, func(trace.Summary) {})
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != 503 {
		t.Fatalf("feed answering 503: %v", err)
	}
}

// TestClientFeedIdle: a feed that goes silent (a half-open connection, a
// hung agent) is dropped once no keepalive came for FeedIdle.
func TestClientFeedIdle(t *testing.T) {
	f := newFakeAgent(t, "n1")
	c := newTestClient(t, f.srv.URL, testToken)
	c.FeedIdle = 200 * time.Millisecond
	f.serve(summary("x", "", time.Now()))
	start := time.Now()
	err := c.Feed(testCtx(t), nil, func(trace.Summary) {})
	if !errors.Is(err, ErrFeedIdle) {
		t.Fatalf("silent feed ended with %v, want ErrFeedIdle", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Fatalf("dropped after %v, want about 200ms", d)
	}
}
