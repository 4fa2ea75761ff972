package pipeline

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"gantry/config"
	"gantry/pipeline/budget"
	"gantry/pipeline/cache"
	"gantry/pipeline/chat"
	"gantry/pipeline/limit"
	"gantry/pipeline/release"
	"gantry/pipeline/semcache"
	"gantry/pipeline/trace"
)

// Gateway runs calls through the pipeline against the current snapshot.
// NewGateway builds it with everything it works with; nothing is set on it
// afterwards, so a call never sees a gateway half wired.
type Gateway struct {
	snap       atomic.Pointer[Snapshot]
	router     *Router
	record     func(*trace.Trace)
	node       string
	log        *slog.Logger
	count      Counter
	limiter    *limit.Limiter
	ledger     budget.Ledger
	cache      *cache.Cache
	embedCache *cache.Cache
	embedTTL   time.Duration
	obs        Observer
	retrieve   Retriever
	semantic   *semcache.Cache
	summaries  *cache.Cache
}

// Deps are what a gateway works with. Every part but Router is optional:
// a nil part turns its work off.
type Deps struct {
	// Node names this agent on traces.
	Node string
	Log  *slog.Logger // nil: slog.Default()
	// Router tries a route's targets; nil: a new one with every circuit
	// closed.
	Router *Router
	// Record receives every finished trace. It must not block: the agent
	// hands it to a bounded asynchronous queue.
	Record func(*trace.Trace)
	// Counter estimates tokens of messages, and of output where a
	// provider reports no usage.
	Counter Counter
	// Retriever fetches a release's context.
	Retriever Retriever
	// The policy layer.
	Limiter *limit.Limiter
	Ledger  budget.Ledger
	Cache   *cache.Cache
	// EmbedCache keeps embeddings for EmbedTTL: a model gives the same
	// text the same vector, so a repeated text is not paid for twice. Off
	// when nil or EmbedTTL is 0.
	EmbedCache *cache.Cache
	EmbedTTL   time.Duration
	// Observer hears what the trace does not carry in countable form.
	Observer Observer
	// Semantic is the semantic cache of releases that turn it on.
	Semantic *semcache.Cache
	// Summaries keeps the summaries of context policies by the prefix
	// they replace; without it every summary is written anew.
	Summaries *cache.Cache
}

// Counter estimates token counts.
type Counter interface {
	Messages([]chat.Message) int
	Text(string) int
}

// Retriever fetches a release's context for a query.
type Retriever func(ctx context.Context, cfg *config.Config, strategy config.Retrieval, query string) (Retrieved, error)

// Retrieved is what retrieval adds to a call: the context block, the
// sources for the trace, and Format, which writes the block again from
// some of the sources (by index), for a context policy that drops chunks.
type Retrieved struct {
	Block   string
	Sources []trace.Source
	Format  func(keep []int) string
}

// NewGateway returns a gateway with no snapshot yet; Swap installs one.
func NewGateway(d Deps) *Gateway {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Router == nil {
		d.Router = NewRouter()
	}
	return &Gateway{router: d.Router, record: d.Record, node: d.Node, log: d.Log, count: d.Counter,
		limiter: d.Limiter, ledger: d.Ledger, cache: d.Cache, embedCache: d.EmbedCache, embedTTL: d.EmbedTTL,
		obs: d.Observer, retrieve: d.Retriever, semantic: d.Semantic, summaries: d.Summaries}
}

// CountText estimates the tokens of s, 0 without a counter.
func (g *Gateway) CountText(s string) int {
	if g.count == nil {
		return 0
	}
	return g.count.Text(s)
}

// Swap installs a new snapshot. Calls already running finish on the one they
// started with.
func (g *Gateway) Swap(s *Snapshot) {
	g.snap.Store(s)
	if g.obs != nil && s.Config != nil {
		models := make([]string, len(s.Config.Models))
		for i, m := range s.Config.Models {
			models[i] = m.Name
		}
		g.obs.DeclareBreakers(models...)
	}
}

// Snapshot returns the current snapshot.
func (g *Gateway) Snapshot() *Snapshot { return g.snap.Load() }

// Breaker is the state of model's circuit breaker; Closed when the
// gateway routes without breakers.
func (g *Gateway) Breaker(model string) BreakerState {
	if g.router == nil {
		return Closed
	}
	return g.router.State(model)
}

// Observer counts calls in flight, cache lookups and validation failures,
// and hears the configured models at each swap so every breaker is shown
// before its first change.
type Observer interface {
	CallStarted()
	CallEnded()
	DeclareBreakers(models ...string)
	CacheLookup(feature string, hit bool)
	SemanticLookup(feature string, hit bool)
	ValidationFailure(feature, release, reason string)
}

type stage struct {
	name string
	run  func(*Gateway, context.Context, *Call) error
}

// stages in the order of DESIGN.md, except that the policy stage follows
// context and prompt: safety scans, token limits and the budget's worst
// case all need the final messages. Recording runs after them all,
// whatever happened.
var stages = []stage{
	{"authenticate", (*Gateway).authenticate},
	{"resolve", (*Gateway).resolve},
	{"context", (*Gateway).context},
	{"prompt", (*Gateway).prompt},
	{"compress", (*Gateway).compress},
	{"policy", (*Gateway).policy},
	{"route", (*Gateway).routeCached},
	{"validate", (*Gateway).validate},
}

