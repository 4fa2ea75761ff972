// Package limit enforces request rate (RPM), token rate (TPM) and
// concurrency limits per virtual key, team and feature.
//
// Each scope has two token buckets that refill continuously over a minute,
// so a limit of 60 RPM admits a burst of 60 and then one per second: there is
// no window edge at which twice the limit gets through. A request takes one
// request token and its estimated tokens from every scope at once or from
// none; the Permit it gets back corrects the estimate with the real usage and
// frees its concurrency slot exactly once.
//
// Limits come with every call from the caller's current configuration, and
// counters are keyed by scope name, so a configuration swap applies at once
// and keeps the counters. Share lets a cluster give each agent its part of a
// limit, so replicas do not multiply it.
package limit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gantry/config"
)

// Scope is one limited subject and its current limits.
type Scope struct {
	Name  string // e.g. key:app, team:core, feature:chat
	Limit config.RateLimit
}

// ScopesFor returns the rate-limited scopes of a request from cfg: the
// key's, its team's and the feature's, each only when it has limits.
func ScopesFor(cfg *config.Config, key, team, feature string) []Scope {
	return NewIndex(cfg).For(key, team, feature)
}

// Index holds the rate-limited scopes of a configuration by key and by
// feature, so a call finds its scopes with two lookups whatever the size
// of the configuration.
type Index struct {
	keys     map[string]keyScopes
	teams    map[string]Scope
	features map[string]Scope
}

// NewIndex indexes cfg's rate limits.
func NewIndex(cfg *config.Config) *Index {
	ix := &Index{keys: map[string]keyScopes{}, teams: map[string]Scope{}, features: map[string]Scope{}}
	for i := range cfg.Teams {
		if sc, ok := scope("team:", cfg.Teams[i].Name, cfg.Teams[i].RateLimit); ok {
			if _, dup := ix.teams[cfg.Teams[i].Name]; !dup {
				ix.teams[cfg.Teams[i].Name] = sc
			}
		}
	}
	for i := range cfg.Features {
		if sc, ok := scope("feature:", cfg.Features[i].Name, cfg.Features[i].RateLimit); ok {
			if _, dup := ix.features[cfg.Features[i].Name]; !dup {
				ix.features[cfg.Features[i].Name] = sc
			}
		}
	}
	for i := range cfg.Keys {
		k := &cfg.Keys[i]
		if _, dup := ix.keys[k.Name]; dup {
			continue
		}
		e := keyScopes{team: k.Team}
		if sc, ok := scope("key:", k.Name, k.RateLimit); ok {
			e.own, e.scopes = &sc, append(e.scopes, sc)
		}
		if sc, ok := ix.teams[k.Team]; ok {
			e.scopes = append(e.scopes, sc)
		}
		ix.keys[k.Name] = e
	}
	return ix
}

// keyScopes are a key's own scope and, in scopes, the key's and its
// configured team's.
type keyScopes struct {
	team   string
	own    *Scope
	scopes []Scope
}

func scope(prefix, name string, rl *config.RateLimit) (Scope, bool) {
	if name != "" && rl != nil && (rl.RPM > 0 || rl.TPM > 0 || rl.MaxConcurrent > 0) {
		return Scope{Name: prefix + name, Limit: *rl}, true
	}
	return Scope{}, false
}

// For returns the scopes of a call by key, team and feature: the key's,
// its team's and the feature's, each only when it has limits. The slice
// is shared; callers must not change it.
func (ix *Index) For(key, team, feature string) []Scope {
	k := ix.keys[key]
	base := k.scopes
	if k.team != team { // a team other than the key's own
		base = nil
		if k.own != nil {
			base = append(base, *k.own)
		}
		if sc, ok := ix.teams[team]; ok {
			base = append(base, sc)
		}
	}
	f, ok := ix.features[feature]
	if !ok {
		return base
	}
	return append(base[:len(base):len(base)], f)
}

// Dimensions of a limit.
const (
	Requests   = "requests"
	Tokens     = "tokens"
	Concurrent = "concurrent"
)

// ErrLimited is what every refusal unwraps to.
var ErrLimited = errors.New("rate limited")

// LimitError is a refusal: which scope and dimension, and when to retry.
// A zero RetryAfter with Dimension tokens means the request can never fit.
type LimitError struct {
	Scope      string
	Dimension  string
	RetryAfter time.Duration
	Limit      int
}

func (e *LimitError) Error() string {
	if e.Dimension == Tokens && e.RetryAfter == 0 {
		return fmt.Sprintf("rate limit of %s: request needs more tokens than its limit of %d per minute", e.Scope, e.Limit)
	}
	return fmt.Sprintf("rate limit of %s reached: %d %s; retry after %s", e.Scope, e.Limit, e.unit(), e.RetryAfter.Round(time.Millisecond))
}

