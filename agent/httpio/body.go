package httpio

import (
	"io"
	"net/http"
	"time"
)

// BodyDeadline gives every request body timeout to arrive, whether or not
// the handler reads it. net/http drains what a handler left unread before
// it answers and before it reuses the connection; without a deadline a
// client trickling a body (to an endpoint that refused it, or that failed
// reading it) would hold the answer and the connection for as long as it
// likes. Once the body has been read to its end the deadline is lifted:
// the connection is read again only to notice the client leaving, and a
// deadline there would cancel a long answer such as a live feed.
func BodyDeadline(next http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
				r.Body = &liftAtEOF{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// liftAtEOF lifts the connection's read deadline once the body ends.
type liftAtEOF struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *liftAtEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// EndBody ends the reading of a request body that failed (it came too late,
// too large or malformed): its read deadline passes at once, so net/http
// neither waits for the rest before answering nor keeps the connection.
func EndBody(w http.ResponseWriter) {
	http.NewResponseController(w).SetReadDeadline(time.Now())
}
