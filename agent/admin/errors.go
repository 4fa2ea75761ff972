package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"gantry/agent/httpio"
	"gantry/api"
	"gantry/cluster"
	"gantry/cluster/command"
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

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, command.MaxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
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
