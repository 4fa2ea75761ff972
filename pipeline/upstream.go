package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/provider"
)

// routeCached answers from the response cache when the release allows it,
// and otherwise calls the upstream.
func (g *Gateway) routeCached(ctx context.Context, c *Call) error {
	if c.Embed != nil {
		return g.embedCached(ctx, c)
	}
	key, ok := g.cacheKey(c)
	if !ok {
		if served, err := g.semanticLookup(ctx, c); served || err != nil {
			return err
		}
		return g.route(ctx, c)
	}
	c.cacheKey = &key // the answer is stored under the key it was looked up by
	b, hit := g.cache.Get(key)
	if g.obs != nil {
		g.obs.CacheLookup(c.Feature.Name, hit)
	}
	if hit {
		var resp chat.Response
		if err := json.Unmarshal(b, &resp); err == nil {
			if t, ok := c.Snap.models[resp.Model]; ok {
				c.Cached = true
				c.finish(t, &resp)
				return nil
			}
		}
	}
	if served, err := g.semanticLookup(ctx, c); served || err != nil {
		return err
	}
	return g.route(ctx, c)
}

// cacheKey is the call's key in the response cache: only non-streamed calls
// of releases with a cache policy, and not when the caller bypasses it.
func (g *Gateway) cacheKey(c *Call) (cache.Key, bool) {
	if g.cache == nil || c.NoCache || c.Emit != nil || c.Release == nil || c.Release.Cache == nil || c.Release.Cache.TTL == 0 {
		return cache.Key{}, false
	}
	req := *c.Req
	req.Messages = c.Messages
	return cache.KeyFor(c.Release.Hash, &req), true
}

// storeCache keeps a validated answer for the release's cache TTL.
func (g *Gateway) storeCache(c *Call) {
	if c.cacheKey == nil || c.Cached || c.Resp == nil {
		return
	}
	if b, err := json.Marshal(c.Resp); err == nil {
		g.cache.Put(*c.cacheKey, b, c.Release.Cache.TTL.D())
	}
}

// route calls the call's route: a cascade's tiers, or the route itself. A
// repair of a cascade's answer goes to the tier that gave it.
func (g *Gateway) route(ctx context.Context, c *Call) error {
	switch {
	case c.tier != nil:
		return g.routeOn(ctx, c, c.tier)
	case len(c.Route.tiers) > 0:
		return g.cascade(ctx, c)
	}
	return g.routeOn(ctx, c, c.Route)
}

// routeOn calls the upstream through the router: retries, fallbacks,
// circuit breakers and timeouts. A stream is passed to the client chunk by
// chunk.
func (g *Gateway) routeOn(ctx context.Context, c *Call, route *Route) error {
	err := g.router.Do(ctx, route, func(actx context.Context, a *Attempt, firstByte func()) error {
		req := *c.Req
		req.Model = a.Target.Model.UpstreamName()
		req.Messages = c.Messages
		req.StreamOptions = nil
		start := time.Now()
		defer func() { c.Upstream += time.Since(start) }()
		if c.Embed != nil {
			return embed(actx, c, a.Target)
		}
		if c.Emit == nil {
			req.Stream = false
			resp, err := a.Target.Provider.Complete(actx, &req)
			if err != nil {
				return err
			}
			if len(resp.Choices) == 0 {
				return &provider.Error{Kind: provider.KindProtocol, Message: "the upstream answered with no choices"}
			}
			c.finish(a.Target, resp)
			return nil
		}
		return g.stream(actx, c, a, &req, firstByte)
	}, func(o Outcome) { c.Outcomes = append(c.Outcomes, o) })
	if err != nil {
		if errors.Is(err, ErrClientGone) || errors.Is(ctx.Err(), context.Canceled) {
			return &chat.Error{Status: StatusClientClosed, Type: chat.TypeInvalidRequest, Code: "client_closed_request", Message: "the client closed the request", Cause: err}
		}
		model := ""
		if n := len(c.Outcomes); n > 0 {
			model = c.Outcomes[n-1].Target.Model.Name
		}
		return upstreamError(err, model)
	}
	return nil
}

// ErrClientGone means writing to the client failed.
var ErrClientGone = errors.New("client went away")

// StatusClientClosed is recorded when the client left before the answer
// (nginx's 499); the client never sees it.
const StatusClientClosed = 499

// finish stores the answer under the gateway's id and model name.
func (c *Call) finish(t *Target, resp *chat.Response) {
	resp.ID = "chatcmpl-" + c.ID
	resp.Object = chat.ObjectCompletion
	resp.Model = t.Model.Name
	if resp.Created == 0 {
		resp.Created = c.Received.Unix()
	}
	c.Resp, c.Answered = resp, t
	if resp.Usage != nil {
		c.Usage, c.UsageKnown = *resp.Usage, true
	}
}

