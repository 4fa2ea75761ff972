package canary

import (
	"math"
	"math/rand/v2"
	"time"

	"gantry/eval/sketch"
)

// behaviour is how a simulated release answers.
type behaviour struct {
	errRate, valRate float64 // per call
	feedback, down   float64 // share of calls with feedback, share of that negative
	medianMs         float64
	costUSD          float64
}

var prodLike = behaviour{errRate: 0.01, valRate: 0.05, feedback: 0.1, down: 0.2, medianMs: 400, costUSD: 0.0004}

// side accumulates a release's cumulative counters as the cluster would.
type side struct {
	c Counters
	b *sketch.Builder
}

func newSide() *side { return &side{b: sketch.NewBuilder()} }

func (s *side) call(r *rand.Rand, b behaviour) {
	s.c.Requests++
	if r.Float64() < b.errRate {
		s.c.Errors++
	}
	if r.Float64() < b.valRate {
		s.c.ValidationFailures++
	}
	if r.Float64() < b.feedback {
		if r.Float64() < b.down {
			s.c.FeedbackDown++
		} else {
			s.c.FeedbackUp++
		}
	}
	s.c.CostUSD += b.costUSD * (0.8 + 0.4*r.Float64())
	s.b.Add(b.medianMs * math.Exp(0.5*r.NormFloat64()))
}

func (s *side) snapshot() Counters {
	c := s.c
	c.Latency = s.b.Sketch()
	return c
}

// scenario is a simulated canary: rate calls a second, weight of them to
// the canary, a look every tick.
type scenario struct {
	rate      int
	weight    float64
	tick      time.Duration
	duration  time.Duration
	prod, can behaviour
	warmup    int // production calls before the canary starts
}

// simulate runs the scenario with seed and returns the decision a leader
// looking every tick holds at the end, and when it was taken.
func simulate(p Policy, sc scenario, seed uint64) Decision {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	prod, can := newSide(), newSide()
	for range sc.warmup {
		prod.call(r, sc.prod)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := Begin(Point{At: t0, Canary: can.snapshot(), Production: prod.snapshot()})
	perTick := int(float64(sc.rate) * sc.tick.Seconds())
	var d Decision
	for at := sc.tick; at <= sc.duration; at += sc.tick {
		for range perTick {
			if r.Float64() < sc.weight {
				can.call(r, sc.can)
			} else {
				prod.call(r, sc.prod)
			}
		}
		var err error
		st, d, err = Step(p, st, Point{At: t0.Add(at), Canary: can.snapshot(), Production: prod.snapshot()})
		if err != nil {
			panic(err)
		}
		if d.Outcome != Continue {
			return d
		}
	}
	return d
}
