package deploy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// scriptedRouter is a stand-in for the router in unit tests of the watch's
// comparison logic: Status answers the next scripted snapshot of one route
// (the last one again once the script is done), so a test decides exactly
// what the watch sees at each poll. The real router's counters are tested in
// package proxy. It supports nothing but Status.
type scriptedRouter struct {
	mu     sync.Mutex
	script []scriptStep
	calls  int
}

// scriptStep is one answer of Status: the route's snapshot, or an error.
type scriptStep struct {
	rs  *gantry.RouteStatus // nil: the route does not exist
	err error
}

func (r *scriptedRouter) Status(context.Context) ([]gantry.RouteStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.script[min(r.calls, len(r.script)-1)]
	r.calls++
	if s.err != nil {
		return nil, s.err
	}
	if s.rs == nil {
		return []gantry.RouteStatus{}, nil
	}
	return []gantry.RouteStatus{*s.rs}, nil
}

func (r *scriptedRouter) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

var errNotScripted = errors.New("scriptedRouter: only Status is scripted")

func (r *scriptedRouter) Deploy(context.Context, gantry.Route, []string) (*gantry.SwitchResult, error) {
	return nil, errNotScripted
}
func (r *scriptedRouter) Rollback(context.Context, string) (*gantry.SwitchResult, error) {
	return nil, errNotScripted
}
func (r *scriptedRouter) SetPreview(context.Context, string, []string) error { return errNotScripted }
func (r *scriptedRouter) Pause(context.Context, string, bool) error          { return errNotScripted }
func (r *scriptedRouter) Resume(context.Context, string) error               { return errNotScripted }
func (r *scriptedRouter) Maintenance(context.Context, string, bool, string) error {
	return errNotScripted
}
func (r *scriptedRouter) RemoveRoute(context.Context, string) error { return errNotScripted }

var _ gantry.Router = (*scriptedRouter)(nil)

const (
	watchRoute = "shop/prod"
	oldAddr    = "127.0.0.1:9000"
	newAddr    = "127.0.0.1:9100"
	newAddr2   = "127.0.0.1:9101"
)

// target is a target's lifetime counters; ms is the mean latency.
func target(addr string, requests, errs int64, ms float64) gantry.TargetStatus {
	return gantry.TargetStatus{Addr: addr, Healthy: true, Requests: requests, Errors5xx: errs,
		LatencySum: time.Duration(float64(requests) * ms * float64(time.Millisecond))}
}

// verified is the candidate as the verify checks left it (see before), and
// plus adds n requests, errs of them 5xx, of ms each, to it.
func verified() gantry.TargetStatus { return target(newAddr, 30, 30, 500) }

func plus(n, errs int64, ms float64) gantry.TargetStatus {
	t := verified()
	add := target(newAddr, n, errs, ms)
	t.Requests += add.Requests
	t.Errors5xx += add.Errors5xx
	t.LatencySum += add.LatencySum
	return t
}

func snapshot(active ...gantry.TargetStatus) *gantry.RouteStatus {
	return &gantry.RouteStatus{Route: gantry.Route{Name: watchRoute}, Active: active}
}

// before is the route just before the switch: the old release served 1000
// requests, 10 of them 5xx, in 20ms on average; the candidate answered the
// verify checks on the preview host, all of them failing on purpose, which
// must not count against it.
func before() gantry.RouteStatus {
	rs := *snapshot(target(oldAddr, 1000, 10, 20))
	rs.Preview = []gantry.TargetStatus{verified()}
	return rs
}

func watchSpec(window time.Duration) gantry.WatchSpec {
	return gantry.WatchSpec{Window: window, MaxErrorRate: 0.05, MaxLatencyRatio: 2, MinRequests: 20}
}

// runWatch runs the watch against the script and returns how long it took,
// the router (to count its polls) and the watch's result.
func runWatch(tb testing.TB, script []scriptStep, w gantry.WatchSpec, newTargets ...string) (time.Duration, *scriptedRouter, error) {
	tb.Helper()
	r := &scriptedRouter{script: script}
	o := &Orchestrator{Router: r}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := o.watchAfterSwitch(ctx, watchRoute, before(), newTargets, w)
	if ctx.Err() != nil {
		tb.Fatalf("the watch ran into the test's timeout")
	}
	return time.Since(start), r, err
}

