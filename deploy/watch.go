package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// The post-switch watch (environments.<env>.watch) judges a new release by
// the router's per-target counters, which are lifetime totals: figures over
// the window are differences between two snapshots.

const (
	// watchPollMin and watchPollMax bound how often the router is asked for
	// its figures: often enough to roll back a failing release within a
	// second, rarely enough not to load a router in another process.
	watchPollMin = 200 * time.Millisecond
	watchPollMax = time.Second
	// latencyNoise is the smallest rise of the mean latency that counts as
	// a breach: on a route answering in 1ms, 3ms is noise, not a regression.
	latencyNoise = 10 * time.Millisecond
)

// Figures a watch breach names.
const (
	FigureErrorRate = "error rate"
	FigureLatency   = "latency"
)

// WatchBreach says that a release crossed a bound of the post-switch watch,
// and which one: Detail reads "error rate 12.5% (25 of 200) > 5%". It wraps
// a gantry error with code EFAILED, so the API and the CLI show Detail.
type WatchBreach struct {
	Route  string
	Figure string // FigureErrorRate or FigureLatency
	Detail string
	// After is how far into the window the breach was seen.
	After time.Duration
}

func (b *WatchBreach) Error() string {
	return fmt.Sprintf("post-switch watch of %s: %s", b.Route, b.Detail)
}

// Unwrap gives gantry.ErrorCode and gantry.ErrorMessage something to read.
func (b *WatchBreach) Unwrap() error {
	return gantry.Errorf(gantry.EFAILED, "%s after %s of the post-switch watch", b.Detail, roundDuration(b.After))
}

// figures are a set of targets' counters, summed.
type figures struct {
	requests, errors int64
	latency          time.Duration // total
}

func (f figures) add(g figures) figures {
	return figures{f.requests + g.requests, f.errors + g.errors, f.latency + g.latency}
}

func (f figures) sub(g figures) figures {
	return figures{f.requests - g.requests, f.errors - g.errors, f.latency - g.latency}
}

func (f figures) mean() time.Duration {
	if f.requests <= 0 {
		return 0
	}
	return f.latency / time.Duration(f.requests)
}

func figuresOf(ts gantry.TargetStatus) figures {
	return figures{ts.Requests, ts.Errors5xx, ts.LatencySum}
}

// routeSnapshot returns the router's view of one route; the orchestrator
// takes it just before a switch, for watchAfterSwitch.
func (o *Orchestrator) routeSnapshot(ctx context.Context, name string) (gantry.RouteStatus, bool, error) {
	sts, err := o.Router.Status(ctx)
	if err != nil {
		return gantry.RouteStatus{}, false, err
	}
	for _, rs := range sts {
		if rs.Route.Name == name {
			return rs, true, nil
		}
	}
	return gantry.RouteStatus{}, false, nil
}