// Serve runs one call. On return c.Resp holds the answer, or the returned
// error says what the client gets. A panic in a stage becomes a 500 and is
// recorded like any other failure. The call is served from c.Snap when the
// caller set it (the snapshot its request was decoded against), else from
// the current one: one snapshot for the whole request.
func (g *Gateway) Serve(ctx context.Context, c *Call) (err *chat.Error) {
	if c.Snap == nil {
		c.Snap = g.snap.Load()
	}
	if g.obs != nil {
		g.obs.CallStarted()
		defer g.obs.CallEnded()
	}
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("panic in pipeline", "request_id", c.ID, "panic", p, "stack", string(debug.Stack()))
			err = &chat.Error{Status: http.StatusInternalServerError, Type: chat.TypeServer, Message: "internal error in the gateway", Cause: fmt.Errorf("panic: %v", p)}
		}
		c.Err = err
		g.account(c)
		g.end(c)
		if g.record != nil {
			g.record(g.Trace(c))
		}
	}()
	if c.Spans == nil { // one span a stage
		c.Spans = make([]Span, 0, len(stages))
	}
	for _, s := range stages {
		start := time.Now()
		err := s.run(g, ctx, c)
		c.Spans = append(c.Spans, Span{Name: s.name, Start: start, Dur: time.Since(start), Err: err})
		if err != nil {
			return asChatError(err)
		}
	}
	return nil
}

func (g *Gateway) authenticate(_ context.Context, c *Call) error {
	secret := c.Secret
	c.Secret = ""
	k, err := Authenticate(c.Snap, secret)
	if err != nil {
		// A refused caller is found by the fingerprint of what it sent.
		if secret != "" {
			c.KeyFP = config.KeyFingerprint(secret)
		}
		return err
	}
	c.Key, c.KeyFP = k, config.HashFingerprint(k.Hash) // the stored hash: no second one on the hot path
	if c.Evaluation() && !k.Eval {
		return &chat.Error{Status: http.StatusForbidden, Type: chat.TypePermission, Code: "evaluation_not_allowed",
			Message: "key " + k.Name + " may not run evaluations: pinning a release (X-Gantry-Release) and marking evaluation traffic (X-Gantry-Eval-Run) need a key with eval: true"}
	}
	return nil
}

// Authenticate finds the virtual key a caller presents and checks that it
// is live. Every failure is a 401 that says why without revealing whether
// a key of that shape exists.
func Authenticate(s *Snapshot, secret string) (*config.Key, *chat.Error) {
	if secret == "" {
		return nil, &chat.Error{Status: http.StatusUnauthorized, Type: chat.TypeAuthentication, Code: "missing_api_key",
			Message: "no API key: send a Gantry virtual key as 'Authorization: Bearer <key>'"}
	}
	invalid := &chat.Error{Status: http.StatusUnauthorized, Type: chat.TypeAuthentication, Code: "invalid_api_key",
		Message: "the API key is not valid"}
	if !config.WellFormedKey(secret) {
		return nil, invalid
	}
	hash := config.HashKey(secret)
	k, ok := s.Key(hash)
	// The map lookup is on a hash the caller cannot steer; the constant-time
	// compare keeps the final check free of timing differences too.
	if !ok || subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
		return nil, invalid
	}
	if k.Revoked {
		return nil, &chat.Error{Status: http.StatusUnauthorized, Type: chat.TypeAuthentication, Code: "revoked_api_key", Message: "the API key was revoked"}
	}
	if k.Expires != nil && !time.Now().Before(k.Expires.Time) {
		return nil, &chat.Error{Status: http.StatusUnauthorized, Type: chat.TypeAuthentication, Code: "expired_api_key", Message: "the API key has expired"}
	}
	return k, nil
}

// resolve finds what the call names: a feature's live release, a route or
// a model.
func (g *Gateway) resolve(_ context.Context, c *Call) error {
	name := c.Req.Model
	if fname, ok := strings.CutPrefix(name, FeaturePrefix); ok {
		f, ok := c.Snap.Feature(fname)
		if !ok {
			return chat.NotFound("feature_not_found", "feature %q does not exist", fname)
		}
		who := c.User
		if who == "" {
			who = c.ID // no user: assign each call on its own
		}
		version, label := release.Assign(f.Name, f.Labels, who)
		if c.Pin != 0 {
			if f.Release(c.Pin) == nil {
				return chat.NotFound("release_not_found", "feature %q has no release v%d", fname, c.Pin)
			}
			version, label = c.Pin, LabelPinned
		}
		c.Feature, c.Release, c.Label = f, f.Release(version), label
		c.Route = c.Release.Route
	} else {
		if c.Pin != 0 {
			return chat.BadRequest("model", "X-Gantry-Release pins a release of a feature; %q is not a feature (name one as %s<name>)", name, FeaturePrefix)
		}
		r, ok := c.Snap.Route(name)
		if !ok {
			return chat.NotFound("model_not_found", "model %q does not exist; GET /v1/models lists what this gateway serves", name)
		}
		c.Route = r
	}
	if err := permit(c); err != nil {
		return err
	}
	return admit(c)
}

// KeyAllows reports whether a key may name a model, route or feature.
func KeyAllows(k *config.Key, name string) bool {
	if f, ok := strings.CutPrefix(name, FeaturePrefix); ok {
		return len(k.Features) == 0 || contains(k.Features, f)
	}
	return len(k.Models) == 0 || contains(k.Models, name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// asChatError makes sure the client gets the OpenAI error shape.
func asChatError(err error) *chat.Error {
	var ce *chat.Error
	if errors.As(err, &ce) {
		return ce
	}
	return &chat.Error{Status: http.StatusInternalServerError, Type: chat.TypeServer, Message: "internal error in the gateway", Cause: err}
}