func TestWatchAfterSwitch(t *testing.T) {
	const short = 600 * time.Millisecond
	tests := []struct {
		name    string
		script  []scriptStep
		w       gantry.WatchSpec
		targets []string
		// wantFigure is the breached figure, "" for a window that passes;
		// wantDetail the breach's exact words.
		wantFigure, wantDetail string
	}{
		{
			name: "window passes",
			script: []scriptStep{
				{rs: snapshot(verified())},
				{rs: snapshot(plus(50, 1, 35))}, // 2% errors, 35ms < 2 × 20ms
			},
			w:       watchSpec(short),
			targets: []string{newAddr},
		},
		{
			name: "error rate breach",
			script: []scriptStep{
				{rs: snapshot(verified())},
				{rs: snapshot(plus(200, 25, 20))},
			},
			w:          watchSpec(time.Minute),
			targets:    []string{newAddr},
			wantFigure: FigureErrorRate,
			wantDetail: "error rate 12.5% (25 of 200) > 5%",
		},
		{
			name: "latency breach, summed over two new targets",
			script: []scriptStep{
				{rs: snapshot(verified(), target(newAddr2, 0, 0, 0))},
				// 25 requests at 100ms on each.
				{rs: snapshot(plus(25, 0, 100), target(newAddr2, 25, 0, 100))},
			},
			w:          watchSpec(time.Minute),
			targets:    []string{newAddr, newAddr2},
			wantFigure: FigureLatency,
			wantDetail: "mean latency 100ms > 2 × 20ms (the previous release's mean) = 40ms",
		},
		{
			name: "too few requests: no verdict, the window passes",
			script: []scriptStep{
				{rs: snapshot(verified())},
				{rs: snapshot(plus(19, 19, 900))}, // every one failing and slow
			},
			w:       watchSpec(short),
			targets: []string{newAddr},
		},
		{
			name: "a router that does not answer is no evidence",
			script: []scriptStep{
				{err: errors.New("connection refused")},
			},
			w:       watchSpec(short),
			targets: []string{newAddr},
		},
		{
			name: "someone else switched the route: nothing of ours to judge",
			script: []scriptStep{
				{rs: snapshot(target(oldAddr, 5000, 4000, 900))},
			},
			w:       watchSpec(time.Minute),
			targets: []string{newAddr},
		},
		{
			name:    "route removed",
			script:  []scriptStep{{rs: nil}},
			w:       watchSpec(time.Minute),
			targets: []string{newAddr},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			took, r, err := runWatch(t, tt.script, tt.w, tt.targets...)
			if tt.wantFigure == "" {
				if err != nil {
					t.Fatalf("watch = %v, want nil", err)
				}
				return
			}
			var b *WatchBreach
			if !errors.As(err, &b) {
				t.Fatalf("watch = %v (%T), want a *WatchBreach", err, err)
			}
			if b.Figure != tt.wantFigure || b.Detail != tt.wantDetail || b.Route != watchRoute {
				t.Errorf("breach = %q %q on %s, want %q %q on %s", b.Figure, b.Detail, b.Route, tt.wantFigure, tt.wantDetail, watchRoute)
			}
			// The verdict comes as soon as the evidence suffices, not at
			// the end of the minute-long window.
			if took > 10*time.Second || r.Calls() < 2 {
				t.Errorf("breach after %s and %d polls, want at the second poll", took, r.Calls())
			}
			if got := gantry.ErrorCode(err); got != gantry.EFAILED {
				t.Errorf("ErrorCode = %q, want %q", got, gantry.EFAILED)
			}
			if msg := gantry.ErrorMessage(err); msg == "internal error" || len(msg) < len(tt.wantDetail) {
				t.Errorf("ErrorMessage = %q, want the breach's detail", msg)
			}
		})
	}
}

