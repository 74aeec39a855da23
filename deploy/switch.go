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
// Gantry's router otherwise.

// switchTo points env's traffic at slot. Through the router it is
// health-gated: the router checks every target of the slot before traffic
// moves and drains the old targets after. With flip, a slot whose targets
// are the set the router remembers as previous is switched back by the
// router's own rollback, without a health round (instant rollback).
func (o *Orchestrator) switchTo(ctx context.Context, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, m *gantry.Manifest, flip bool) (string, error) {
	start := time.Now()
	if sd, ok := drv.(gantry.SlotDriver); ok {
		if err := sd.Switch(ctx, slotRef(env, slot.Name)); err != nil {
			return "", err
		}
		return fmt.Sprintf("traffic on %s after %s (the runtime's switch)", slot.Version, time.Since(start).Round(time.Millisecond)), nil
	}
	res, err := o.routeTo(ctx, env, slot, m, flip)
	if err != nil || res == nil {
		return "no http service: nothing to route", err
	}
	return fmt.Sprintf("traffic on %s after %s; drained %d requests in %s, cancelled %d",
		slot.Version, time.Since(start).Round(time.Microsecond), res.Drained, res.DrainTime.Round(time.Millisecond), res.Cancelled), nil
}

// routeTo is the router's side of switchTo: the route of env (under its
// current name and hosts) to slot's web instances. A slot without web
// instances routes nothing and returns a nil result.
func (o *Orchestrator) routeTo(ctx context.Context, env *gantry.Environment, slot *gantry.Slot, m *gantry.Manifest, flip bool) (*gantry.SwitchResult, error) {
	targets := webTargets(slot, m)
	if len(targets) == 0 {
		return nil, nil
	}
	name := gantry.RouteName(env.App, env.Name)
	if flip {
		if st, ok, err := o.routeSnapshot(ctx, name); err == nil && ok && sameSet(st.Previous, targets) {
			return o.Router.Rollback(ctx, name)
		}
	}
	return o.Router.Deploy(ctx, o.route(env, m), targets)
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