// stream relays one upstream stream. Until the first chunk reaches the
// client a failure may be retried elsewhere; after it, a failure is a cut.
func (g *Gateway) stream(ctx context.Context, c *Call, a *Attempt, req *chat.Request, firstByte func()) error {
	req.Stream = true
	st, err := a.Target.Provider.Stream(ctx, req)
	if err != nil {
		return err
	}
	defer st.Close()
	acc := newAccumulator()
	var usage *chat.Usage
	for {
		ch, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			if a.Started {
				var pe *provider.Error
				if !errors.As(err, &pe) {
					err = &provider.Error{Kind: provider.KindCut, Err: err}
				}
			}
			return err
		}
		if ch.Usage != nil {
			usage = ch.Usage
		}
		if len(ch.Choices) == 0 {
			continue // usage-only chunk: forwarded at the end if asked for
		}
		if !a.Started {
			firstByte()
			c.TTFT = time.Since(c.Received)
		}
		acc.add(ch)
		ch.ID, ch.Object, ch.Model, ch.Usage = "chatcmpl-"+c.ID, chat.ObjectChunk, a.Target.Model.Name, nil
		if ch.Created == 0 {
			ch.Created = c.Received.Unix()
		}
		a.Started, c.Streamed = true, true
		if err := c.Emit(ch); err != nil {
			return fmt.Errorf("%w: %w", ErrClientGone, err)
		}
	}
	if !a.Started {
		return &provider.Error{Kind: provider.KindProtocol, Message: "the upstream stream ended without output"}
	}
	resp := acc.response()
	resp.Usage = usage
	c.finish(a.Target, resp)
	if usage != nil && c.Req.StreamOptions != nil && c.Req.StreamOptions.IncludeUsage {
		err := c.Emit(&chat.Chunk{ID: "chatcmpl-" + c.ID, Object: chat.ObjectChunk, Created: c.Received.Unix(),
			Model: a.Target.Model.Name, Choices: []chat.ChunkChoice{}, Usage: usage})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrClientGone, err)
		}
	}
	return nil
}

// accumulator rebuilds a complete message from stream deltas, for the trace
// and for validation.
type accumulator struct {
	text   strings.Builder
	role   string
	finish string
	calls  []chat.ToolCall
	// others holds the text of choices after the first (n > 1), so an
	// output counted locally counts every choice.
	others []*strings.Builder
}

func newAccumulator() *accumulator { return &accumulator{role: "assistant"} }

func (a *accumulator) add(ch *chat.Chunk) {
	for _, choice := range ch.Choices {
		if choice.Index != 0 {
			if i := choice.Index; i > 0 && i < chat.HardMaxChoices && choice.Delta.Content != nil {
				for len(a.others) < i {
					a.others = append(a.others, &strings.Builder{})
				}
				a.others[i-1].WriteString(*choice.Delta.Content)
			}
			continue
		}
		d := choice.Delta
		if d.Role != "" {
			a.role = d.Role
		}
		if d.Content != nil {
			a.text.WriteString(*d.Content)
		}
		for _, tc := range d.ToolCalls {
			i := len(a.calls)
			if tc.Index != nil {
				i = *tc.Index
			}
			if i < 0 || i >= chat.MaxTools {
				continue
			}
			for len(a.calls) <= i {
				a.calls = append(a.calls, chat.ToolCall{Type: "function"})
			}
			call := &a.calls[i]
			if tc.ID != "" {
				call.ID = tc.ID
			}
			if tc.Function.Name != "" {
				call.Function.Name = tc.Function.Name
			}
			call.Function.Arguments += tc.Function.Arguments
		}
		if choice.FinishReason != nil {
			a.finish = *choice.FinishReason
		}
	}
}

func (a *accumulator) response() *chat.Response {
	r := &chat.Response{Choices: []chat.Choice{{
		Message:      chat.Message{Role: a.role, Content: chat.Text(a.text.String()), ToolCalls: a.calls},
		FinishReason: a.finish,
	}}}
	for i := range a.others {
		r.Choices = append(r.Choices, chat.Choice{Index: i + 1, Message: chat.Message{Role: a.role, Content: chat.Text(a.others[i].String())}})
	}
	return r
}