func (e *LimitError) unit() string {
	switch e.Dimension {
	case Requests:
		return "requests per minute"
	case Tokens:
		return "tokens per minute"
	}
	return "concurrent requests"
}

func (e *LimitError) Unwrap() error { return ErrLimited }

// Status is what the gateway reports in x-ratelimit-* headers: for each
// dimension, the scope with the least remaining.
type Status struct {
	LimitRequests     int
	RemainingRequests int
	ResetRequests     time.Duration
	LimitTokens       int
	RemainingTokens   int
	ResetTokens       time.Duration
	// RetryAfter is set on refusal.
	RetryAfter time.Duration
}

// Header writes the OpenAI-style rate limit headers, and Retry-After on a
// refusal. Dimensions without a limit are left out.
func (s Status) Header(h http.Header) {
	if s.LimitRequests > 0 {
		h.Set("x-ratelimit-limit-requests", strconv.Itoa(s.LimitRequests))
		h.Set("x-ratelimit-remaining-requests", strconv.Itoa(s.RemainingRequests))
		h.Set("x-ratelimit-reset-requests", roundUp(s.ResetRequests).String())
	}
	if s.LimitTokens > 0 {
		h.Set("x-ratelimit-limit-tokens", strconv.Itoa(s.LimitTokens))
		h.Set("x-ratelimit-remaining-tokens", strconv.Itoa(s.RemainingTokens))
		h.Set("x-ratelimit-reset-tokens", roundUp(s.ResetTokens).String())
	}
	if s.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(s.RetryAfter.Seconds()))))
	}
}

func roundUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// Options configure a Limiter.
type Options struct {
	Clock func() time.Time
	// Share is the fraction of every limit this agent enforces, in (0,1];
	// nil means 1. It is read on each call.
	Share func() float64
	// ConcurrentRetry is the Retry-After of a concurrency refusal.
	ConcurrentRetry time.Duration
}

// Limiter holds the counters of every scope. It is safe for concurrent use.
type Limiter struct {
	opts Options

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

// bucket counts use rather than what is left, so a changed limit applies to
// the same usage: lowering 10 RPM to 4 after 5 requests refuses the next.
// Use drains continuously at the limit per minute.
type bucket struct {
	reqUsed, tokUsed float64
	at               time.Time // when the usage was last drained
	inflight         int
}

// New returns an empty Limiter.
func New(opts Options) *Limiter {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.ConcurrentRetry <= 0 {
		opts.ConcurrentRetry = time.Second
	}
	return &Limiter{opts: opts, buckets: map[string]*bucket{}}
}

const window = time.Minute

// caps are a scope's limits scaled by the share.
type caps struct {
	rpm, tpm float64
	conc     int
}

func (l *Limiter) caps(s Scope) caps {
	share := 1.0
	if l.opts.Share != nil {
		if v := l.opts.Share(); v > 0 && v < 1 {
			share = v
		}
	}
	c := caps{rpm: float64(s.Limit.RPM) * share, tpm: float64(s.Limit.TPM) * share}
	if s.Limit.MaxConcurrent > 0 {
		c.conc = max(1, int(math.Floor(float64(s.Limit.MaxConcurrent)*share)))
	}
	if s.Limit.RPM > 0 {
		c.rpm = math.Max(1, c.rpm)
	}
	return c
}

// drain brings a bucket's usage up to now under the current caps.
func (b *bucket) drain(c caps, now time.Time) {
	dt := now.Sub(b.at).Seconds()
	if dt < 0 {
		dt = 0
	}
	b.at = now
	b.reqUsed = math.Max(0, b.reqUsed-dt*c.rpm/window.Seconds())
	b.tokUsed = math.Max(0, b.tokUsed-dt*c.tpm/window.Seconds())
}

func (l *Limiter) bucket(name string, c caps, now time.Time) *bucket {
	b := l.buckets[name]
	if b == nil {
		b = &bucket{at: now}
		l.buckets[name] = b
		return b
	}
	b.drain(c, now)
	return b
}

// wait is how long until used drains to at most capacity-need.
func wait(used, need, capacity float64) time.Duration {
	over := used + need - capacity
	if over <= 0 || capacity <= 0 {
		return 0
	}
	return time.Duration(over / capacity * float64(window))
}

// Acquire admits a request with an estimated token count against every
// scope, or refuses it with a *LimitError and takes nothing. The Status is
// valid in both cases. On success the caller must call Permit.Done exactly
// once on every path; further calls do nothing.
func (l *Limiter) Acquire(ctx context.Context, scopes []Scope, estTokens int) (*Permit, Status, error) {
	if err := ctx.Err(); err != nil {
		return nil, Status{}, err
	}
	if estTokens < 0 {
		estTokens = 0
	}
	est := float64(estTokens)
	now := l.opts.Clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)

	var refusal *LimitError
	for _, s := range scopes {
		c := l.caps(s)
		b := l.bucket(s.Name, c, now)
		var e *LimitError
		switch {
		case c.tpm > 0 && est > c.tpm:
			e = &LimitError{Scope: s.Name, Dimension: Tokens, Limit: int(c.tpm)}
		case c.conc > 0 && b.inflight >= c.conc:
			e = &LimitError{Scope: s.Name, Dimension: Concurrent, Limit: c.conc, RetryAfter: l.opts.ConcurrentRetry}
		case c.rpm > 0 && b.reqUsed+1 > c.rpm:
			e = &LimitError{Scope: s.Name, Dimension: Requests, Limit: int(c.rpm), RetryAfter: wait(b.reqUsed, 1, c.rpm)}
		case c.tpm > 0 && b.tokUsed+est > c.tpm:
			e = &LimitError{Scope: s.Name, Dimension: Tokens, Limit: int(c.tpm), RetryAfter: wait(b.tokUsed, est, c.tpm)}
		}
		if e != nil && worse(e, refusal) {
			refusal = e
		}
	}
	if refusal != nil {
		st := l.status(scopes, now)
		st.RetryAfter = refusal.RetryAfter
		return nil, st, refusal
	}
	p := &Permit{l: l, est: estTokens, names: make([]string, len(scopes))}
	for i, s := range scopes {
		c := l.caps(s)
		b := l.buckets[s.Name]
		if c.rpm > 0 {
			b.reqUsed++
		}
		if c.tpm > 0 {
			b.tokUsed += est
		}
		b.inflight++
		p.names[i] = s.Name
	}
	p.scopes = scopes
	return p, l.status(scopes, now), nil
}

