package proxy

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/gantry-dev/gantry"
)

// Deploy creates or updates the route and switches it to targets once every
// target passed its health check, then drains the targets it left. If the
// targets do not become healthy within DeployTimeout, nothing changes.
func (r *Router) Deploy(ctx context.Context, route gantry.Route, targets []string) (*gantry.SwitchResult, error) {
	cfg, err := withRouteDefaults(route)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "route %q: no targets to deploy", cfg.Name)
	}
	if err := validateTargets(cfg.Name, targets); err != nil {
		return nil, err
	}
	rt, err := r.routeForDeploy(cfg)
	if err != nil {
		return nil, err
	}
	rt.opMu.Lock()
	res, retired, switched, err := r.deployLocked(ctx, rt, cfg, targets)
	rt.opMu.Unlock()
	if err != nil {
		return nil, err
	}
	r.notifyChange()
	if switched {
		r.finishSwitch(ctx, rt, cfg.DrainTimeout, retired, res)
	}
	return res, nil
}

// routeForDeploy returns the named route, registering a not-yet-live one for
// a first deploy (it joins the route table only when its switch succeeds).
func (r *Router) routeForDeploy(cfg *gantry.Route) (*route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, gantry.Errorf(gantry.EUNAVAILABLE, "router is closed")
	}
	rt, ok := r.routes[cfg.Name]
	if !ok {
		rt = r.newRoute(cfg.Name)
		rt.cfg.Store(cfg)
		r.routes[cfg.Name] = rt
	}
	// Refuse a host conflict before spending a health round on it.
	if _, err := r.buildTableLocked(rt, cfg); err != nil {
		if !rt.isLive() {
			delete(r.routes, cfg.Name)
		}
		return nil, err
	}
	return rt, nil
}

func (r *Router) deployLocked(ctx context.Context, rt *route, cfg *gantry.Route, addrs []string) (res *gantry.SwitchResult, retired []*target, switched bool, err error) {
	if !r.stillRegistered(rt) {
		return nil, nil, false, gantry.Errorf(gantry.ECONFLICT, "route %q was removed during the deploy", cfg.Name)
	}
	cur := rt.active.Load()
	if rt.isLive() && cur.sameAddrs(addrs) {
		if err := r.applyConfig(rt, cfg, nil); err != nil {
			return nil, nil, false, err
		}
		return &gantry.SwitchResult{Route: cfg.Name, From: cur.addrList(), To: cur.addrList()}, nil, false, nil
	}
	ts := rt.targetsFor(addrs, cfg.Health, false)
	for _, t := range ts {
		// A target carried over from the previous or preview set is judged
		// by the health check of the configuration being deployed.
		hc := cfg.Health
		t.hc.Store(&hc)
	}
	round, err := r.waitHealthy(ctx, rt, ts, cfg.DeployTimeout)
	next := newTargetSet(ts)
	var from *targetSet
	if err == nil {
		// The switch happens inside the table update, so a first deploy's
		// hosts never resolve to a route without targets.
		err = r.applyConfig(rt, cfg, func() {
			from, retired = r.switchTo(rt, next)
			retired = r.stickAfterSwitch(rt, from, next, retired)
		})
	}
	if err != nil {
		rt.collect()
		r.dropIfNotLive(rt)
		return nil, nil, false, err
	}
	return &gantry.SwitchResult{Route: cfg.Name, From: from.addrList(), To: next.addrList(), HealthRound: round}, retired, true, nil
}

