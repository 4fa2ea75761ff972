package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster"
	"gantry/config"
)

// writeErr maps an error of the cluster, the state or a check to the admin
// API's status and code: the one place that does.
func writeErr(w http.ResponseWriter, err error) {
	status := cluster.HTTPStatus(err)
	var ve config.ValidationError
	var p config.Problem
	if errors.As(err, &ve) || errors.As(err, &p) {
		status = http.StatusBadRequest
	}
	code := api.CodeInternal
	msg := err.Error()
	switch status {
	case http.StatusBadRequest:
		code = api.CodeBadRequest
	case http.StatusNotFound:
		code = api.CodeNotFound
	case http.StatusConflict:
		code = api.CodeConflict
	case http.StatusPreconditionFailed:
		code = api.CodeStale
	case http.StatusForbidden:
		code = api.CodeForbidden
	case http.StatusGatewayTimeout:
		code = api.CodeTimeout
	case http.StatusServiceUnavailable:
		code = api.CodeUnavailable
		if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrNotLeader) {
			msg = "the cluster has no leader, so it cannot accept changes now (a majority of voters must be up); the gateway keeps serving its last configuration: " + msg
		}
	}
	httpio.APIError(w, status, code, msg)
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	httpio.APIError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf(format, args...))
}

// readBody reads at most limit bytes of a request body. The agent gives
// every body a deadline (httpio.BodyDeadline); a body past it, or too
// large, ends the connection.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil || int64(len(b)) > limit {
		httpio.EndBody(w)
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, errors.New("request body: it did not arrive in time")
	case err != nil:
		return nil, fmt.Errorf("request body: %w", err)
	case int64(len(b)) > limit:
		return nil, fmt.Errorf("request body: more than %d bytes", limit)
	}
	return b, nil
}

// decodeBody decodes a JSON request body of at most limit bytes into v as
// api.DecodeBody does.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	b, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	return api.DecodeBody(bytes.NewReader(b), limit, v)
}

// problems joins a validation error's problems on one line each.
func problems(err error) string {
	var ve config.ValidationError
	if errors.As(err, &ve) {
		msgs := make([]string, len(ve))
		for i, p := range ve {
			msgs[i] = p.Error()
		}
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}

// problemsOf flattens a joined error of config.Parse.
func problemsOf(err error) string {
	var msgs []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			msgs = append(msgs, e.Error())
		}
		return strings.Join(msgs, "; ")
	}
	return problems(err)
}