// worse reports whether refusal a outlasts b: retrying before the longest
// wait is futile, and a request that can never fit outlasts everything.
func worse(a, b *LimitError) bool {
	never := func(e *LimitError) bool { return e.Dimension == Tokens && e.RetryAfter == 0 }
	switch {
	case b == nil:
		return true
	case never(b):
		return false
	case never(a):
		return true
	}
	return a.RetryAfter > b.RetryAfter
}

// status reads the least-remaining scope per dimension. Buckets are current.
func (l *Limiter) status(scopes []Scope, now time.Time) Status {
	var st Status
	reqFrac, tokFrac := math.Inf(1), math.Inf(1)
	for _, s := range scopes {
		c := l.caps(s)
		b := l.buckets[s.Name]
		// Reset is when usage drains to zero.
		if c.rpm > 0 {
			if f := 1 - b.reqUsed/c.rpm; f < reqFrac {
				reqFrac = f
				st.LimitRequests = int(c.rpm)
				st.RemainingRequests = max(0, int(math.Floor(c.rpm-b.reqUsed+1e-9)))
				st.ResetRequests = wait(b.reqUsed, c.rpm, c.rpm)
			}
		}
		if c.tpm > 0 {
			if f := 1 - b.tokUsed/c.tpm; f < tokFrac {
				tokFrac = f
				st.LimitTokens = int(c.tpm)
				st.RemainingTokens = max(0, int(math.Floor(c.tpm-b.tokUsed+1e-9)))
				st.ResetTokens = wait(b.tokUsed, c.tpm, c.tpm)
			}
		}
	}
	return st
}

// sweep drops buckets that are idle and full again, at most once a minute,
// so scopes that left the configuration do not accumulate.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < window {
		return
	}
	l.lastSweep = now
	for name, b := range l.buckets {
		if b.inflight == 0 && now.Sub(b.at) > 2*window {
			delete(l.buckets, name)
		}
	}
}

// Permit is an admitted request's claim on its scopes.
type Permit struct {
	l      *Limiter
	scopes []Scope
	names  []string
	est    int
	done   atomic.Bool
}

// Done ends the request: it frees the concurrency slots and replaces the
// token estimate with actualTokens (negative means unknown: keep the
// estimate). Only the first call has an effect; Done on nil does nothing.
func (p *Permit) Done(actualTokens int) {
	if p == nil || !p.done.CompareAndSwap(false, true) {
		return
	}
	now := p.l.opts.Clock()
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	for _, s := range p.scopes {
		c := p.l.caps(s)
		b := p.l.bucket(s.Name, c, now)
		b.inflight--
		if actualTokens >= 0 && c.tpm > 0 {
			// A larger actual leaves the bucket over its limit: later
			// requests wait until it drains.
			b.tokUsed = math.Max(0, b.tokUsed+float64(actualTokens-p.est))
		}
	}
}

// InFlight returns the requests in flight of a scope, for metrics and tests.
func (l *Limiter) InFlight(scope string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[scope]; b != nil {
		return b.inflight
	}
	return 0
}
