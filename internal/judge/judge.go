// Package judge decides a canary step from the router's figures of its two
// sides: a two-proportion z-test on the share of 5xx answers and a
// Mann-Whitney U test on latencies, each one-sided (is the candidate worse
// by more than a tolerance?) at 98% confidence. It says "extended" instead
// of guessing when a side has too little traffic, and returns every figure
// behind a verdict so the journal can show it.
//
// It must stay pure: no clock, no I/O, no router; the engine feeds it.
package judge

import (
	"fmt"
	"math"
	"slices"

	"github.com/gantry-dev/gantry"
)

// Confidence of a failed verdict; ZCrit is its one-sided critical value,
// the 0.98 quantile of the standard normal distribution.
const (
	Confidence = 0.98
	ZCrit      = 2.0537489
)

// Verdict is the outcome of judging one step.
type Verdict string

const (
	Pass     Verdict = "pass"
	Fail     Verdict = "fail"
	Extended Verdict = "extended" // not enough traffic yet
)

// Tolerance is what the candidate may be worse by without failing.
type Tolerance struct {
	MinRequests int     // per side, before any test is run
	ErrorRate   float64 // absolute difference of 5xx shares, 0.01 = one point
	LatencyMs   float64 // the candidate may be slower by the larger of these two
	LatencyPct  float64
}

// ToleranceOf reads a manifest's canary settings.
func ToleranceOf(s gantry.CanarySpec) Tolerance {
	return Tolerance{MinRequests: s.MinRequests, ErrorRate: s.ErrorRate, LatencyMs: s.LatencyMs, LatencyPct: s.LatencyPercent}
}

// ErrorTest holds the figures of the proportion test.
type ErrorTest struct {
	StableErrors, StableRequests int64
	CandErrors, CandRequests     int64
	StableRate, CandRate         float64
	Tolerance                    float64
	Z, P                         float64
	Failed                       bool
}

// LatencyTest holds the figures of the rank test (milliseconds).
type LatencyTest struct {
	NStable, NCand           int
	StableMedian, CandMedian float64
	Allowed                  float64 // the shift tolerated, ms
	U, Z, P                  float64
	Failed                   bool
}

// Result is a verdict with its reason and figures.
type Result struct {
	Verdict Verdict
	Reason  string
	Errors  ErrorTest
	Latency LatencyTest
}

// Judge compares a step's figures. A side with fewer than MinRequests
// requests makes the verdict Extended: silence is not a pass, and low
// traffic is not a failure.
func Judge(stable, cand gantry.SlotFigures, tol Tolerance) Result {
	need := int64(max(tol.MinRequests, 1))
	if stable.Requests < need || cand.Requests < need {
		return Result{Verdict: Extended, Reason: fmt.Sprintf("not enough traffic yet: stable %d, candidate %d requests, %d each needed", stable.Requests, cand.Requests, need)}
	}
	res := Result{Verdict: Pass}
	res.Errors = ErrorRates(stable.Errors5xx, stable.Requests, cand.Errors5xx, cand.Requests, tol.ErrorRate)
	if len(stable.LatencyMicros) >= int(need) && len(cand.LatencyMicros) >= int(need) {
		res.Latency = Latencies(millis(stable.LatencyMicros), millis(cand.LatencyMicros), tol.LatencyMs, tol.LatencyPct)
	}
	switch {
	case res.Errors.Failed:
		res.Verdict, res.Reason = Fail, res.Errors.String()
	case res.Latency.Failed:
		res.Verdict, res.Reason = Fail, res.Latency.String()
	default:
		res.Reason = res.Errors.String() + "; " + res.Latency.String()
	}
	return res
}

func millis(us []int64) []float64 {
	out := make([]float64, len(us))
	for i, v := range us {
		out[i] = float64(v) / 1000
	}
	return out
}

