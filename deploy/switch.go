package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// The switch is the one step that moves an environment's traffic, and this
// file is its one home: every operation that changes what serves (a
// blue-green switch, a restart in place, a flip back, a put-back after a
// failed restart, a rename, crash recovery) calls switchTo, which is one
// function per kind of runtime: the runtime's own switch for a SlotDriver,
// Gantry's router otherwise, and both (router first) for a SlotDriver with
// Gantry's router in front of it (runtime.traffic: router).

// switchTo points env's traffic at slot. Through the router it is
// health-gated: the router checks every target of the slot before traffic
// moves and drains the old targets after. With flip, a slot whose targets
// are the set the router remembers as previous is switched back by the
// router's own rollback, without a health round (instant rollback).
func (o *Orchestrator) switchTo(ctx context.Context, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, m *gantry.Manifest, flip bool) (string, error) {
	start := time.Now()
	sd, slotDriven := drv.(gantry.SlotDriver)
	if slotDriven && !env.Spec.Runtime.RouterInFront() {
		if err := sd.Switch(ctx, slotRef(env, slot.Name)); err != nil {
			return "", err
		}
		return fmt.Sprintf("traffic on %s after %s (the runtime's switch)", slot.Version, time.Since(start).Round(time.Millisecond)), nil
	}
	res, err := o.routeTo(ctx, env, slot, m, flip)
	if err == nil && slotDriven {
		// Gantry's router in front of a slot-driven runtime.
		err = o.followRouter(ctx, env, sd, slot, m)
	}
	if err != nil || res == nil {
		return "no http service: nothing to route", err
	}
	msg := fmt.Sprintf("traffic on %s after %s; drained %d requests in %s, cancelled %d",
		slot.Version, time.Since(start).Round(time.Microsecond), res.Drained, res.DrainTime.Round(time.Millisecond), res.Cancelled)
	if slotDriven {
		msg += " (through Gantry's router; the runtime's Services follow)"
	}
	return msg, nil
}

// routeTo is the router's side of switchTo: each route of env (under its
// current name and hosts), one per http service, to slot's instances of
// that service. A slot without web instances routes nothing and returns a
// nil result. When one route's switch fails, the routes switched before it
// are put back, so the environment's services keep serving one release;
// once all are switched, routes of services the release no longer routes
// are removed.
func (o *Orchestrator) routeTo(ctx context.Context, env *gantry.Environment, slot *gantry.Slot, m *gantry.Manifest, flip bool) (*gantry.SwitchResult, error) {
	var sum *gantry.SwitchResult
	var done []string
	keep := map[string]bool{}
	rts := o.routes(env, slot, m)
	existed := map[string]bool{} // routes that served before: put back by a flip; the others are removed
	if len(rts) > 1 {
		names, _ := o.routeNames(ctx, env.App, env.Name)
		for _, n := range names {
			existed[n] = true
		}
	}
	for _, rt := range rts {
		keep[rt.route.Name] = true
		if len(rt.targets) == 0 {
			continue
		}
		res, err := o.routeOne(ctx, rt, flip)
		if err != nil {
			wctx := context.WithoutCancel(ctx)
			for _, n := range done {
				if existed[n] {
					_, _ = o.Router.Rollback(wctx, n)
				} else {
					_ = o.Router.RemoveRoute(wctx, n)
				}
			}
			return nil, err
		}
		done = append(done, rt.route.Name)
		sum = addResult(sum, res)
	}
	if sum != nil {
		if err := o.removeRoutes(ctx, env.App, env.Name, keep); err != nil {
			o.logger().Warn("remove routes of services no longer routed", "app", env.App, "env", env.Name, "error", err)
		}
	}
	return sum, nil
}

// routeOne switches one route; with flip, back to the router's previous
// target set when that is the one wanted.
func (o *Orchestrator) routeOne(ctx context.Context, rt routeTargets, flip bool) (*gantry.SwitchResult, error) {
	if flip {
		if st, ok, err := o.routeSnapshot(ctx, rt.route.Name); err == nil && ok && sameSet(st.Previous, rt.targets) {
			return o.Router.Rollback(ctx, rt.route.Name)
		}
	}
	return o.Router.Deploy(ctx, rt.route, rt.targets)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x]--; seen[x] < 0 {
			return false
		}
	}
	return true
}
