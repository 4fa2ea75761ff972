package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"gantry/api"
)

// CheckTimeout bounds the first contact with the agents: an operator
// with a wrong address learns it in seconds, not from a screen that waits.
const CheckTimeout = 5 * time.Second

// Check asks each agent the console was given for its overview, with the
// token, before any screen opens. It returns nil once one answers, and
// otherwise says for every agent why it did not: a refused token, a
// missing role, or no connection.
func Check(ctx context.Context, o FleetOptions) error {
	o.defaults()
	if len(o.Agents) == 0 {
		return errors.New("no agent: pass --agent URL or set GANTRY_AGENT")
	}
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	var why []string
	for _, u := range o.Agents {
		c, err := NewTLSClient(u, o.Token, o.TLS)
		if err != nil {
			return err
		}
		c.Operator = o.Operator
		if _, err = c.Overview(ctx); err == nil {
			return nil
		}
		why = append(why, Explain(c.URL(), err))
	}
	return errors.New(strings.Join(why, "; "))
}

// Explain says what an operator should do about a failed call to the
// agent at url: the status alone does not tell a wrong token from a
// stopped agent.
func Explain(url string, err error) string {
	var e *Error
	if errors.As(err, &e) {
		msg := ""
		if e.API != nil && e.API.Message != "" {
			msg = ": " + e.API.Message
		}
		switch {
		case e.Status == http.StatusUnauthorized || e.API != nil && e.API.Code == api.CodeUnauthorized:
			return fmt.Sprintf("agent %s refused the admin token (401%s): check --token or GANTRY_TOKEN", url, msg)
		case e.Status == http.StatusForbidden:
			return fmt.Sprintf("agent %s: the token's role may not read %s (403%s): use a viewer, operator or admin token", url, e.Path, msg)
		case e.Status == http.StatusNotFound:
			return fmt.Sprintf("agent %s does not serve %s (404): an older Gantry agent, or not a Gantry agent's HTTP address", url, e.Path)
		}
		return fmt.Sprintf("agent %s: %d%s", url, e.Status, msg)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("agent %s did not answer within %s: check --agent and that it runs", url, CheckTimeout)
	}
	return fmt.Sprintf("cannot reach agent %s: %v: check --agent and that it runs", url, connError(err))
}

// connError is the network's own account of a failed call, such as
// "dial tcp 127.0.0.1:7400: connect: connection refused".
func connError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	return err
}
