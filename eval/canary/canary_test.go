package canary

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"gantry/eval/sketch"
)

// Equal canaries, looked at every 5 s for 10 minutes, are called a
// regression in at most alpha of the runs, over all metrics together.
func TestFalseAlarmRateOfEqualCanaries(t *testing.T) {
	const sims = 300
	p := Policy{MaxDuration: 10 * time.Minute}
	for _, w := range []float64{0.1, 0.5} {
		sc := scenario{rate: 20, weight: w, tick: 5 * time.Second, duration: 10 * time.Minute, prod: prodLike, can: prodLike, warmup: 1000}
		alarms := 0
		for s := range sims {
			if d := simulate(p, sc, uint64(10_000+s)); d.Outcome == Regression {
				alarms++
			} else if d.Outcome != Pass {
				t.Fatalf("seed %d: %s after the maximum duration", s, d.Outcome)
			}
		}
		if rate := float64(alarms) / sims; rate > Defaults.Alpha {
			t.Fatalf("weight %.1f: %d false alarms in %d equal canaries (%.3f), more than alpha %.2f", w, alarms, sims, rate, Defaults.Alpha)
		}
		t.Logf("weight %.1f: %d false alarms in %d equal canaries", w, alarms, sims)
	}
}

// A canary whose validation failures are twice production's (20% against
// 10%) at 20 calls a second, half of them to the canary, is caught within
// a minute in at least 80% of the runs (about 90% measured), and named for
// the right metric.
func TestPowerOnDoubledValidationFailures(t *testing.T) {
	can := prodLike
	can.valRate = 0.2
	prod := prodLike
	prod.valRate = 0.1
	sc := scenario{rate: 20, weight: 0.5, tick: 5 * time.Second, duration: time.Minute, prod: prod, can: can, warmup: 1000}
	const sims = 200
	caught, other := 0, 0
	for s := range sims {
		d := simulate(Policy{}, sc, uint64(s))
		switch {
		case d.Outcome != Regression:
		case d.Elapsed > time.Minute:
			t.Fatalf("seed %d: decided after %v", s, d.Elapsed)
		case d.Metric == ValidationRate:
			caught++
		default:
			// Another metric's false alarm, which alpha allows.
			other++
		}
	}
	if caught < sims*80/100 {
		t.Fatalf("caught %d of %d doubled canaries within a minute, want at least 80%%", caught, sims)
	}
	if other > sims*2/100 {
		t.Fatalf("%d of %d runs alarmed on a metric that did not change", other, sims)
	}
	t.Logf("caught %d of %d within a minute; %d alarmed on another metric", caught, sims, other)
}

// At a 10% weight the same canary gets 120 calls a minute, too few to be
// sure within one; it is caught within five.
func TestPowerAtATenPercentWeight(t *testing.T) {
	can := prodLike
	can.valRate = 0.2
	prod := prodLike
	prod.valRate = 0.1
	sc := scenario{rate: 20, weight: 0.1, tick: 5 * time.Second, duration: 5 * time.Minute, prod: prod, can: can, warmup: 1000}
	const sims = 100
	caught := 0
	var within1 int
	for s := range sims {
		if d := simulate(Policy{}, sc, uint64(500+s)); d.Outcome == Regression && d.Metric == ValidationRate {
			caught++
			if d.Elapsed <= time.Minute {
				within1++
			}
		}
	}
	if caught < sims*90/100 {
		t.Fatalf("caught %d of %d within five minutes, want at least 90%%", caught, sims)
	}
	t.Logf("caught %d of %d within five minutes, %d within one", caught, sims, within1)
}

// Each metric is caught for what it is.
func TestMetricsAreNamed(t *testing.T) {
	slow := prodLike
	slow.medianMs = 1000
	erring := prodLike
	erring.errRate = 0.08
	dear := prodLike
	dear.costUSD = 0.0008
	unloved := prodLike
	unloved.feedback, unloved.down = 0.3, 0.6
	tests := []struct {
		name string
		can  behaviour
		want string
	}{
		{"slow", slow, LatencyP95},
		{"erring", erring, ErrorRate},
		{"dear", dear, CostPerRequest},
		{"unloved", unloved, NegativeFeedback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scenario{rate: 20, weight: 0.5, tick: 5 * time.Second, duration: 10 * time.Minute, prod: prodLike, can: tt.can, warmup: 1000}
			d := simulate(Policy{}, sc, 7)
			if d.Outcome != Regression || d.Metric != tt.want {
				t.Fatalf("%s, metric %s: %s", d.Outcome, d.Metric, d.Reason)
			}
			var m Metric
			for _, x := range d.Metrics {
				if x.Name == tt.want {
					m = x
				}
			}
			if !m.Regressed || !m.Tested || m.Canary <= m.Production {
				t.Fatalf("metric %+v", m)
			}
			if !strings.Contains(d.Reason, "production") {
				t.Fatalf("reason %q does not give production's figure", d.Reason)
			}
		})
	}
}

