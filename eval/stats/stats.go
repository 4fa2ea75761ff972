// Package stats is the statistics evaluation relies on: the exact McNemar
// test for paired pass/fail outcomes, a paired bootstrap interval for the
// mean of score differences, a mixture sequential probability ratio test
// for two proportions that stays valid however often it is looked at, and
// small helpers (quantiles, normal quantiles, sample sizes).
//
// Every function is pure: randomness comes from a source the caller seeds,
// so a result can be reproduced from its inputs.
package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
)

// McNemar is the exact (binomial) McNemar test on the discordant pairs of
// a paired comparison: b pairs passed before and fail now, c failed before
// and pass now. Under the null hypothesis that neither side is better,
// each discordant pair goes either way with probability 1/2, so the
// two-sided p-value is twice the smaller binomial tail, capped at 1. With
// no discordant pairs the p-value is 1.
func McNemar(b, c int) float64 {
	if b < 0 || c < 0 {
		return math.NaN()
	}
	n := b + c
	if n == 0 {
		return 1
	}
	return min(1, 2*binomLowerTailHalf(min(b, c), n))
}

// binomLowerTailHalf is P(X <= k) for X ~ Binomial(n, 1/2), summed in log
// space so that large n neither overflows nor underflows early.
func binomLowerTailHalf(k, n int) float64 {
	lnHalfN := float64(n) * math.Log(0.5)
	lnN1, _ := math.Lgamma(float64(n + 1))
	term := func(i int) float64 {
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		return lnN1 - a - b + lnHalfN
	}
	// Terms grow up to i = n/2 and k <= n/2, so the last is the largest:
	// scale by it so that none underflows before it counts.
	top := term(k)
	var s float64
	for i := k; i >= 0; i-- {
		t := math.Exp(term(i) - top)
		s += t
		if t < 1e-17*s {
			break // the rest cannot change the sum
		}
	}
	return math.Exp(top + math.Log(s))
}

// Interval is a confidence interval around an estimate.
type Interval struct {
	Estimate float64 `json:"estimate"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
	Level    float64 `json:"level"` // e.g. 0.95
}

// ErrNoData is returned when there is nothing to estimate from.
var ErrNoData = errors.New("no data")

// PairedBootstrap is the percentile bootstrap interval of the mean of
// paired differences (candidate minus baseline, one per case): it
// resamples the cases with replacement iters times using rng and takes the
// (1-level)/2 and (1+level)/2 quantiles of the resampled means. Resampling
// whole pairs keeps the pairing, which is what makes a small shift on many
// correlated cases visible.
func PairedBootstrap(diffs []float64, iters int, level float64, rng *rand.Rand) (Interval, error) {
	n := len(diffs)
	if n == 0 {
		return Interval{}, ErrNoData
	}
	if iters < 1 || !(level > 0 && level < 1) || rng == nil {
		return Interval{}, errors.New("bootstrap needs iters >= 1, 0 < level < 1 and a random source")
	}
	means := make([]float64, iters)
	for b := range means {
		var s float64
		for range n {
			s += diffs[rng.IntN(n)]
		}
		means[b] = s / float64(n)
	}
	slices.Sort(means)
	return Interval{
		Estimate: Mean(diffs),
		Low:      QuantileSorted(means, (1-level)/2),
		High:     QuantileSorted(means, (1+level)/2),
		Level:    level,
	}, nil
}

// Mean is the arithmetic mean; 0 for no values.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// QuantileSorted is the q-quantile of sorted values by linear
// interpolation between closest ranks (the definition numpy and R use by
// default); 0 for no values.
func QuantileSorted(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	h := q * float64(n-1)
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// Quantile is QuantileSorted of a sorted copy of xs.
func Quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return QuantileSorted(s, q)
}

// NormalQuantile is the p-quantile of the standard normal distribution.
func NormalQuantile(p float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*p-1)
}

// McNemarCases is how many paired cases a two-sided McNemar test at
// significance alpha needs to detect, with the given power, a difference
// delta between the two sides' pass rates when a share discordant of the
// cases changes outcome (Connor's approximation, 1987). discordant is
// raised to delta when below it: a difference of delta needs at least that
// many discordant pairs.
func McNemarCases(alpha, power, delta, discordant float64) int {
	if !(delta > 0 && delta <= 1) || !(alpha > 0 && alpha < 1) || !(power > 0 && power < 1) {
		return 0
	}
	psi := min(max(discordant, delta), 1)
	za := NormalQuantile(1 - alpha/2)
	zb := NormalQuantile(power)
	n := za*math.Sqrt(psi) + zb*math.Sqrt(psi-delta*delta)
	return int(math.Ceil(n * n / (delta * delta)))
}

// MSPRT is the mixture sequential probability ratio test of two
// proportions (Johari, Koomen, Pekelis and Walsh, "Always valid inference",
// 2017; Robbins, 1970) with a normal mixture of variance tau² over the
// difference. x1 of n1 and x2 of n2 are the events and trials of the two
// sides so far. It returns the estimated difference p1 - p2 and the log of
// the mixture likelihood ratio; 1/exp(logLR), kept as a running minimum
// across looks, is an always-valid p-value, and rejecting the null
// hypothesis of equal proportions once logLR >= ln(1/alpha) keeps the
// false-alarm rate at or below alpha however often the test is looked at.
// The variance is the pooled one, as under the null hypothesis.
func MSPRT(x1, n1, x2, n2 int64, tau float64) (diff, logLR float64) {
	if n1 <= 0 || n2 <= 0 || !(tau > 0) {
		return 0, 0
	}
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	pool := float64(x1+x2) / float64(n1+n2)
	v := pool * (1 - pool) * (1/float64(n1) + 1/float64(n2))
	diff = p1 - p2
	if v <= 0 {
		return diff, 0
	}
	t2 := tau * tau
	logLR = 0.5*math.Log(v/(v+t2)) + t2*diff*diff/(2*v*(v+t2))
	return diff, logLR
}
