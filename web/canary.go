package web

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/gantry-dev/gantry"
)

// canaryView is a running canary as the deployment page draws it: a row per
// judged step and one for the step running now, each with both releases'
// requests, error rate, p50 and p99, and bars of the p50 and p99 scaled to
// the slowest figure shown, so the chart moves as traffic flows.
type canaryView struct {
	*gantry.CanaryReport
	Rows []canaryRow
	// ScaleMs is the latency of a full bar.
	ScaleMs float64
}

type canaryRow struct {
	Label   string
	Weight  int
	Verdict string
	Reason  string
	Stable  canarySide
	Cand    canarySide
}

type canarySide struct {
	Requests int64
	ErrPct   string
	P50, P99 string
	// Bar widths, out of barWidth.
	P50W, P99W int
	p50, p99   float64
}

// barWidth is the width of a full latency bar, in SVG units.
const barWidth = 240

// loadCanary reads the canary of a running deployment with strategy
// canary; nil when there is none (yet, or any more).
func (d *Dashboard) loadCanary(ctx context.Context, id *gantry.Identity, app string, dep *gantry.Deployment) *canaryView {
	if dep.State != gantry.DeploymentRunning || dep.Strategy != gantry.StrategyCanary {
		return nil
	}
	var rep gantry.CanaryReport
	if err := d.get(ctx, id, appPath(app)+"/environments/"+url.PathEscape(dep.Env)+"/canary", &rep); err != nil || rep.DeploymentID != dep.ID {
		return nil
	}
	return newCanaryView(&rep)
}

func newCanaryView(rep *gantry.CanaryReport) *canaryView {
	v := &canaryView{CanaryReport: rep}
	add := func(label string, cv gantry.CanaryVerdict) {
		v.Rows = append(v.Rows, canaryRow{Label: label, Weight: cv.Weight, Verdict: cv.Verdict, Reason: cv.Reason,
			Stable: sideOf(cv.Stable), Cand: sideOf(cv.Candidate)})
	}
	for _, cv := range rep.Verdicts {
		add(fmt.Sprintf("step %d", cv.Step), cv)
	}
	if l := rep.Live; l != nil {
		add(fmt.Sprintf("step %d (now)", l.Step), *l)
	}
	for _, r := range v.Rows {
		v.ScaleMs = max(v.ScaleMs, r.Stable.p99, r.Cand.p99)
	}
	for i := range v.Rows {
		for _, s := range []*canarySide{&v.Rows[i].Stable, &v.Rows[i].Cand} {
			if v.ScaleMs > 0 {
				s.P50W, s.P99W = int(barWidth*s.p50/v.ScaleMs), int(barWidth*s.p99/v.ScaleMs)
			}
		}
	}
	return v
}

func sideOf(f gantry.SlotFigures) canarySide {
	s := canarySide{Requests: f.Requests, ErrPct: "–",
		p50: ms(f.P50), p99: ms(f.P99), P50: fmtMs(f.P50), P99: fmtMs(f.P99)}
	if f.Requests > 0 {
		s.ErrPct = fmt.Sprintf("%.2f%%", 100*float64(f.Errors5xx)/float64(f.Requests))
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMs(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1fms", ms(d))
}
