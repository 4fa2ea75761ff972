package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gantry/pipeline/budget"
	"gantry/pipeline/chat"
	"gantry/pipeline/limit"
	"gantry/pipeline/policy"
	"gantry/pipeline/prompt"
)

// refusal is the one place that turns a refusal of the policy layer (the
// safety policy, the rate limiter, the budget ledger, the template
// renderer) into what the client gets: a 400 or 429 with a code of its
// own, or 499 when the client left. An error it does not know stays as it
// is and becomes a 500: a bug in the gateway, which is where it belongs.
func refusal(err error) error {
	var (
		ce *chat.Error
		be *policy.BlockedError
		le *limit.LimitError
		ee *budget.ExceededError
		de *budget.DowngradeError
		re *prompt.RenderLimitError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &chat.Error{Status: StatusClientClosed, Type: chat.TypeInvalidRequest, Code: "client_closed_request",
			Message: "the client closed the request", Cause: err}
	case errors.As(err, &be):
		return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "policy_blocked", Param: be.Field, Message: be.Error()}
	case errors.As(err, &le):
		ra := le.RetryAfter
		if ra <= 0 && le.Dimension != limit.Tokens {
			ra = time.Second
		}
		if le.Dimension == limit.Tokens && le.RetryAfter == 0 {
			// It can never fit: waiting does not help, a smaller prompt does.
			return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "rate_limit_unreachable", Param: "messages", Message: le.Error(), Cause: err}
		}
		return &chat.Error{Status: http.StatusTooManyRequests, Type: chat.TypeRateLimit, Code: "rate_limited", Message: le.Error(), RetryAfter: ra, Cause: err}
	case errors.As(err, &ee):
		return &chat.Error{Status: http.StatusTooManyRequests, Type: chat.TypeRateLimit, Code: "budget_exceeded",
			Message: fmt.Sprintf("budget %q is spent for this period", ee.Budget), RetryAfter: time.Minute, Cause: err}
	case errors.As(err, &de):
		// Asked again after the call already took the cheaper route.
		return &chat.Error{Status: http.StatusTooManyRequests, Type: chat.TypeRateLimit, Code: "budget_exceeded",
			Message: fmt.Sprintf("budget %q is spent for this period, its cheaper route included", de.Budget), RetryAfter: time.Minute, Cause: err}
	case errors.Is(err, budget.ErrFull):
		return &chat.Error{Status: http.StatusTooManyRequests, Type: chat.TypeRateLimit, Code: "budget_ledger_full",
			Message: "too many calls hold a budget reservation on this agent; retry shortly", RetryAfter: time.Second, Cause: err}
	case errors.Is(err, budget.ErrUsersFull):
		return &chat.Error{Status: http.StatusTooManyRequests, Type: chat.TypeRateLimit, Code: "budget_users_full",
			Message: "this agent tracks as many end users' budgets as it can this period; retry later", RetryAfter: time.Minute, Cause: err}
	case errors.Is(err, budget.ErrAmount):
		return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "worst_case_too_large", Param: "max_tokens",
			Message: "the call's worst-case cost is beyond what a budget can reserve; lower max_tokens or shorten the prompt", Cause: err}
	case errors.Is(err, budget.ErrDuplicate):
		return &chat.Error{Status: http.StatusConflict, Type: chat.TypeInvalidRequest, Code: "duplicate_request",
			Message: "this request id already holds a budget reservation", Cause: err}
	case errors.Is(err, budget.ErrInvalid):
		return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "budget_reservation_invalid", Message: err.Error(), Cause: err}
	case errors.As(err, &re):
		return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "template_work_limit", Param: "vars", Message: re.Error(), Cause: err}
	}
	return err
}