// watchAfterSwitch observes the route for w.Window after a switch from the
// targets active in before (a snapshot taken just before the switch) to
// newTargets. It compares the new targets' share of 5xx answers and their
// mean latency over the window with the old targets' figures, judging at
// every poll once the new targets have served w.MinRequests, so that a
// failing release is rolled back as soon as the evidence suffices.
//
// It returns nil when the window passes (also with too few requests for a
// verdict, or when someone else switched the route meanwhile: there is then
// nothing of ours to roll back), a *WatchBreach that says which figure
// crossed which bound, or ctx's error. A router that does not answer a poll
// is no evidence against the release; the watch carries on.
func (o *Orchestrator) watchAfterSwitch(ctx context.Context, route string, before gantry.RouteStatus, newTargets []string, w gantry.WatchSpec) error {
	log := o.logger().With("route", route)
	var old figures
	base := map[string]figures{}
	for _, ts := range before.Active {
		if slices.Contains(newTargets, ts.Addr) {
			base[ts.Addr] = figuresOf(ts)
		} else {
			old = old.add(figuresOf(ts))
		}
	}
	// Verify checks reach the new targets through the preview host before
	// the switch; they are not the window's traffic.
	for _, ts := range before.Preview {
		if slices.Contains(newTargets, ts.Addr) {
			base[ts.Addr] = figuresOf(ts)
		}
	}

	poll := min(max(w.Window/10, watchPollMin), watchPollMax)
	start := o.now()
	var cur figures
	for {
		last := !o.now().Before(start.Add(w.Window))
		rs, found, err := o.routeSnapshot(ctx, route)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			log.Warn("post-switch watch: router status", "error", err)
		case !found || !activeIs(rs, newTargets):
			log.Warn("post-switch watch: the route no longer serves the new targets; watch ended", "targets", newTargets)
			return nil
		default:
			cur = windowFigures(rs, newTargets, base)
			if figure, detail := judge(cur, old, w); figure != "" {
				b := &WatchBreach{Route: route, Figure: figure, Detail: detail, After: o.now().Sub(start)}
				log.Warn("post-switch watch: breach", "figure", figure, "detail", detail)
				return b
			}
		}
		if last {
			break
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	log.Info("post-switch watch passed", "window", w.Window, "requests", cur.requests, "errors_5xx", cur.errors,
		"mean_latency", cur.mean(), "previous_mean_latency", old.mean(), "verdict", cur.requests >= int64(w.MinRequests))
	return nil
}

// activeIs says the route's active set is exactly targets.
func activeIs(rs gantry.RouteStatus, targets []string) bool {
	if len(rs.Active) != len(targets) {
		return false
	}
	for _, ts := range rs.Active {
		if !slices.Contains(targets, ts.Addr) {
			return false
		}
	}
	return true
}

// windowFigures sums the new targets' counters since the switch. A target
// first seen now has its baseline recorded, which loses at most the requests
// of one poll.
func windowFigures(rs gantry.RouteStatus, targets []string, base map[string]figures) figures {
	var sum figures
	for _, ts := range rs.Active {
		if !slices.Contains(targets, ts.Addr) {
			continue
		}
		f := figuresOf(ts)
		b, ok := base[ts.Addr]
		if !ok || f.requests < b.requests {
			// Unknown, or counters that went back: the router restarted.
			base[ts.Addr] = f
			continue
		}
		sum = sum.add(f.sub(b))
	}
	return sum
}

// judge compares the new release's figures over the window with the old
// release's, and names the first figure past its bound ("" when none is, or
// when there are too few requests to tell).
func judge(cur, old figures, w gantry.WatchSpec) (figure, detail string) {
	minReq := int64(max(w.MinRequests, 1))
	if cur.requests < minReq {
		return "", ""
	}
	oldCounts := old.requests >= minReq
	rate := float64(cur.errors) / float64(cur.requests)
	bound, boundText := w.MaxErrorRate, percent(w.MaxErrorRate)
	if oldRate := float64(old.errors) / float64(max(old.requests, 1)); oldCounts && oldRate > bound {
		// The release is not to blame for failing no more than the one before.
		bound, boundText = oldRate, percent(oldRate)+" (the previous release's rate)"
	}
	if rate > bound {
		return FigureErrorRate, fmt.Sprintf("error rate %s (%d of %d) > %s", percent(rate), cur.errors, cur.requests, boundText)
	}
	if w.MaxLatencyRatio > 0 && oldCounts {
		oldMean, curMean := old.mean(), cur.mean()
		limit := time.Duration(float64(oldMean) * w.MaxLatencyRatio)
		if curMean > limit && curMean-oldMean >= latencyNoise {
			return FigureLatency, fmt.Sprintf("mean latency %s > %s × %s (the previous release's mean) = %s",
				roundDuration(curMean), strconv.FormatFloat(w.MaxLatencyRatio, 'g', -1, 64), roundDuration(oldMean), roundDuration(limit))
		}
	}
	return "", ""
}

// percent writes a share as people read it: 5%, 12.5%, 33.3%.
func percent(r float64) string {
	return strconv.FormatFloat(float64(int64(r*1000+0.5))/10, 'f', -1, 64) + "%"
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// watchOrRollBack watches the route for the environment's watch window after
// a switch and, when the new release's error rate or latency crosses its
// bound, flips traffic back to the previous release (still warm), sets the
// new one aside, and fails the deployment with the figure that crossed
// which bound.
func (o *Orchestrator) watchOrRollBack(ctx context.Context, ro *rollout, before []gantry.RouteStatus) error {
	r, env := ro.r, ro.env
	w := ro.spec.Watch
	old := env.Slots[gantry.OtherSlot(ro.cand.Name)]
	var watched []routeTargets
	var names []string
	for _, rt := range o.routes(env, ro.cand, ro.p.m) {
		if len(rt.targets) > 0 {
			watched = append(watched, rt)
			names = append(names, rt.route.Name)
		}
	}
	if w == nil || len(watched) == 0 || old == nil || old.State != gantry.SlotStandby || len(old.Instances) == 0 {
		return nil
	}
	var breach *WatchBreach
	err := r.step(ctx, "watch", fmt.Sprintf("%s for %s", strings.Join(names, ", "), w.Window), func() (string, error) {
		err := o.watchRoutes(ctx, watched, before, *w)
		if errors.As(err, &breach) {
			return breach.Detail, nil
		}
		if err != nil {
			return "", err
		}
		return "error rate and latency within bounds", nil
	})
	if err != nil || breach == nil {
		return err
	}
	// Going back is a change of what serves like any other: the release
	// left warm must pass the gates, the database's schema above all (after
	// a maintenance deploy the old release's schema is gone).
	oldM, err := o.gateAutoRollback(ctx, ro, old)
	if err != nil {
		_ = r.step(ctx, "auto-rollback", breach.Figure+" crossed its bound: back to "+old.Version, func() (string, error) {
			return "", err
		})
		return gantry.Errorf(gantry.EFAILED, "%s after the switch; the automatic rollback to %s was refused (%s), so %s keeps serving",
			breach.Detail, old.Version, gantry.ErrorMessage(err), ro.rel.Version)
	}
	err = r.step(ctx, "auto-rollback", breach.Figure+" crossed its bound: back to "+old.Version, func() (string, error) {
		msg, err := o.switchTo(ctx, env, ro.drv, old, oldM, true)
		if err != nil {
			return "", err
		}
		o.promoteSlot(env, old.Name, ro.spec.KeepWarm)
		return breach.Figure + " crossed its bound: " + msg, o.saveEnv(ctx, env)
	})
	if err != nil {
		return err
	}
	undone, err := o.rollbackLeftMigration(ctx, r, env, ro.m, ro.rel.ID)
	if err != nil {
		return err
	}
	if undone {
		_ = r.step(ctx, "stop-candidate", fmt.Sprintf("slot %s (%s): its migration was rolled back, so it cannot serve again", ro.cand.Name, ro.rel.Version), func() (string, error) {
			return "", o.scaleDownSlot(ctx, env, ro.drv, ro.cand, ro.m)
		})
	}
	return gantry.Errorf(gantry.EFAILED, "rolled back automatically after the switch: %s", breach.Detail)
}

// watchRoutes watches the route of every http service at once; the first
// breach ends the watch of all of them, since the release is switched back
// as a whole.
func (o *Orchestrator) watchRoutes(ctx context.Context, rts []routeTargets, before []gantry.RouteStatus, w gantry.WatchSpec) error {
	snapshot := func(name string) gantry.RouteStatus {
		for _, st := range before {
			if st.Route.Name == name {
				return st
			}
		}
		return gantry.RouteStatus{}
	}
	if len(rts) == 1 {
		return o.watchAfterSwitch(ctx, rts[0].route.Name, snapshot(rts[0].route.Name), rts[0].targets, w)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(rts))
	for _, rt := range rts {
		go func() {
			err := o.watchAfterSwitch(wctx, rt.route.Name, snapshot(rt.route.Name), rt.targets, w)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range rts {
		err := <-errs
		var b *WatchBreach
		switch {
		case errors.As(err, &b):
			first = err // a breach outranks the cancellations it caused
		case err != nil && first == nil && ctx.Err() != nil:
			first = err
		}
	}
	return first
}

// gateAutoRollback runs the gates for the watch's flip back to old, under
// the lock the deployment already holds.
func (o *Orchestrator) gateAutoRollback(ctx context.Context, ro *rollout, old *gantry.Slot) (*gantry.Manifest, error) {
	rel, err := o.Store.FindRelease(ctx, ro.env.App, old.ReleaseID)
	if err != nil {
		return nil, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, err
	}
	spec, ok := specFor(m, ro.env, ro.env.Name)
	if !ok {
		spec = &ro.env.Spec
	}
	back := &op{kind: gantry.KindRollback, app: ro.env.App, env: ro.env.Name, actor: ro.r.d.Actor, rel: rel, m: m, spec: spec,
		current: ro.env, breakGlass: ro.op.breakGlass, flip: true}
	return m, o.checkGates(ctx, back)
}
