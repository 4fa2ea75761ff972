package adminclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gantry/api"
)

// What one call puts on the wire and what the caller gets back: the CLI and
// the console rely on the same answers.
func TestCallWireAndAnswers(t *testing.T) {
	var got struct{ ctype, ifMatch, auth, operator, body string }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.ctype, got.ifMatch, got.auth, got.operator, got.body = r.Header.Get("Content-Type"), r.Header.Get("If-Match"), r.Header.Get("Authorization"), r.Header.Get("X-Gantry-Operator"), string(b)
		w.Header().Set(api.HeaderServedBy, "n1,n2")
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no feature \"x\""}}`)
		case "/bare":
			w.WriteHeader(503)
		default:
			io.WriteString(w, `{"a":1}`)
		}
	}))
	defer srv.Close()
	c, err := New(strings.TrimPrefix(srv.URL, "http://"), "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Operator = "ssh:ana"
	ctx := context.Background()

	var raw []byte
	h, err := c.CallIf(ctx, "PUT", "/config", `"v1"`, []byte("providers: {}\n"), &raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.ctype != "application/yaml" || got.ifMatch != `"v1"` || got.auth != "Bearer tok" || got.operator != "ssh:ana" || got.body != "providers: {}\n" {
		t.Fatalf("request on the wire: %+v", got)
	}
	if string(raw) != `{"a":1}` || h.Get(api.HeaderServedBy) != "n1,n2" {
		t.Fatalf("answer %q, header %v", raw, h)
	}

	var out struct{ A int }
	if _, err := c.Call(ctx, "POST", "/json", map[string]int{"b": 2}, &out); err != nil || out.A != 1 || got.ctype != "application/json" || got.body != `{"b":2}` {
		t.Fatalf("JSON call: %v %+v %+v", err, out, got)
	}

	_, err = c.Call(ctx, "GET", "/missing", nil, nil)
	var ae *api.Error
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &ae) || ae.Code != "not_found" || err.Error() != `not_found: no feature "x"` {
		t.Fatalf("404 answer: %v", err)
	}
	_, err = c.Call(ctx, "GET", "/bare", nil, nil)
	if err == nil || err.Error() != "GET /bare: 503 Service Unavailable" || errors.Is(err, ErrNotFound) {
		t.Fatalf("503 without a body: %v", err)
	}
}

func TestNewRefusesWhatIsNoAgentURL(t *testing.T) {
	for _, in := range []string{"ftp://h:1", "http://", "http://[::1"} {
		if _, err := New(in, "", nil); err == nil {
			t.Errorf("New(%q) accepted", in)
		}
	}
}
