package pipeline

import (
	"context"
	"fmt"
	"net/http"

	"gantry/pipeline/chat"
)

// policy checks what the key may do and the size of the request.
func (g *Gateway) policy(_ context.Context, c *Call) error {
	k := c.Key
	if c.Feature != nil && !KeyAllows(k, c.Req.Model) {
		return &chat.Error{Status: http.StatusForbidden, Type: chat.TypePermission, Code: "feature_not_allowed",
			Message: fmt.Sprintf("key %q may not use feature %q", k.Name, c.Feature.Name)}
	}
	if c.Feature == nil && !KeyAllows(k, c.Req.Model) {
		return &chat.Error{Status: http.StatusForbidden, Type: chat.TypePermission, Code: "model_not_allowed",
			Message: fmt.Sprintf("key %q may not use model %q", k.Name, c.Req.Model)}
	}
	if n := len(c.Req.Messages); n > c.Snap.Limits.MaxMessages {
		return chat.BadRequest("messages", "%d messages, more than the limit of %d", n, c.Snap.Limits.MaxMessages)
	}
	return nil
}