func counters(req, errs, val int64) Counters {
	return Counters{Requests: req, Errors: errs, ValidationFailures: val, CostUSD: float64(req) * 0.001}
}

func TestMinimumSampleAndMaximumDuration(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := Begin(Point{At: t0, Production: counters(5000, 50, 250)})
	// 60 canary calls, all failing validation: too few to decide.
	_, d, err := Step(Policy{}, st, Point{At: t0.Add(time.Minute), Canary: counters(60, 0, 60), Production: counters(5600, 56, 280)})
	if err != nil || d.Outcome != Continue || d.CanaryRequests != 60 || d.ProductionRequests != 600 {
		t.Fatalf("below the minimum sample: %+v, %v", d, err)
	}
	// Thirty minutes and still only 60 calls: pass, flagged underpowered.
	st2, d, _ := Step(Policy{}, st, Point{At: t0.Add(30 * time.Minute), Canary: counters(60, 0, 3), Production: counters(9000, 90, 450)})
	if d.Outcome != Pass || !d.Underpowered {
		t.Fatalf("at the maximum duration: %+v", d)
	}
	// The decision is taken once.
	_, again, _ := Step(Policy{}, st2, Point{At: t0.Add(31 * time.Minute), Canary: counters(600, 0, 600), Production: counters(9100, 90, 450)})
	if again.Outcome != Pass || !reflect.DeepEqual(again, d) {
		t.Fatalf("a later look changed a final decision: %+v", again)
	}
	if _, _, err := Step(Policy{}, st, Point{At: t0, Production: counters(10, 0, 0)}); err == nil {
		t.Fatal("counters going backwards accepted")
	}
	if _, _, err := Step(Policy{Alpha: 0.9}, st, Point{At: t0}); err == nil {
		t.Fatal("alpha 0.9 accepted")
	}
}

// The state survives a JSON round trip, as it would through the
// replicated state to a new leader, and the analysis goes on the same.
func TestStateRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := sketch.NewBuilder()
	for i := range 300 {
		b.Add(float64(100 + i))
	}
	start := Point{At: t0, Production: Counters{Requests: 300, Latency: b.Sketch()}}
	st := Begin(start)
	pt := Point{At: t0.Add(time.Minute), Canary: counters(150, 3, 12), Production: counters(450, 5, 20)}
	pt.Production.Latency = b.Sketch()
	st, d1, err := Step(Policy{}, st, pt)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(st)
	var back State
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	pt2 := pt
	pt2.At = t0.Add(2 * time.Minute)
	pt2.Canary = counters(300, 6, 30)
	_, a, _ := Step(Policy{}, st, pt2)
	_, c, _ := Step(Policy{}, back, pt2)
	if !reflect.DeepEqual(a, c) || d1.Outcome != Continue {
		t.Fatalf("after a round trip: %+v\nwithout: %+v", c, a)
	}
}

func TestSubtractSketch(t *testing.T) {
	early, all := sketch.NewBuilder(), sketch.NewBuilder()
	for i := range 1000 {
		v := float64(50 + i%400)
		all.Add(v)
		if i < 600 {
			early.Add(v)
		}
	}
	later := subtract(all.Sketch(), early.Sketch())
	if got := later.Count(); got != 400 {
		t.Fatalf("later calls %d, want 400", got)
	}
	if err := later.Check(); err != nil {
		t.Fatalf("subtracted sketch: %v", err)
	}
}

func TestAnalyze(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var pts []Point
	for i := range 13 {
		n := int64(i) * 100
		pts = append(pts, Point{At: t0.Add(time.Duration(i) * 5 * time.Second), Canary: counters(n, n/4, n/20), Production: counters(10*n, n/10, n/2)})
	}
	d, err := Analyze(Policy{}, pts)
	if err != nil || d.Outcome != Regression || d.Metric != ErrorRate {
		t.Fatalf("a canary failing a quarter of its calls: %+v, %v", d, err)
	}
	if _, err := Analyze(Policy{}, nil); err == nil {
		t.Fatal("no points accepted")
	}
}
