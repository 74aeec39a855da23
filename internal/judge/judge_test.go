package judge

import (
	"math"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-4 }

// The expected values are worked by hand from the formulas in the
// package comment (pooled p = 8/1200, sd = sqrt(p(1-p)(1/1000+1/200))).
func TestErrorRatesByHand(t *testing.T) {
	for _, c := range []struct {
		name           string
		se, sn, ce, cn int64
		tol            float64
		wantZ          float64
		wantFail       bool
	}{
		{"3% against 0.2%", 2, 1000, 6, 200, 0, 4.442020, true},
		{"with a one-point tolerance", 2, 1000, 6, 200, 0.01, 2.855584, true},
		{"no errors anywhere", 0, 1000, 0, 200, 0, 0, false},
		// p = 10/1200, sd = sqrt(p(1-p)*0.006) = 0.0070415, z = -0.01/sd.
		{"candidate better", 10, 1000, 0, 200, 0, -1.420143, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ErrorRates(c.se, c.sn, c.ce, c.cn, c.tol)
			if !near(got.Z, c.wantZ) || got.Failed != c.wantFail {
				t.Errorf("z = %.6f failed = %v, want %.6f %v", got.Z, got.Failed, c.wantZ, c.wantFail)
			}
		})
	}
}

func TestLatenciesByHand(t *testing.T) {
	seq := func(from, to float64) []float64 {
		var s []float64
		for v := from; v <= to; v++ {
			s = append(s, v)
		}
		return s
	}
	for _, c := range []struct {
		name        string
		x, y        []float64
		ms, pct     float64
		wantU       float64
		wantZ       float64
		wantAllowed float64
		wantFail    bool
	}{
		// Ranks of y are 4,5,6: U = 15-6 = 9; mean 4.5; var = 9/12*7.
		{"no overlap, small", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0, 9, 1.745743, 0, false},
		// Ties: ranks 1,3,3,3,6,6,6,8; U = 23-10 = 13; var = 16/12*(9-48/56).
		{"ties", []float64{1, 2, 2, 3}, []float64{2, 3, 3, 4}, 0, 0, 13, 1.365698, 0, false},
		// y shifted by the 10ms tolerance still beats every x.
		{"slower than the tolerance", []float64{10, 11, 12}, []float64{25, 26, 27}, 10, 0, 9, 1.745743, 10, false},
		{"within the tolerance", []float64{10, 11, 12}, []float64{25, 26, 27}, 20, 0, 0, -1.745743, 20, false},
		// 100% of the stable median (11) is more than 0ms.
		{"relative tolerance", []float64{10, 11, 12}, []float64{25, 26, 27}, 0, 100, 9, 1.745743, 11, false},
		// U = 400 of mean 200, var = 400/12*41.
		{"clearly slower", seq(1, 20), seq(31, 50), 0, 0, 400, 5.396493, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Latencies(c.x, c.y, c.ms, c.pct)
			if got.U != c.wantU || !near(got.Z, c.wantZ) || got.Allowed != c.wantAllowed || got.Failed != c.wantFail {
				t.Errorf("U = %v z = %.6f allowed = %v failed = %v, want %v %.6f %v %v", got.U, got.Z, got.Allowed, got.Failed, c.wantU, c.wantZ, c.wantAllowed, c.wantFail)
			}
		})
	}
}

func figures(n, errs int64, latencyMs func(i int) float64) gantry.SlotFigures {
	f := gantry.SlotFigures{Requests: n, Errors5xx: errs}
	for i := 0; i < int(n); i++ {
		f.LatencyMicros = append(f.LatencyMicros, int64(latencyMs(i)*1000))
	}
	return f
}

func TestJudgeVerdicts(t *testing.T) {
	tol := Tolerance{MinRequests: 50, ErrorRate: 0.01, LatencyMs: 10, LatencyPct: 10}
	fast := func(i int) float64 { return 2 + float64(i%7)*0.3 }
	slow := func(i int) float64 { return 32 + float64(i%7)*0.3 }
	for _, c := range []struct {
		name         string
		stable, cand gantry.SlotFigures
		want         Verdict
		reason       string
	}{
		{"identical", figures(500, 0, fast), figures(100, 0, fast), Pass, "Mann-Whitney"},
		{"30ms slower", figures(500, 0, fast), figures(100, 0, slow), Fail, "latency (Mann-Whitney U)"},
		{"5% errors", figures(500, 0, fast), figures(100, 5, fast), Fail, "error rate (two-proportion z-test)"},
		{"too few on the candidate", figures(500, 0, fast), figures(49, 20, slow), Extended, "not enough traffic yet"},
		{"too few on the stable side", figures(10, 0, fast), figures(100, 0, fast), Extended, "not enough traffic yet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Judge(c.stable, c.cand, tol)
			if got.Verdict != c.want || !strings.Contains(got.Reason, c.reason) {
				t.Errorf("got %s (%s), want %s naming %q", got.Verdict, got.Reason, c.want, c.reason)
			}
		})
	}
}
