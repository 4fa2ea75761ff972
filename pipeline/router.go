package pipeline

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"gantry/pipeline/provider"
)

// Router tries a route's targets: a weighted choice first, the rest of the
// targets and then the fallback chain after it, each with retries, backoff
// and a circuit breaker. Breaker state outlives configuration swaps, keyed by
// model name.
type Router struct {
	mu       sync.Mutex
	breakers map[string]*breaker
	now      func() time.Time
	// OnBreaker, when set, hears every breaker state change.
	OnBreaker func(model string, state BreakerState)
}

// NewRouter returns a router with all circuits closed.
func NewRouter() *Router {
	return &Router{breakers: map[string]*breaker{}, now: time.Now}
}

// BreakerState is a circuit's state.
type BreakerState int

const (
	Closed BreakerState = iota
	HalfOpen
	Open
)

func (s BreakerState) String() string {
	return [...]string{"closed", "half-open", "open"}[s]
}

type breaker struct {
	failures  int
	openUntil time.Time
	state     BreakerState
	probing   bool
}

// Attempt tells a try function which target to call and how the call went.
type Attempt struct {
	Target *Target
	// Started is set by the try function once output reached the client;
	// after that a failure cannot be retried or fall back.
	Started bool
}

// errAttemptTimeout is the cause of an attempt cancelled by its timeout.
var errAttemptTimeout = errors.New("attempt timed out")

// ErrNoTarget means every target of the route had its circuit open.
var ErrNoTarget = errors.New("no healthy target: every circuit is open")

// Outcome is the record of one try, for the trace.
type Outcome struct {
	Target   *Target
	Start    time.Time
	Duration time.Duration
	Backoff  time.Duration // waited before this try
	Err      error
	Skipped  bool // circuit open, not tried
}

// Do runs try against the route's targets until one succeeds, an error is
// not worth another try, or the deadline passes. try gets a context that is
// cancelled when the attempt's timeout fires; for a stream, try calls
// firstByte once the first chunk arrived, which stops the attempt timer so a
// long generation is bounded only by the overall deadline.
func (r *Router) Do(ctx context.Context, route *Route, try func(ctx context.Context, a *Attempt, firstByte func()) error, record func(Outcome)) error {
	ctx, cancel := context.WithTimeout(ctx, route.Deadline.D())
	defer cancel()
	var last error
	tried := 0
	for _, t := range r.plan(route) {
		if !r.allow(t.Model.Name) {
			record(Outcome{Target: t, Start: r.now(), Skipped: true, Err: ErrNoTarget})
			continue
		}
		var backoff time.Duration
		for n := 1; n <= route.Retry.Attempts; n++ {
			if n > 1 {
				backoff = nextBackoff(route, n-1, last)
				if dl, ok := ctx.Deadline(); ok && time.Until(dl) < backoff {
					break // the wait would outlast the deadline: fall back now
				}
				if err := sleep(ctx, backoff); err != nil {
					return last
				}
			}
			tried++
			a := &Attempt{Target: t}
			start := r.now()
			err := r.attempt(ctx, route, a, try)
			record(Outcome{Target: t, Start: start, Duration: r.now().Sub(start), Backoff: backoff, Err: err})
			r.report(t.Model.Name, route, err)
			if err == nil {
				return nil
			}
			last = err
			if a.Started || !retryable(err) || ctx.Err() != nil {
				return err
			}
			if !retryHere(err) {
				break // this target will fail again the same way: fall back
			}
		}
	}
	if tried == 0 {
		return ErrNoTarget
	}
	return last
}

func (r *Router) attempt(ctx context.Context, route *Route, a *Attempt, try func(context.Context, *Attempt, func()) error) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(route.Timeout.D(), func() { cancel(errAttemptTimeout) })
	defer timer.Stop()
	err := try(actx, a, func() { timer.Stop() })
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
		return &provider.Error{Kind: provider.KindTimeout, Err: errAttemptTimeout}
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		var pe *provider.Error
		if !errors.As(err, &pe) {
			return &provider.Error{Kind: provider.KindTimeout, Err: err}
		}
	}
	return err
}

// retryable: only upstream failures that another try may fix. A client
// that went away, or an error of Gantry's own, ends the call.
func retryable(err error) bool {
	var pe *provider.Error
	return errors.As(err, &pe) && pe.Retryable()
}

// retryHere: whether the same target may succeed on another try.
func retryHere(err error) bool {
	var pe *provider.Error
	return errors.As(err, &pe) && pe.RetryHere()
}

// nextBackoff is exponential with full jitter, at least what the upstream
// asked for in Retry-After.
func nextBackoff(route *Route, retry int, last error) time.Duration {
	base := route.Retry.Backoff.D() << (retry - 1)
	if max := route.Retry.MaxBackoff.D(); base > max || base <= 0 {
		base = max
	}
	d := base/2 + rand.N(base/2+1)
	var pe *provider.Error
	if errors.As(last, &pe) && pe.RetryAfter > d {
		d = pe.RetryAfter
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// plan orders the targets: a weighted random order of the route's targets,
// then its fallbacks, each model once.
func (r *Router) plan(route *Route) []*Target {
	out := make([]*Target, 0, len(route.targets)+len(route.fallbacks))
	if len(route.targets) == 1 {
		out = append(out, route.targets[0])
	} else {
		weights := append([]int(nil), route.weights...)
		total := 0
		for _, w := range weights {
			total += w
		}
		for range route.targets {
			if total <= 0 {
				break
			}
			pick := rand.N(total)
			for i, w := range weights {
				if pick < w {
					out = append(out, route.targets[i])
					total -= w
					weights[i] = 0
					break
				}
				pick -= w
			}
		}
		for i, t := range route.targets { // zero-weight targets last, in order
			if route.weights[i] == 0 {
				out = append(out, t)
			}
		}
	}
	for _, f := range route.fallbacks {
		dup := false
		for _, t := range out {
			dup = dup || t == f
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out
}

// allow reports whether the model's circuit lets a call through: closed, or
// open past its cooldown with no probe under way (then this call probes).
func (r *Router) allow(model string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.breakers[model]
	if b == nil || b.state == Closed {
		return true
	}
	if b.state == Open && r.now().Before(b.openUntil) {
		return false
	}
	if b.probing {
		return false
	}
	b.probing = true
	r.set(model, b, HalfOpen)
	return true
}

// report feeds a result to the model's breaker. Only failures of the
// upstream count; a client error or a cancelled client says nothing about
// its health.
func (r *Router) report(model string, route *Route, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.breakers[model]
	if b == nil {
		b = &breaker{}
		r.breakers[model] = b
	}
	b.probing = false
	switch {
	case err == nil:
		b.failures = 0
		r.set(model, b, Closed)
	case retryable(err):
		b.failures++
		if b.state == HalfOpen || b.failures >= route.Breaker.Failures {
			b.openUntil = r.now().Add(route.Breaker.Cooldown.D())
			r.set(model, b, Open)
		}
	}
}

func (r *Router) set(model string, b *breaker, s BreakerState) {
	if b.state == s {
		return
	}
	b.state = s
	if r.OnBreaker != nil {
		r.OnBreaker(model, s)
	}
}

// State returns the circuit state of a model.
func (r *Router) State(model string) BreakerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.breakers[model]; b != nil {
		return b.state
	}
	return Closed
}
