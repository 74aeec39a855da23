package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
)

// restartInPlace patches the active slot: pause the route, stop the old
// instances, start the new, wait for health, switch, resume. Requests that
// arrive meanwhile are held by the router, so a restart shorter than the
// pause bound fails none of them.
func (o *Orchestrator) restartInPlace(ctx context.Context, r *run, env *gantry.Environment, drv gantry.Driver, rel *gantry.Release, m *gantry.Manifest) error {
	slot := env.ActiveSlot()
	r.d.Slot = slot.Name
	route := gantry.RouteName(env.App, env.Name)
	oldM := o.manifestOfRelease(ctx, env.App, slot.ReleaseID)
	if oldM == nil {
		oldM = m
	}
	// The expand comes first, while the old instances still serve: it keeps
	// their schema, and a refusal or a failure leaves them untouched.
	db, err := o.expandDatabase(ctx, r, env, rel, m, false)
	if err != nil {
		return err
	}
	held, err := o.holdRequests(ctx, r, "pause", env)
	if err != nil {
		return err
	}
	// The routes are resumed whatever happens below.
	defer o.letGo(ctx, r, "resume", strings.Join(held, ", "), held)
	if err := r.step(ctx, "stop-old", fmt.Sprintf("slot %s (%s)", slot.Name, slot.Version), func() (string, error) {
		return "", o.stopSlot(ctx, env, drv, slot, oldM)
	}); err != nil {
		return err
	}
	*slot = gantry.Slot{Name: slot.Name, State: gantry.SlotStarting, ReleaseID: rel.ID, Version: rel.Version, Since: o.now()}
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	if err := r.step(ctx, "start", "slot "+slot.Name, func() (string, error) {
		return o.startSlot(ctx, env, drv, slot, rel, m, m.ServicesInOrder(), db.connVars())
	}); err != nil {
		return err
	}
	if err := r.step(ctx, "health", "", func() (string, error) { return o.waitHealthy(ctx, drv, slot, m) }); err != nil {
		return err
	}
	slot.Verified = true
	if err := r.step(ctx, "switch", route, func() (string, error) {
		return o.switchTo(ctx, env, drv, slot, m, false)
	}); err != nil {
		return err
	}
	slot.State = gantry.SlotActive
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	// No other slot runs the old release: the migration expanded for this
	// one is contracted now, as a blue-green deploy does once its old slot
	// has stopped.
	return o.contractStep(ctx, r, env, m)
}

// restartGroups patches the active slot one order group at a time: each
// group's old instances are stopped and its new ones started and found
// healthy before the next group is touched. When a group fails, it and the
// groups restarted before it are restarted again on the release they ran,
// last group first. With --only, only that service's group is restarted.
func (o *Orchestrator) restartGroups(ctx context.Context, r *run, env *gantry.Environment, drv gantry.Driver, rel *gantry.Release, m *gantry.Manifest, p *plan) error {
	slot := env.ActiveSlot()
	r.d.Slot = slot.Name
	// Stamp each instance with its release before the slot becomes a mix.
	for i := range slot.Instances {
		if slot.Instances[i].ReleaseID == "" {
			slot.Instances[i].ReleaseID = slot.ReleaseID
		}
	}
	prev, err := o.runningParts(ctx, env.App, slot)
	if err != nil {
		return err
	}
	oldM := *p.m
	oldM.Services = map[string]*gantry.Service{}
	for n, s := range p.m.Services {
		oldM.Services[n] = s
	}
	for n, pt := range prev {
		oldM.Services[n] = pt.svc
	}
	route := gantry.RouteName(env.App, env.Name)
	db, err := o.expandDatabase(ctx, r, env, rel, m, false)
	if err != nil {
		return err
	}
	held, err := o.holdRequests(ctx, r, "pause", env)
	if err != nil {
		return err
	}
	defer o.letGo(ctx, r, "resume", strings.Join(held, ", "), held)
	oldRelease, oldVersion := slot.ReleaseID, slot.Version
	slot.State, slot.ReleaseID, slot.Version, slot.Since = gantry.SlotStarting, rel.ID, rel.Version, o.now()
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	var done []group
	for _, g := range p.groups {
		g = newParts(g, rel)
		if len(g.parts) == 0 {
			continue
		}
		done = append(done, g)
		err := r.step(ctx, "restart-group", g.label()+" on slot "+slot.Name, func() (string, error) {
			if err := o.stopInstances(ctx, env, drv, slot, &oldM, func(inst gantry.Instance) bool { return !g.has(inst.Service) }); err != nil {
				return "", err
			}
			msg, err := o.startGroup(ctx, env, drv, slot, p.m, g, db.connVars())
			return msg, groupErr(g, err)
		})
		if err != nil {
			return o.restoreGroups(ctx, r, env, drv, slot, route, done, prev, p.m, &oldM, oldRelease, oldVersion, err)
		}
	}
	slot.Verified = true
	if err := r.step(ctx, "switch", route, func() (string, error) {
		return o.switchTo(ctx, env, drv, slot, p.m, false)
	}); err != nil {
		return err
	}
	slot.State = gantry.SlotActive
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	if p.only != "" {
		return nil // the other services still run the old release, on its schema
	}
	// No other slot runs the old release: the migration expanded for this
	// one is contracted now, as a blue-green deploy does once its old slot
	// has stopped.
	return o.contractStep(ctx, r, env, m)
}

