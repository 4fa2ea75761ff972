package stats

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// Two-sided exact McNemar p-values from published values. The binomial
// rows are twice the cumulative probabilities of the standard binomial
// table for p = 0.5 (printed to four decimals, hence the tolerance); the
// others are worked examples.
func TestMcNemarPublishedValues(t *testing.T) {
	tests := []struct {
		name string
		b, c int
		want float64
		tol  float64
	}{
		{"table n=10 P(X<=0)=0.0010", 0, 10, 2 * 0.0010, 2 * 0.00005},
		{"table n=10 P(X<=1)=0.0107", 1, 9, 2 * 0.0107, 2 * 0.00005},
		{"table n=10 P(X<=2)=0.0547", 8, 2, 2 * 0.0547, 2 * 0.00005},
		{"table n=15 P(X<=3)=0.0176", 3, 12, 2 * 0.0176, 2 * 0.00005},
		{"table n=20 P(X<=5)=0.0207", 5, 15, 2 * 0.0207, 2 * 0.00005},
		{"table n=20 P(X<=6)=0.0577", 14, 6, 2 * 0.0577, 2 * 0.00005},
		{"table n=25 P(X<=8)=0.0539", 8, 17, 2 * 0.0539, 2 * 0.00005},
		// Fagerland, Lydersen and Laake, BMC Med Res Methodol 13:91
		// (2013), Table 2: exact conditional McNemar p = 0.070.
		{"Fagerland 2013 b=1 c=7", 1, 7, 0.070, 0.0005},
		// R: binom.test(2, 12)$p.value = 0.03857.
		{"R binom.test(2,12)", 2, 10, 0.03857, 0.000005},
		{"no discordant pairs", 0, 0, 1, 0},
		{"balanced", 9, 9, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := McNemar(tt.b, tt.c)
			if math.Abs(got-tt.want) > tt.tol {
				t.Fatalf("McNemar(%d, %d) = %.6f, want %.6f ± %g", tt.b, tt.c, got, tt.want, tt.tol)
			}
			if sym := McNemar(tt.c, tt.b); sym != got {
				t.Fatalf("McNemar is not symmetric: (%d,%d) = %g, (%d,%d) = %g", tt.b, tt.c, got, tt.c, tt.b, sym)
			}
		})
	}
}

// exactMcNemar computes the p-value with exact rational arithmetic.
func exactMcNemar(b, c int) float64 {
	n := b + c
	k := min(b, c)
	sum := new(big.Int)
	for i := 0; i <= k; i++ {
		sum.Add(sum, new(big.Int).Binomial(int64(n), int64(i)))
	}
	r := new(big.Rat).SetFrac(new(big.Int).Mul(sum, big.NewInt(2)), new(big.Int).Lsh(big.NewInt(1), uint(n)))
	f, _ := r.Float64()
	return min(f, 1)
}

func TestMcNemarMatchesExactArithmetic(t *testing.T) {
	for _, bc := range [][2]int{{0, 1}, {3, 4}, {10, 30}, {40, 60}, {120, 180}, {500, 600}, {900, 1100}, {2, 1500}} {
		got, want := McNemar(bc[0], bc[1]), exactMcNemar(bc[0], bc[1])
		if want == 0 {
			if got > 1e-300 {
				t.Fatalf("McNemar(%d, %d) = %g, want 0", bc[0], bc[1], got)
			}
			continue
		}
		if rel := math.Abs(got-want) / want; rel > 1e-9 {
			t.Fatalf("McNemar(%d, %d) = %.12g, exact %.12g (relative error %g)", bc[0], bc[1], got, want, rel)
		}
	}
}

func TestPairedBootstrapConstantDifference(t *testing.T) {
	diffs := []float64{0.25, 0.25, 0.25, 0.25}
	iv, err := PairedBootstrap(diffs, 500, 0.95, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if iv.Low != 0.25 || iv.High != 0.25 || iv.Estimate != 0.25 {
		t.Fatalf("interval of constant differences: %+v, want [0.25, 0.25]", iv)
	}
}

func normals(seed uint64, n int, mean, sd float64) []float64 {
	r := rand.New(rand.NewPCG(seed, seed^0xabcdef))
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + sd*r.NormFloat64()
	}
	return out
}

func sampleSD(xs []float64) float64 {
	m := Mean(xs)
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)-1))
}

// On seeded normal data the bootstrap interval agrees with the normal
// theory one, and the same seed gives the same interval.
func TestPairedBootstrapSeededData(t *testing.T) {
	diffs := normals(7, 400, 0.1, 0.2)
	iv, err := PairedBootstrap(diffs, 4000, 0.95, rand.New(rand.NewPCG(42, 43)))
	if err != nil {
		t.Fatal(err)
	}
	m := Mean(diffs)
	half := 1.96 * sampleSD(diffs) / math.Sqrt(float64(len(diffs)))
	if math.Abs(iv.Low-(m-half)) > 0.1*half || math.Abs(iv.High-(m+half)) > 0.1*half {
		t.Fatalf("bootstrap [%.5f, %.5f], normal theory [%.5f, %.5f]: more than 10%% of the half-width apart", iv.Low, iv.High, m-half, m+half)
	}
	again, _ := PairedBootstrap(diffs, 4000, 0.95, rand.New(rand.NewPCG(42, 43)))
	if again != iv {
		t.Fatalf("same seed, different interval: %+v then %+v", iv, again)
	}
	other, _ := PairedBootstrap(diffs, 4000, 0.95, rand.New(rand.NewPCG(1, 1)))
	if other == iv {
		t.Fatalf("another seed gave the very same interval %+v: the random source is not used", iv)
	}
}