// Rollback switches a route back to its previous target set. When those
// targets passed a probe recently (they are checked in the background while
// remembered) there is no health round, so the switch is immediate.
func (r *Router) Rollback(ctx context.Context, name string) (*gantry.SwitchResult, error) {
	rt, err := r.liveRoute(name)
	if err != nil {
		return nil, err
	}
	rt.opMu.Lock()
	rt.mu.Lock()
	prev := rt.previous
	rt.mu.Unlock()
	if prev == nil {
		rt.opMu.Unlock()
		return nil, gantry.Errorf(gantry.EINVALID, "route %q has no previous target set to roll back to", name)
	}
	cfg := rt.cfg.Load()
	round, err := r.waitHealthy(ctx, rt, prev.targets, cfg.DeployTimeout)
	if err != nil {
		rt.opMu.Unlock()
		return nil, err
	}
	from, retired := r.switchTo(rt, newTargetSet(prev.targets))
	// Going back ends any split: the stable release serves everyone.
	if cs := rt.canary.Swap(nil); cs != nil {
		retired = append(retired, rt.leaving(cs.cand.Load())...)
	}
	rt.opMu.Unlock()
	res := &gantry.SwitchResult{Route: name, From: from.addrList(), To: prev.addrList(), HealthRound: round}
	r.notifyChange()
	r.finishSwitch(ctx, rt, cfg.DrainTimeout, retired, res)
	return res, nil
}

// switchTo makes next the active set in one atomic store, remembers the old
// set as previous, and marks the targets that left as retired for draining.
func (r *Router) switchTo(rt *route, next *targetSet) (from *targetSet, retired []*target) {
	for _, t := range next.targets {
		t.retired.Store(false)
	}
	rt.mu.Lock()
	old := rt.active.Load()
	rt.active.Store(next)
	if old != nil {
		rt.previous = old
	}
	rt.switchedAt = r.now()
	rt.switches++
	rt.mu.Unlock()
	pre := rt.preview.Load()
	if old != nil {
		for _, t := range old.targets {
			if !next.contains(t) && !pre.contains(t) {
				t.retired.Store(true)
				retired = append(retired, t)
			}
		}
	}
	if m := r.cfg.Metrics; m != nil {
		m.switches.WithLabelValues(rt.name).Inc()
	}
	r.log.Info("route switched", logKeyRoute, rt.name, "from", old.addrList(), "to", next.addrList())
	return old, retired
}

// finishSwitch drains what a switch left and then forgets targets no set
// needs any more.
func (r *Router) finishSwitch(ctx context.Context, rt *route, timeout time.Duration, retired []*target, res *gantry.SwitchResult) {
	res.Drained, res.Cancelled, res.DrainTime = r.drain(ctx, rt, retired, timeout)
	rt.opMu.Lock()
	rt.collect()
	rt.opMu.Unlock()
}

// waitHealthy is a health round: it returns once every target is healthy,
// or an EUNAVAILABLE error naming the first target that is not and why.
func (r *Router) waitHealthy(ctx context.Context, rt *route, ts []*target, timeout time.Duration) (time.Duration, error) {
	start := r.now()
	// stale are the targets without a recent verdict: the round asks each
	// for a probe and waits for its answer. The others need only stay
	// healthy; they are not asked, so waiting for a probe of theirs would
	// wait for their interval.
	var stale []*target
	for _, t := range ts {
		if !t.healthyRecently(start) {
			stale = append(stale, t)
			t.probeNow()
		}
	}
	if len(stale) == 0 {
		return 0, nil
	}
	realStart := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := r.changed.wait()
		var bad *target
		for _, t := range ts {
			// A stale verdict from before the round does not count: the
			// round exists because it is stale.
			if !t.healthy.Load() || slices.Contains(stale, t) && !t.healthySince(start) {
				bad = t
				break
			}
		}
		if bad == nil {
			return time.Since(realStart), nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return 0, gantry.Errorf(gantry.EUNAVAILABLE, "route %q: target %s did not become healthy within %s: %s", rt.name, bad.addr, timeout, bad.lastError())
		case <-ctx.Done():
			return 0, gantry.Errorf(gantry.EUNAVAILABLE, "route %q: health round cancelled while target %s was not healthy (%s): %v", rt.name, bad.addr, bad.lastError(), ctx.Err())
		}
	}
}