// ErrorRates is the one-sided two-proportion z-test with a pooled standard
// error: H0 "the candidate's 5xx share exceeds the stable one by at most
// tol", failed when z passes ZCrit.
func ErrorRates(se, sn, ce, cn int64, tol float64) ErrorTest {
	t := ErrorTest{StableErrors: se, StableRequests: sn, CandErrors: ce, CandRequests: cn, Tolerance: tol, P: 1}
	if sn == 0 || cn == 0 {
		return t
	}
	t.StableRate, t.CandRate = float64(se)/float64(sn), float64(ce)/float64(cn)
	p := float64(se+ce) / float64(sn+cn)
	sd := math.Sqrt(p * (1 - p) * (1/float64(sn) + 1/float64(cn)))
	if sd == 0 {
		return t
	}
	t.Z = (t.CandRate - t.StableRate - tol) / sd
	t.P = upperTail(t.Z)
	t.Failed = t.Z > ZCrit
	return t
}

func (t ErrorTest) String() string {
	cmp := "≤"
	if t.Failed {
		cmp = ">"
	}
	return fmt.Sprintf("error rate (two-proportion z-test): candidate %d/%d = %.2f%%, stable %d/%d = %.2f%%, tolerance %.2f points; z = %.2f %s %.2f (p = %.4f)",
		t.CandErrors, t.CandRequests, 100*t.CandRate, t.StableErrors, t.StableRequests, 100*t.StableRate, 100*t.Tolerance, t.Z, cmp, ZCrit, t.P)
}

// Latencies is the one-sided Mann-Whitney U test, normal approximation
// with tie and continuity corrections, of H0 "the candidate is slower by
// at most the allowed shift": the candidate's values less the shift are
// ranked with the stable ones. The shift is the larger of ms and pct
// percent of the stable median.
func Latencies(stable, cand []float64, ms, pct float64) LatencyTest {
	t := LatencyTest{NStable: len(stable), NCand: len(cand), P: 1}
	if len(stable) == 0 || len(cand) == 0 {
		return t
	}
	t.StableMedian, t.CandMedian = median(stable), median(cand)
	t.Allowed = max(ms, pct/100*t.StableMedian)
	shifted := make([]float64, len(cand))
	for i, v := range cand {
		shifted[i] = v - t.Allowed
	}
	u, sd := mannWhitney(stable, shifted)
	t.U = u
	if sd == 0 {
		return t
	}
	mean := float64(len(stable)) * float64(len(cand)) / 2
	d := u - mean
	// The continuity correction moves d half a unit towards zero.
	d -= math.Copysign(math.Min(0.5, math.Abs(d)), d)
	t.Z = d / sd
	t.P = upperTail(t.Z)
	t.Failed = t.Z > ZCrit
	return t
}

func (t LatencyTest) String() string {
	if t.NStable == 0 || t.NCand == 0 {
		return "latency: no sample"
	}
	cmp := "≤"
	if t.Failed {
		cmp = ">"
	}
	return fmt.Sprintf("latency (Mann-Whitney U): candidate median %.1fms (n=%d), stable median %.1fms (n=%d), tolerance +%.1fms; U = %.0f, z = %.2f %s %.2f (p = %.4f)",
		t.CandMedian, t.NCand, t.StableMedian, t.NStable, t.Allowed, t.U, t.Z, cmp, ZCrit, t.P)
}

// mannWhitney returns U of y (the count of pairs where y beats x, ties
// half) and its standard deviation under H0 with the tie correction.
func mannWhitney(x, y []float64) (u, sd float64) {
	type obs struct {
		v   float64
		inY bool
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v, false})
	}
	for _, v := range y {
		all = append(all, obs{v, true})
	}
	slices.SortFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	n := float64(len(all))
	var rankY, ties float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].inY {
				rankY += avg
			}
		}
		tc := float64(j - i)
		ties += tc*tc*tc - tc
		i = j
	}
	nx, ny := float64(len(x)), float64(len(y))
	u = rankY - ny*(ny+1)/2
	v := nx * ny / 12 * ((n + 1) - ties/(n*(n-1)))
	if v <= 0 {
		return u, 0
	}
	return u, math.Sqrt(v)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// upperTail is P(Z > z) for a standard normal Z.
func upperTail(z float64) float64 {
	return 0.5 * math.Erfc(z/math.Sqrt2)
}