// upstreamError maps the router's last failure to what the client gets:
// 429 when the upstream limited us, 504 for timeouts, 503 when every circuit
// is open, 502 for other upstream failures. An upstream's refusal of the
// request itself is the client's 400; an upstream refusing our credentials
// is Gantry's problem, so 502. The message names the model last tried and
// says what its upstream answered, so a client can report the cause; an
// upstream's refusal of Gantry's credentials is not quoted, and anything in
// the upstream's text that looks like a credential is blanked.
func upstreamError(err error, model string) *chat.Error {
	var ce *chat.Error
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, ErrNoTarget) {
		return &chat.Error{Status: http.StatusServiceUnavailable, Type: chat.TypeUpstream, Code: "no_healthy_upstream",
			Message: "every upstream for this model is failing; try again later", RetryAfter: time.Second, Cause: err}
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		if errors.Is(err, context.DeadlineExceeded) {
			return &chat.Error{Status: http.StatusGatewayTimeout, Type: chat.TypeTimeout, Code: "deadline_exceeded", Message: "the call passed its deadline", Cause: err}
		}
		return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "upstream_error", Message: "the upstream call failed", Cause: err}
	}
	switch {
	case pe.Kind == provider.KindTimeout:
		return &chat.Error{Status: http.StatusGatewayTimeout, Type: chat.TypeTimeout, Code: "upstream_timeout", Message: "the upstream" + of(model) + " did not answer in time" + reason(pe), Cause: err}
	case pe.Kind == provider.KindStatus && pe.Status == http.StatusTooManyRequests:
		ra := pe.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		return &chat.Error{Status: http.StatusTooManyRequests, Type: chat.TypeRateLimit, Code: "upstream_rate_limited",
			Message: "the upstream is rate limiting requests; retry later", RetryAfter: ra, Cause: err}
	case pe.Overloaded():
		ra := pe.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		return &chat.Error{Status: http.StatusServiceUnavailable, Type: chat.TypeUpstream, Code: "upstream_overloaded",
			Message: "the upstream" + of(model) + " is overloaded (" + statusText(pe.Status) + "); retry later" + reason(pe), RetryAfter: ra, Cause: err}
	case pe.Kind == provider.KindStatus && pe.Status >= 400 && pe.Status < 500 && pe.Status != 401 && pe.Status != 403 && pe.Status != 408:
		msg := "the upstream rejected the request"
		if pe.Message != "" {
			msg += ": " + pe.Message
		}
		return &chat.Error{Status: http.StatusBadRequest, Type: chat.TypeInvalidRequest, Code: "upstream_rejected", Message: msg, Cause: err}
	case pe.Kind == provider.KindCut:
		return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "stream_cut", Message: "the upstream" + of(model) + " stream broke off before it finished" + reason(pe), Cause: err}
	case pe.Kind == provider.KindStatus && (pe.Status == http.StatusUnauthorized || pe.Status == http.StatusForbidden):
		return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "upstream_error",
			Message: "the upstream" + of(model) + " refused Gantry's credentials (" + statusText(pe.Status) + "); an operator must fix the provider's key", Cause: err}
	case pe.Kind == provider.KindStatus:
		return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "upstream_error",
			Message: "the upstream" + of(model) + " answered " + statusText(pe.Status) + reason(pe), Cause: err}
	default:
		return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeUpstream, Code: "upstream_error",
			Message: "the upstream call" + of(model) + " failed: " + string(pe.Kind) + reason(pe), Cause: err}
	}
}

func of(model string) string {
	if model == "" {
		return ""
	}
	return " of model " + model
}

// statusText is "503 Service Unavailable", or the number alone for a
// status without a name (Anthropic's 529).
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return strconv.Itoa(status) + " " + t
	}
	return strconv.Itoa(status)
}

// reason is ": " and the upstream's own message and code, credentials
// blanked, or "" when it gave none.
func reason(pe *provider.Error) string {
	msg := pe.Message
	if msg == http.StatusText(pe.Status) {
		msg = "" // statusError's stand-in for an empty body
	}
	if pe.Code != "" && !strings.Contains(msg, pe.Code) {
		msg = strings.TrimSpace(pe.Code + " " + msg)
	}
	if msg == "" {
		return ""
	}
	return ": " + blankCredentials(msg)
}

// credentialPrefixes start the keys and tokens of common providers and
// Gantry's own.
var credentialPrefixes = []string{"sk-", "sk_", "gk_", "gat_", "AKIA", "ASIA", "AIza", "xai-", "eyJ", "Bearer"}

// blankCredentials replaces each word of s that looks like a credential, a
// known key prefix or a long run mixing letters and digits, with
// "[redacted]": an upstream's error text may quote the key it refused.
func blankCredentials(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		core := strings.Trim(w, `"'.,;:()[]{}<>`)
		if looksLikeCredential(core) {
			words[i] = strings.Replace(w, core, "[redacted]", 1)
		}
	}
	return strings.Join(words, " ")
}

func looksLikeCredential(w string) bool {
	for _, p := range credentialPrefixes {
		if strings.HasPrefix(w, p) && len(w) > len(p)+3 {
			return true
		}
	}
	if len(w) < 24 {
		return false
	}
	var letters, digits int
	for _, c := range w {
		switch {
		case '0' <= c && c <= '9':
			digits++
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			letters++
		case c == '-' || c == '_' || c == '*' || c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return letters > 0 && digits > 0
}
