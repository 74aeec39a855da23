package deploy

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry"
)

// restartInPlace patches the active slot: pause the route, stop the old
// instances, start the new, wait for health, switch, resume. Requests that
// arrive meanwhile are held by the router, so a restart shorter than the
// pause bound fails none of them.
func (o *Orchestrator) restartInPlace(ctx context.Context, r *run, env *gantry.Environment, drv gantry.Driver, rel *gantry.Release, m *gantry.Manifest) error {
	slot := env.ActiveSlot()
	r.d.Slot = slot.Name
	route := o.route(env, m)
	oldM := m
	if prev, err := o.Store.FindRelease(ctx, env.App, slot.ReleaseID); err == nil {
		if pm, err := o.manifestOf(prev); err == nil {
			oldM = pm
		}
	}
	if err := r.step(ctx, "pause", route.Name, func() (string, error) { return "", o.Router.Pause(ctx, route.Name, false) }); err != nil {
		return err
	}
	// The route is resumed whatever happens below.
	defer func() {
		_ = r.step(context.WithoutCancel(ctx), "resume", route.Name, func() (string, error) {
			return "", o.Router.Resume(context.WithoutCancel(ctx), route.Name)
		})
	}()
	if err := r.step(ctx, "stop-old", fmt.Sprintf("slot %s (%s)", slot.Name, slot.Version), func() (string, error) {
		return "", o.stopSlot(ctx, env, drv, slot, oldM)
	}); err != nil {
		return err
	}
	db, err := o.expandDatabase(ctx, r, env, rel, m, false)
	if err != nil {
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
	if err := r.step(ctx, "switch", route.Name, func() (string, error) {
		targets := webTargets(slot, m)
		if len(targets) == 0 {
			return "no http service", nil
		}
		_, err := o.Router.Deploy(ctx, route, targets)
		return "", err
	}); err != nil {
		return err
	}
	slot.State = gantry.SlotActive
	return o.saveEnv(ctx, env)
}