// newParts keeps the parts of g that run rel: with --only the other
// services are not restarted.
func newParts(g group, rel *gantry.Release) group {
	out := group{order: g.order}
	for _, pt := range g.parts {
		if pt.rel.ID == rel.ID {
			out.parts = append(out.parts, pt)
		}
	}
	return out
}

// runningParts returns, per service, the definition and release that its
// instances in slot run.
func (o *Orchestrator) runningParts(ctx context.Context, app string, slot *gantry.Slot) (map[string]part, error) {
	out := map[string]part{}
	rels := map[string]*gantry.Release{}
	ms := map[string]*gantry.Manifest{}
	for _, inst := range slot.Instances {
		if _, ok := out[inst.Service]; ok {
			continue
		}
		id := inst.ReleaseID
		if _, ok := rels[id]; !ok {
			rel, err := o.Store.FindRelease(ctx, app, id)
			if err != nil {
				return nil, err
			}
			m, err := o.manifestOf(rel)
			if err != nil {
				return nil, err
			}
			rels[id], ms[id] = rel, m
		}
		if svc := ms[id].Services[inst.Service]; svc != nil {
			out[inst.Service] = part{svc: svc, rel: rels[id]}
		}
	}
	return out, nil
}

// restoreGroups restarts the groups done (the failed one last in it) on
// the release each service ran before, in reverse order, and routes
// traffic to the restored instances.
func (o *Orchestrator) restoreGroups(ctx context.Context, r *run, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, route string, done []group, prev map[string]part, newM, oldM *gantry.Manifest, oldRelease, oldVersion string, cause error) error {
	wctx := context.WithoutCancel(ctx)
	detail := o.failureLogs(wctx, drv, slot)
	var orders []string
	for i := len(done) - 1; i >= 0; i-- {
		orders = append(orders, fmt.Sprint(done[i].order))
	}
	_ = r.step(wctx, "put-back", fmt.Sprintf("group %d failed: restarting groups [%s] on the previous release, in reverse order", done[len(done)-1].order, strings.Join(orders, ", ")), func() (string, error) { return "", nil })
	for i := len(done) - 1; i >= 0; i-- {
		g := done[i]
		back := group{order: g.order}
		for _, pt := range g.parts {
			if old, ok := prev[pt.svc.Name]; ok {
				back.parts = append(back.parts, old)
			}
		}
		_ = r.step(wctx, "restore-group", fmt.Sprintf("group %d: %s back on the previous release", g.order, g.names()), func() (string, error) {
			if err := o.stopInstances(wctx, env, drv, slot, newM, func(inst gantry.Instance) bool { return !g.has(inst.Service) }); err != nil {
				return "", err
			}
			if len(back.parts) == 0 {
				return "nothing ran before", nil
			}
			msg, err := o.startGroup(wctx, env, drv, slot, oldM, back, nil)
			return msg + "; back on " + back.parts[0].rel.Version, err
		})
	}
	slot.ReleaseID, slot.Version, slot.State = oldRelease, oldVersion, gantry.SlotActive
	_ = o.saveEnv(wctx, env)
	_ = r.step(wctx, "switch", route+" → the restored instances", func() (string, error) {
		return o.switchTo(wctx, env, drv, slot, oldM, false)
	})
	if detail != "" {
		return withDetail(cause, detail)
	}
	return cause
}
