package deploy

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry"
)

// Rollback flips traffic back to the warm standby slot when it still runs
// the wanted release, and otherwise redeploys that release cold (reported
// as such in the deployment's journal). Either way the release to go back
// to passes every gate, the database's schema included.
func (o *Orchestrator) Rollback(ctx context.Context, req gantry.RollbackRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	env, err := o.Store.FindEnvironment(ctx, req.App, req.Env)
	if err != nil {
		return nil, err
	}
	active := env.ActiveSlot()
	if active == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "environment %q has nothing deployed to roll back", req.Env)
	}
	standby := env.Slots[gantry.OtherSlot(active.Name)]
	warm := standby != nil && standby.State == gantry.SlotStandby && len(standby.Instances) > 0
	target := ""
	if req.To != "" {
		rel, err := o.Store.FindRelease(ctx, req.App, req.To)
		if err != nil {
			return nil, err
		}
		target = rel.ID
	} else if warm && standby.ReleaseID != active.ReleaseID {
		target = standby.ReleaseID
	} else {
		target, err = o.previousRelease(ctx, env)
		if err != nil {
			return nil, err
		}
	}
	if target == active.ReleaseID {
		return nil, gantry.Errorf(gantry.EINVALID, "release %s is already active on %s", active.Version, req.Env)
	}
	op, err := o.planDeployOn(ctx, gantry.DeployRequest{App: req.App, Env: req.Env, Release: target, Actor: req.Actor,
		BreakGlass: req.BreakGlass, Wait: req.Wait}, gantry.KindRollback, env)
	if err != nil {
		return nil, err
	}
	op.force = req.Force
	op.flip = warm && standby.ReleaseID == target
	return o.execute(ctx, op, progress)
}

// flipBack is the instant rollback: traffic switches to the standby slot's
// instances, which are still running and were healthy.
func (o *Orchestrator) flipBack(ctx context.Context, r *run, op *op) error {
	env := op.current
	d := r.d
	standby := env.Slots[gantry.OtherSlot(env.Active)]
	if env.ActiveSlot() == nil || standby == nil || standby.State != gantry.SlotStandby || standby.ReleaseID != op.rel.ID || len(standby.Instances) == 0 {
		return gantry.Errorf(gantry.ECONFLICT, "environment %q changed while the rollback waited: no warm slot runs %s any more; run it again", op.env, op.rel.Version)
	}
	d.FromRelease, d.Slot = env.ActiveSlot().ReleaseID, standby.Name
	m := op.m
	slot := standby
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return err
	}
	_, slotDriven := drv.(gantry.SlotDriver)
	if slotDriven {
		// The runtime keeps a standby slot whole (workers included).
	} else if err := o.startMissingWorkers(ctx, r, env, drv, slot, op.rel, m); err != nil {
		// Traffic did not move: the workers started for nothing go again.
		_ = o.stopOldWorkers(context.WithoutCancel(ctx), r, env, drv, slot, m)
		return err
	}
	left := env.ActiveSlot()
	err = r.step(ctx, "switch", fmt.Sprintf("%s → warm slot %s (%s)", gantry.RouteName(env.App, env.Name), slot.Name, slot.Version), func() (string, error) {
		return o.switchTo(ctx, env, drv, slot, m, true)
	})
	if err != nil {
		return err
	}
	o.promoteSlot(env, slot.Name, env.Spec.KeepWarm)
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	if left != nil && !slotDriven {
		if err := o.stopOldWorkers(ctx, r, env, drv, left, o.manifestOfRelease(ctx, env.App, left.ReleaseID)); err != nil {
			return err
		}
	}
	// The release left behind may have expanded a migration the restored
	// one does not know: undo it, now that no instance uses its schema.
	// Its slot then cannot serve again, so it does not stay warm.
	undone, err := o.rollbackLeftMigration(ctx, r, env, m, d.FromRelease)
	if err != nil || !undone || left == nil {
		return err
	}
	return r.step(ctx, "stop-previous", fmt.Sprintf("slot %s (%s): its migration was rolled back, so it cannot serve again", left.Name, left.Version), func() (string, error) {
		return "", o.scaleDownSlot(ctx, env, drv, left, nil)
	})
}

func (o *Orchestrator) rollbackLeftMigration(ctx context.Context, r *run, env *gantry.Environment, m *gantry.Manifest, left string) (bool, error) {
	b, err := o.migBinding(env, m)
	if err != nil || b == nil {
		return false, err
	}
	st, err := o.Databases.Status(ctx, *b)
	if err != nil {
		return false, err
	}
	if st.Active == "" || st.ActiveRelease != left {
		return false, nil
	}
	return true, o.rollbackDatabase(ctx, r, b)
}

// previousRelease finds the release that was active before the current one,
// from the environment's history of successful deployments.
func (o *Orchestrator) previousRelease(ctx context.Context, env *gantry.Environment) (string, error) {
	current := env.ActiveSlot().ReleaseID
	ds, err := o.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: env.App, Env: env.Name, State: gantry.DeploymentSucceeded, Limit: 100})
	if err != nil {
		return "", err
	}
	for _, d := range ds {
		if d.ReleaseID != current {
			return d.ReleaseID, nil
		}
	}
	return "", gantry.Errorf(gantry.EINVALID, "environment %q has no previous release to roll back to", env.Name)
}
