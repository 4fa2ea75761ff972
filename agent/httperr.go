package agent

import (
	"encoding/json"
	"net/http"
	"strconv"

	"gantry/pipeline/chat"
)

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"message":"response does not encode","type":"server_error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeChatError writes a gateway error in the OpenAI shape. It is the one
// place that turns a pipeline error into an HTTP status.
func writeChatError(w http.ResponseWriter, e *chat.Error) {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	status := e.Status
	if status == 499 { // the client is gone; nobody reads this
		status = http.StatusBadRequest
	}
	writeJSON(w, status, e.Body())
}

// AdminError is the one error shape of the admin API.
type adminError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeAdminError(w http.ResponseWriter, status int, code, msg string) {
	var e adminError
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}