// TestWatchLastsTheWindow checks that a passing watch keeps polling until the
// window is over, so a release that fails late is still caught.
func TestWatchLastsTheWindow(t *testing.T) {
	const window = 700 * time.Millisecond
	script := []scriptStep{{rs: snapshot(plus(100, 0, 20))}}
	took, r, err := runWatch(t, script, watchSpec(window), newAddr)
	if err != nil {
		t.Fatalf("watch = %v, want nil", err)
	}
	if took < window {
		t.Errorf("watch returned after %s, want at least the %s window", took, window)
	}
	if r.Calls() < 3 {
		t.Errorf("router polled %d times during the window, want several", r.Calls())
	}

	// The same release failing only at the end of the window.
	late := []scriptStep{
		{rs: snapshot(verified())},
		{rs: snapshot(verified())},
		{rs: snapshot(plus(100, 30, 20))},
	}
	var b *WatchBreach
	if _, _, err := runWatch(t, late, watchSpec(window), newAddr); !errors.As(err, &b) || b.Figure != FigureErrorRate {
		t.Errorf("late failure: watch = %v, want an error rate breach", err)
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	r := &scriptedRouter{script: []scriptStep{{rs: snapshot(verified())}}}
	o := &Orchestrator{Router: r}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.watchAfterSwitch(ctx, watchRoute, before(), []string{newAddr}, watchSpec(time.Hour)) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("watch = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not stop when its context was cancelled")
	}
}

// TestJudge covers the bounds themselves, without polling.
func TestJudge(t *testing.T) {
	oldOK := figures{requests: 1000, errors: 10, latency: 1000 * 20 * time.Millisecond}
	mean := func(n, errs int64, ms float64) figures {
		return figures{n, errs, time.Duration(float64(n) * ms * float64(time.Millisecond))}
	}
	tests := []struct {
		name       string
		cur, old   figures
		w          gantry.WatchSpec
		wantFigure string
		wantDetail string
	}{
		{"healthy", mean(200, 2, 21), oldOK, watchSpec(time.Minute), "", ""},
		{"exactly at the error bound", mean(200, 10, 21), oldOK, watchSpec(time.Minute), "", ""},
		{"just past the error bound", mean(200, 11, 21), oldOK, watchSpec(time.Minute), FigureErrorRate, "error rate 5.5% (11 of 200) > 5%"},
		{"below min_requests", mean(19, 19, 900), oldOK, watchSpec(time.Minute), "", ""},
		{"the previous release failed as much", mean(200, 20, 21), mean(1000, 100, 20), watchSpec(time.Minute), "", ""},
		{"worse than the previous release's high rate", mean(200, 30, 21), mean(1000, 100, 20), watchSpec(time.Minute),
			FigureErrorRate, "error rate 15% (30 of 200) > 10% (the previous release's rate)"},
		{"previous rate on too few requests does not raise the bound", mean(200, 30, 21), mean(10, 5, 20), watchSpec(time.Minute),
			FigureErrorRate, "error rate 15% (30 of 200) > 5%"},
		{"latency within ratio", mean(200, 0, 39), oldOK, watchSpec(time.Minute), "", ""},
		{"latency past ratio", mean(200, 0, 61), oldOK, watchSpec(time.Minute),
			FigureLatency, "mean latency 61ms > 2 × 20ms (the previous release's mean) = 40ms"},
		{"latency past ratio but under the noise floor", mean(200, 0, 5), mean(1000, 0, 1), watchSpec(time.Minute), "", ""},
		{"latency unchecked with ratio 0", mean(200, 0, 900), oldOK,
			func() gantry.WatchSpec { w := watchSpec(time.Minute); w.MaxLatencyRatio = 0; return w }(), "", ""},
		{"no previous release: latency not judged", mean(200, 0, 900), figures{}, watchSpec(time.Minute), "", ""},
		{"no previous release: error rate still judged", mean(200, 50, 1), figures{}, watchSpec(time.Minute),
			FigureErrorRate, "error rate 25% (50 of 200) > 5%"},
		{"zero error budget", mean(200, 1, 20), mean(1000, 0, 20),
			func() gantry.WatchSpec { w := watchSpec(time.Minute); w.MaxErrorRate = 0; return w }(), FigureErrorRate, "error rate 0.5% (1 of 200) > 0%"},
	}
	for _, tt := range tests {
		figure, detail := judge(tt.cur, tt.old, tt.w)
		if figure != tt.wantFigure || detail != tt.wantDetail {
			t.Errorf("%s: judge = %q %q, want %q %q", tt.name, figure, detail, tt.wantFigure, tt.wantDetail)
		}
	}
}