// applyConfig installs cfg as the route's configuration and makes the route
// live, rebuilding the route table. beforeTable, if set, runs once the new
// table is known to be valid and before it is installed.
func (r *Router) applyConfig(rt *route, cfg *gantry.Route, beforeTable func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tb, err := r.buildTableLocked(rt, cfg)
	if err != nil {
		return err
	}
	if beforeTable != nil {
		beforeTable()
	}
	rt.cfg.Store(cfg)
	rt.mu.Lock()
	rt.live = true
	for _, t := range rt.targets {
		hc := cfg.Health
		t.hc.Store(&hc)
	}
	rt.mu.Unlock()
	r.table.Store(tb)
	return nil
}

// buildTableLocked builds the table of live routes, with override (made live)
// using cfg instead of its current configuration. Callers hold r.mu.
func (r *Router) buildTableLocked(override *route, cfg *gantry.Route) (*routeTable, error) {
	names := make([]string, 0, len(r.routes))
	for n := range r.routes {
		names = append(names, n)
	}
	// Deterministic order, so a conflict error always names the same route.
	sort.Strings(names)
	cfgs := make([]routeConfig, 0, len(names))
	for _, n := range names {
		rt := r.routes[n]
		switch {
		case rt == override:
			cfgs = append(cfgs, routeConfig{rt, cfg})
		case rt.isLive():
			cfgs = append(cfgs, routeConfig{rt, rt.cfg.Load()})
		}
	}
	return buildTable(cfgs)
}

func (rt *route) isLive() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.live
}

func (r *Router) stillRegistered(rt *route) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.routes[rt.name] == rt
}

func (r *Router) dropIfNotLive(rt *route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !rt.isLive() && r.routes[rt.name] == rt {
		delete(r.routes, rt.name)
		rt.stopAll()
	}
}

func (r *Router) liveRoute(name string) (*route, error) {
	r.mu.Lock()
	rt, ok := r.routes[name]
	r.mu.Unlock()
	if !ok || !rt.isLive() {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "route %q not found", name)
	}
	return rt, nil
}

// SetPreview sets (or, with no targets, clears) the set served on the
// route's PreviewHosts. It is not health-gated: the preview exists so the
// candidate can be checked.
func (r *Router) SetPreview(ctx context.Context, name string, targets []string) error {
	rt, err := r.liveRoute(name)
	if err != nil {
		return err
	}
	if err := validateTargets(name, targets); err != nil {
		return err
	}
	rt.opMu.Lock()
	if len(targets) == 0 {
		rt.preview.Store(nil)
	} else {
		ts := rt.targetsFor(targets, rt.cfg.Load().Health, false)
		for _, t := range ts {
			t.probeNow()
		}
		rt.preview.Store(newTargetSet(ts))
	}
	rt.collect()
	rt.opMu.Unlock()
	r.notifyChange()
	return nil
}

// RemoveRoute takes a route out of the table and stops its health checks.
// Requests already running on it finish; held requests are released.
func (r *Router) RemoveRoute(ctx context.Context, name string) error {
	r.mu.Lock()
	rt, ok := r.routes[name]
	if !ok || !rt.isLive() {
		r.mu.Unlock()
		return gantry.Errorf(gantry.ENOTFOUND, "route %q not found", name)
	}
	delete(r.routes, name)
	tb, err := r.buildTableLocked(nil, nil)
	if err == nil {
		r.table.Store(tb)
	}
	r.mu.Unlock()
	rt.stopAll()
	if g := rt.pause.Swap(nil); g != nil {
		g.release()
	}
	if m := r.cfg.Metrics; m != nil {
		m.forgetRoute(name)
	}
	r.notifyChange()
	return err
}

// Status reports every live route, sorted by name.
func (r *Router) Status(ctx context.Context) ([]gantry.RouteStatus, error) {
	r.mu.Lock()
	rts := make([]*route, 0, len(r.routes))
	for _, rt := range r.routes {
		if rt.isLive() {
			rts = append(rts, rt)
		}
	}
	r.mu.Unlock()
	sort.Slice(rts, func(i, j int) bool { return rts[i].name < rts[j].name })
	out := make([]gantry.RouteStatus, 0, len(rts))
	for _, rt := range rts {
		out = append(out, rt.status())
	}
	return out, nil
}
