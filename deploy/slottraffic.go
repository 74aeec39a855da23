package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Verify checks and the post-switch watch on a runtime that switches whole
// slots (gantry.SlotDriver: Kubernetes). Which way they go is the
// environment's runtime.traffic:
//
//   - cluster (the default): the cluster's Services take the traffic.
//     Verify checks reach the candidate through the runtime's preview
//     (gantry.SlotPreviewer: the API server's service proxy, so Gantry may
//     run outside the cluster). The watch has no per-slot figures to read
//     and says so in the journal.
//   - router: Gantry's router is in front of the pods (it must reach them).
//     Verify goes through its preview host, the switch through the router
//     (health-gated, draining) followed by the runtime's own switch, and
//     the watch reads the router's per-target figures and rolls back as on
//     the other runtimes.

// verifySlot runs the verify checks against a started candidate slot.
func (o *Orchestrator) verifySlot(ctx context.Context, r *run, sd gantry.SlotDriver, op *op, env *gantry.Environment, cand *gantry.Slot) error {
	m, spec := op.m, op.spec
	if len(m.Verify) == 0 {
		return nil
	}
	if spec.Runtime.RouterInFront() {
		main, _ := o.mainRoute(env, cand, m)
		return r.step(ctx, "verify", fmt.Sprintf("%d checks through Gantry's router (%s)", len(m.Verify), strings.Join(main.route.PreviewHosts, ",")), func() (string, error) {
			return o.verify(ctx, op.rel, env, cand, m, false)
		})
	}
	pv, ok := sd.(gantry.SlotPreviewer)
	if !ok {
		// Said in the journal, so that nobody takes the gate for passed.
		return r.step(ctx, "verify", "", func() (string, error) {
			return fmt.Sprintf("not run: %d checks need the candidate's preview, which the %s runtime does not open to Gantry", len(m.Verify), spec.Runtime.Driver), nil
		})
	}
	return r.step(ctx, "verify", fmt.Sprintf("%d checks through the runtime's preview of slot %s", len(m.Verify), cand.Name), func() (string, error) {
		p, err := pv.OpenPreview(ctx, slotRef(env, cand.Name))
		if err != nil {
			return "", fmt.Errorf("open the candidate's preview: %w", err)
		}
		defer p.Close()
		msg, err := o.runChecks(ctx, op.rel, m, checkTarget{base: p.URL})
		if err != nil {
			return "", err
		}
		return msg + " (via " + p.Via + ")", nil
	})
}

// watchSlot is the post-switch watch of a slot-driven environment, once
// the candidate is active and the previous slot standing by.
func (o *Orchestrator) watchSlot(ctx context.Context, r *run, op *op, env *gantry.Environment, drv gantry.Driver, cand *gantry.Slot, before []gantry.RouteStatus) error {
	spec := op.spec
	if spec.Watch == nil {
		return nil
	}
	if !spec.Runtime.RouterInFront() {
		return r.step(ctx, "watch", "", func() (string, error) {
			return fmt.Sprintf("not run: the post-switch watch needs per-slot request figures, which the %s runtime's own routing does not give; runtime.traffic: router puts Gantry's router in front of the pods", spec.Runtime.Driver), nil
		})
	}
	ro := &rollout{r: r, op: op, env: env, drv: drv, rel: op.rel, m: op.m, spec: spec, p: &plan{m: op.m}, cand: cand}
	return o.watchOrRollBack(ctx, ro, before)
}

// followRouter is the runtime's side of a switch through Gantry's router in
// front of a slot-driven runtime: once the router serves slot, the runtime
// records it as active and points its Services at it (for what calls them
// inside the cluster). When that fails, the router is put back, so that the
// two never disagree on which slot serves.
func (o *Orchestrator) followRouter(ctx context.Context, env *gantry.Environment, sd gantry.SlotDriver, slot *gantry.Slot, m *gantry.Manifest) error {
	err := sd.Switch(ctx, slotRef(env, slot.Name))
	if err == nil {
		return nil
	}
	wctx := context.WithoutCancel(ctx)
	for _, rt := range o.routes(env, slot, m) {
		if len(rt.targets) > 0 {
			if _, rerr := o.Router.Rollback(wctx, rt.route.Name); rerr != nil {
				o.logger().Warn("put the router back after the runtime's switch failed", "route", rt.route.Name, "error", rerr)
			}
		}
	}
	const what = "the runtime's switch to slot %s failed, so the router was put back: "
	if code := gantry.ErrorCode(err); code != gantry.EINTERNAL {
		return gantry.Errorf(code, what+"%s", slot.Name, gantry.ErrorMessage(err))
	}
	return fmt.Errorf(what+"%w", slot.Name, err)
}

// routerSlot is the slot whose instances Gantry's router sends env's
// routes to ("" when it sends them to none of env's slots). Pod addresses
// are unique, so one target in common names the slot.
func (o *Orchestrator) routerSlot(ctx context.Context, env *gantry.Environment) (string, error) {
	sts, err := o.envRouteStatus(ctx, env.App, env.Name)
	if err != nil {
		return "", err
	}
	for _, st := range sts {
		for _, ts := range st.Active {
			for name, s := range env.Slots {
				for _, inst := range s.Instances {
					if inst.Addr != "" && inst.Addr == ts.Addr {
						return name, nil
					}
				}
			}
		}
	}
	return "", nil
}

// followRouterAfterCrash makes the runtime agree with Gantry's router in
// front of it after a restart: a crash between the router's switch and
// the runtime's (followRouter) leaves the router serving a slot the runtime
// does not record as active, and what serves is the router's.
func (o *Orchestrator) followRouterAfterCrash(ctx context.Context, sd gantry.SlotDriver, env *gantry.Environment, active string) (string, error) {
	if !env.Spec.Runtime.RouterInFront() {
		return active, nil
	}
	serving, err := o.routerSlot(ctx, env)
	if err != nil || serving == "" || serving == active {
		return active, err
	}
	o.logger().Warn("the router serves another slot than the runtime records: the runtime follows the router", "app", env.App, "env", env.Name, "router", serving, "runtime", active)
	return serving, sd.Switch(ctx, slotRef(env, serving))
}
