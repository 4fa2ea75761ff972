package provider

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Provider error codes Gantry acts on. Each provider names its rate limits
// and overloads its own way; the router only needs to know whether another
// try may help, here or elsewhere, and how long to wait.
const (
	codeInsufficientQuota = "insufficient_quota" // OpenAI: the account is out of credit
	codeOverloaded        = "overloaded_error"   // Anthropic 529
	codeResourceExhausted = "RESOURCE_EXHAUSTED" // Gemini 429: rate or quota
	codeUnavailable       = "UNAVAILABLE"        // Gemini 503
	codeThrottling        = "ThrottlingException"
	codeServiceQuota      = "ServiceQuotaExceededException" // Bedrock: a hard quota, 400
	codeModelNotReady     = "ModelNotReadyException"        // Bedrock 429: the model is loading
	codeModelError        = "ModelErrorException"           // Bedrock 424: the model itself failed
	codeModelTimeout      = "ModelTimeoutException"         // Bedrock 408
	codeServiceUnavail    = "ServiceUnavailableException"
)

// Overloaded reports whether the upstream said it is overloaded rather than
// that this caller sent too much: Anthropic's 529, a 503, Gemini's
// UNAVAILABLE, Bedrock's ServiceUnavailableException.
func (e *Error) Overloaded() bool {
	if e.Kind != KindStatus {
		return false
	}
	switch e.Code {
	case codeOverloaded, codeUnavailable, codeServiceUnavail:
		return true
	}
	return e.Status == 529 || e.Status == http.StatusServiceUnavailable
}

// RetryHere reports whether another attempt at the same target may succeed.
// A retryable error that fails it still lets the route fall back: an
// account out of credit stays out of credit for the next try, but another
// provider may serve.
func (e *Error) RetryHere() bool {
	if !e.Retryable() {
		return false
	}
	return e.Code != codeInsufficientQuota
}

// errorCode finds the provider's own name for an error: Bedrock's
// x-amzn-ErrorType header, Gemini's error.status, OpenAI's error.code,
// Anthropic's error.type, or a top-level type or __type.
func errorCode(h http.Header, body []byte) string {
	if t := h.Get("X-Amzn-Errortype"); t != "" {
		t, _, _ = strings.Cut(t, ":")
		return shortCode(t)
	}
	var shape struct {
		Error json.RawMessage `json:"error"`
		Type  string          `json:"type"`
		AWS   string          `json:"__type"`
		Code  json.RawMessage `json:"code"`
	}
	if json.Unmarshal(body, &shape) != nil {
		return ""
	}
	var inner struct {
		Status string          `json:"status"`
		Code   json.RawMessage `json:"code"`
		Type   string          `json:"type"`
	}
	json.Unmarshal(shape.Error, &inner)
	var code string
	for _, c := range []string{inner.Status, stringCode(inner.Code), inner.Type, shape.AWS, stringCode(shape.Code), shape.Type} {
		if c != "" && c != "error" {
			code = c
			break
		}
	}
	// AWS writes __type as "namespace#Name".
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	return shortCode(code)
}

// stringCode is a code that is a JSON string; numeric codes repeat the
// status and say nothing more.
func stringCode(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// shortCode bounds a code, which ends up in traces and metrics labels.
func shortCode(s string) string {
	const max = 64
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = s[:max]
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return ""
		}
	}
	return s
}

// normalStatus maps provider statuses that mean something else than their
// number says to the status Gantry's rules understand: Bedrock's 424 (the
// model failed) is a server error another provider may not have.
func normalStatus(status int, code string) int {
	if code == codeModelError && status == http.StatusFailedDependency {
		return http.StatusBadGateway
	}
	return status
}

// waitHint is how long the upstream asks us to wait before the next call:
// Retry-After or retry-after-ms on any error, and on a 429 the reset time
// of the exhausted limit (OpenAI and Groq's x-ratelimit-reset-requests and
// -tokens, Anthropic's anthropic-ratelimit-*-reset, OpenRouter's
// X-RateLimit-Reset) or Gemini's RetryInfo.retryDelay. It is at most
// maxRetryAfter.
func waitHint(status int, h http.Header, body []byte, now time.Time) time.Duration {
	d := retryAfter(h, now)
	if status != http.StatusTooManyRequests {
		return d
	}
	for _, limit := range []string{"requests", "tokens"} {
		if h.Get("X-Ratelimit-Remaining-"+limit) == "0" || h.Get("X-Ratelimit-Remaining-"+limit) == "" {
			if v, err := time.ParseDuration(strings.TrimSpace(h.Get("X-Ratelimit-Reset-" + limit))); err == nil {
				d = max(d, min(v, maxRetryAfter))
			}
		}
	}
	for _, limit := range []string{"requests", "tokens", "input-tokens", "output-tokens"} {
		if h.Get("Anthropic-Ratelimit-"+limit+"-Remaining") != "0" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, h.Get("Anthropic-Ratelimit-"+limit+"-Reset")); err == nil && t.After(now) {
			d = max(d, min(t.Sub(now), maxRetryAfter))
		}
	}
	// OpenRouter: a Unix time in milliseconds.
	if ms, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Ratelimit-Reset")), 10, 64); err == nil && ms > 1e12 {
		if t := time.UnixMilli(ms); t.After(now) {
			d = max(d, min(t.Sub(now), maxRetryAfter))
		}
	}
	return max(d, googleRetryDelay(body))
}

// googleRetryDelay reads the RetryInfo detail of a Google API error.
func googleRetryDelay(body []byte) time.Duration {
	var e struct {
		Error struct {
			Details []struct {
				Type       string `json:"@type"`
				RetryDelay string `json:"retryDelay"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return 0
	}
	for _, d := range e.Error.Details {
		if strings.HasSuffix(d.Type, "google.rpc.RetryInfo") {
			if v, err := time.ParseDuration(d.RetryDelay); err == nil && v > 0 {
				return min(v, maxRetryAfter)
			}
		}
	}
	return 0
}
