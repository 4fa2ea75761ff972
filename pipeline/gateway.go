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
type Gateway struct {
	snap   atomic.Pointer[Snapshot]
	Router *Router
	// Record receives every finished trace. It must not block: the agent
	// hands it to a bounded asynchronous queue.
	Record func(*trace.Trace)
	// Node names this agent on traces.
	Node string
	Log  *slog.Logger
	// Count estimates tokens of messages and of text where a provider
	// reports no usage.
	CountMessages func([]chat.Message) int
	CountText     func(string) int
	// Policy layer: each part is off when nil.
	Limiter *limit.Limiter
	Ledger  budget.Ledger
	Cache   *cache.Cache
	// EmbedCache keeps embeddings for EmbedTTL: a model gives the same
	// text the same vector, so a repeated text is not paid for twice. Off
	// when nil or EmbedTTL is 0.
	EmbedCache *cache.Cache
	EmbedTTL   time.Duration
	// Obs hears what the trace does not carry in countable form.
	Obs Observer
	// Retrieve fetches a release's context for a query: the block for the
	// prompt and the sources for the trace.
	Retrieve func(ctx context.Context, cfg *config.Config, strategy config.Retrieval, query string) (Retrieved, error)
	// Semantic is the semantic cache of releases that turn it on; off
	// when nil.
	Semantic *semcache.Cache
	// Summaries keeps the summaries of context policies by the prefix
	// they replace; summaries are not reused when nil.
	Summaries *cache.Cache
}

// Retrieved is what retrieval adds to a call: the context block, the
// sources for the trace, and Format, which writes the block again from
// some of the sources (by index), for a context policy that drops chunks.
type Retrieved struct {
	Block   string
	Sources []trace.Source
	Format  func(keep []int) string
}

// Swap installs a new snapshot. Calls already running finish on the one they
// started with.
func (g *Gateway) Swap(s *Snapshot) {
	g.snap.Store(s)
	if g.Obs != nil && s.Config != nil {
		models := make([]string, len(s.Config.Models))
		for i, m := range s.Config.Models {
			models[i] = m.Name
		}
		g.Obs.DeclareBreakers(models...)
	}
}

// Snapshot returns the current snapshot.
func (g *Gateway) Snapshot() *Snapshot { return g.snap.Load() }

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
// recorded like any other failure.
func (g *Gateway) Serve(ctx context.Context, c *Call) (err *chat.Error) {
	c.Snap = g.snap.Load()
	if g.Obs != nil {
		g.Obs.CallStarted()
		defer g.Obs.CallEnded()
	}
	defer func() {
		if p := recover(); p != nil {
			g.Log.Error("panic in pipeline", "request_id", c.ID, "panic", p, "stack", string(debug.Stack()))
			err = &chat.Error{Status: http.StatusInternalServerError, Type: chat.TypeServer, Message: "internal error in the gateway", Cause: fmt.Errorf("panic: %v", p)}
		}
		c.Err = err
		t := g.Trace(c)
		c.CostUSD = t.CostUSD
		g.end(c, t.CostUSD, t.InputTokens+t.OutputTokens)
		if g.Record != nil {
			g.Record(t)
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
		return err
	}
	c.Key = k
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
