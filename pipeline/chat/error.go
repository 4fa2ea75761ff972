package chat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error types of the OpenAI error shape.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeUpstream       = "upstream_error"
	TypeTimeout        = "timeout_error"
	TypeServer         = "server_error"
)

// Error is a failure the gateway reports to its client in the OpenAI error
// shape. Status is the HTTP status; Cause, when set, is logged and traced but
// never sent.
type Error struct {
	Status     int
	Type       string
	Code       string
	Param      string
	Message    string
	RetryAfter time.Duration
	Cause      error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Cause)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Body is the JSON body of the error.
func (e *Error) Body() ErrorBody {
	return ErrorBody{Error: ErrorDetail{Message: e.Message, Type: e.Type, Code: e.Code, Param: e.Param}}
}

// ErrorBody is {"error": {...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an error body. Param and Code are null when
// unset, as in OpenAI's responses.
type ErrorDetail struct {
	Message string
	Type    string
	Code    string
	Param   string
}

func (d ErrorDetail) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
		Param   *string `json:"param"`
	}{d.Message, d.Type, nilIfEmpty(d.Code), nilIfEmpty(d.Param)})
}

func (d *ErrorDetail) UnmarshalJSON(b []byte) error {
	var w struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Param   *string         `json:"param"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	d.Message, d.Type = w.Message, w.Type
	if w.Param != nil {
		d.Param = *w.Param
	}
	// Some servers send a numeric code.
	var code string
	if json.Unmarshal(w.Code, &code) == nil {
		d.Code = code
	} else if len(w.Code) > 0 && string(w.Code) != "null" {
		d.Code = string(w.Code)
	}
	return nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// BadRequest is a 400 about one parameter.
func BadRequest(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// NotFound is a 404.
func NotFound(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeNotFound, Code: code, Message: fmt.Sprintf(format, args...)}
}

// CheckContentEncoding refuses a request body sent in a Content-Encoding
// the gateway does not read (it reads identity only) with a 415 that says
// so, rather than a 400 about bytes that are not UTF-8.
func CheckContentEncoding(v string) *Error {
	if v == "" || strings.EqualFold(strings.TrimSpace(v), "identity") {
		return nil
	}
	return &Error{Status: http.StatusUnsupportedMediaType, Type: TypeInvalidRequest, Code: "unsupported_content_encoding",
		Message: fmt.Sprintf("the request body is %s-encoded; send it uncompressed", strings.TrimSpace(v))}
}