// Over many seeded samples the 90% interval covers the true mean about
// 90% of the time (percentile bootstrap undercovers a little at n = 40).
func TestPairedBootstrapCoverage(t *testing.T) {
	const sims = 400
	rng := rand.New(rand.NewPCG(5, 6))
	covered := 0
	for s := range sims {
		d := normals(uint64(1000+s), 40, 0.3, 1)
		iv, err := PairedBootstrap(d, 1000, 0.90, rng)
		if err != nil {
			t.Fatal(err)
		}
		if iv.Low <= 0.3 && 0.3 <= iv.High {
			covered++
		}
	}
	if rate := float64(covered) / sims; rate < 0.85 || rate > 0.95 {
		t.Fatalf("90%% interval covered the mean in %.3f of %d samples, want 0.85..0.95", rate, sims)
	}
}

func TestPairedBootstrapRefusesBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	if _, err := PairedBootstrap(nil, 100, 0.95, rng); err != ErrNoData {
		t.Fatalf("no data: got %v, want ErrNoData", err)
	}
	if _, err := PairedBootstrap([]float64{1}, 100, 1.5, rng); err == nil {
		t.Fatal("level 1.5 accepted")
	}
}

func TestQuantileSorted(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct{ q, want float64 }{{0, 1}, {0.5, 5.5}, {0.95, 9.55}, {1, 10}}
	for _, tt := range tests {
		if got := QuantileSorted(s, tt.q); math.Abs(got-tt.want) > 1e-12 {
			t.Fatalf("quantile %.2f = %g, want %g", tt.q, got, tt.want)
		}
	}
}

func TestNormalQuantile(t *testing.T) {
	for _, tt := range []struct{ p, want float64 }{{0.975, 1.959964}, {0.8, 0.841621}, {0.5, 0}, {0.05, -1.644854}} {
		if got := NormalQuantile(tt.p); math.Abs(got-tt.want) > 1e-6 {
			t.Fatalf("NormalQuantile(%g) = %.6f, want %.6f", tt.p, got, tt.want)
		}
	}
}

// Connor (1987): detecting a 10-point difference with 20% discordant
// pairs at alpha 0.05 and power 0.8 needs about 155 pairs.
func TestMcNemarCases(t *testing.T) {
	// [1.959964·√0.2 + 0.841621·√(0.2−0.01)]² / 0.01 = 154.1 → 155.
	if got := McNemarCases(0.05, 0.8, 0.1, 0.2); got != 155 {
		t.Fatalf("McNemarCases = %d, want 155", got)
	}
	if a, b := McNemarCases(0.05, 0.8, 0.1, 0), McNemarCases(0.05, 0.8, 0.1, 0.1); a != b {
		t.Fatalf("discordance below delta is raised to it: %d != %d", a, b)
	}
}

// Equal Bernoulli streams looked at every 20 observations for 4,000 per
// side: the mixture SPRT alarms in at most alpha of the runs, while a
// naive z-test looked at as often alarms far more.
func TestMSPRTFalseAlarmsUnderRepeatedLooks(t *testing.T) {
	const (
		sims  = 500
		alpha = 0.05
		p     = 0.1
		tau   = 0.05
	)
	rng := rand.New(rand.NewPCG(11, 12))
	thr := math.Log(1 / alpha)
	var alarms, naive int
	for range sims {
		var x1, x2, n int64
		alarmed, naived := false, false
		for n < 4000 {
			for range 20 {
				n++
				if rng.Float64() < p {
					x1++
				}
				if rng.Float64() < p {
					x2++
				}
			}
			if n < 100 {
				continue
			}
			_, llr := MSPRT(x1, n, x2, n, tau)
			if llr >= thr {
				alarmed = true
			}
			p1, p2 := float64(x1)/float64(n), float64(x2)/float64(n)
			pool := float64(x1+x2) / float64(2*n)
			if z := (p1 - p2) / math.Sqrt(pool*(1-pool)*2/float64(n)); math.Abs(z) > 1.96 {
				naived = true
			}
		}
		if alarmed {
			alarms++
		}
		if naived {
			naive++
		}
	}
	if rate := float64(alarms) / sims; rate > alpha {
		t.Fatalf("mSPRT false alarms %.3f over %d equal streams, want <= %.2f", rate, sims, alpha)
	}
	if rate := float64(naive) / sims; rate < 2*alpha {
		t.Fatalf("naive repeated z-test alarmed in %.3f only: the simulation does not look often enough to mean anything", rate)
	}
}
