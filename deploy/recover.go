package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gantry-dev/gantry"
)

// Recover brings every environment to a consistent state after a start:
// it re-attaches to running instances, makes the router serve the slot
// that has live instances, stops candidates that never took traffic, and
// closes the deployments that a crash interrupted, saying what happened.
func (o *Orchestrator) Recover(ctx context.Context) error {
	apps, err := o.Store.ListApps(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, app := range apps {
		envs, err := o.Store.ListEnvironments(ctx, app.Name)
		if err != nil {
			return err
		}
		interrupted, err := o.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: app.Name, State: gantry.DeploymentRunning, Limit: 1000})
		if err != nil {
			return err
		}
		// A server that takes the lease again may still run a deployment
		// it started before: that one is not interrupted, and its
		// environment is not recovered from under it.
		busy := map[string]bool{}
		interrupted = slices.DeleteFunc(interrupted, func(d *gantry.Deployment) bool {
			busy[d.Env] = busy[d.Env] || o.runningHere(d.ID)
			return o.runningHere(d.ID)
		})
		seen := map[string]bool{}
		for _, env := range envs {
			seen[env.Name] = true
			if busy[env.Name] {
				continue
			}
			held := heldState{app: o.interruptedAppMigration(ctx, interrupted, env.Name)}
			for _, d := range interrupted {
				held.writes = held.writes || (d.Env == env.Name && d.Strategy == gantry.StrategyMaintenance)
			}
			var outcome string
			if interruptedClone(interrupted, env) {
				outcome, err = o.removeInterruptedClone(ctx, env)
			} else {
				outcome, err = o.reconcile(ctx, env, held)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("recover %s/%s: %w", env.App, env.Name, err))
				outcome = "recovery failed: " + err.Error()
			}
			for _, d := range interrupted {
				if d.Env != env.Name {
					continue
				}
				d.State = gantry.DeploymentRecovered
				d.Error = o.interruptedBy() + "; " + outcome
				d.FinishedAt = o.now()
				uerr := o.Store.UpdateDeployment(ctx, d)
				lerr := o.Store.ReleaseLock(ctx, d.App, d.Env, d.Actor, true)
				if gantry.ErrorCode(lerr) == gantry.ENOTFOUND {
					lerr = nil
				}
				errs = append(errs, uerr, lerr)
				if gantry.IsDiskFull(err) || gantry.IsDiskFull(uerr) || gantry.IsDiskFull(lerr) {
					// Started on a full disk: Settle closes it once the
					// store writes again, without waiting for a restart.
					o.owe(d, true)
				}
				o.logger().Warn("recovered interrupted deployment", "deployment", d.ID, "app", d.App, "env", d.Env, "outcome", outcome)
			}
		}
		// A first deploy interrupted before its environment was recorded
		// started nothing: close it and free its lock.
		for _, d := range interrupted {
			if seen[d.Env] {
				continue
			}
			d.State, d.Error, d.FinishedAt = gantry.DeploymentRecovered, o.interruptedBy()+" before anything was started", o.now()
			if err := o.Store.UpdateDeployment(ctx, d); err != nil {
				errs = append(errs, err)
			}
			if err := o.Store.ReleaseLock(ctx, d.App, d.Env, d.Actor, true); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
				errs = append(errs, err)
			}
		}
		if err := o.releaseOrphanLocks(ctx, app.Name, envs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// interruptedClone says a clone of env was interrupted before env served.
func interruptedClone(interrupted []*gantry.Deployment, env *gantry.Environment) bool {
	if env.ActiveSlot() != nil {
		return false
	}
	for _, d := range interrupted {
		if d.Env == env.Name && d.Kind == gantry.KindClone {
			return true
		}
	}
	return false
}

// reconcile makes one environment consistent and describes the result.
//
// heldWrites says a maintenance deploy was interrupted: it held every write
// at the router from before its migrations were applied, so when the
// release that still serves does not fit the schema they left, the
// snapshot taken before them is restored, which loses no write.
//
// held.app is an interrupted deploy of an app that migrates itself, which
// held every request and took a snapshot before the app migrated: when
// its release does not serve, the snapshot is restored before the route
// lets requests go to the old release.
func (o *Orchestrator) reconcile(ctx context.Context, env *gantry.Environment, held heldState) (string, error) {
	heldWrites := held.writes
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return "", err
	}
	if sd, ok := drv.(gantry.SlotDriver); ok {
		return o.reconcileSlots(ctx, sd, drv, env)
	}
	manifests := map[string]*gantry.Manifest{}
	for _, s := range env.Slots {
		live := s.Instances[:0]
		for _, inst := range s.Instances {
			if err := drv.Attach(ctx, inst); err == nil {
				live = append(live, inst)
			} else if gantry.ErrorCode(err) != gantry.ENOTFOUND {
				return "", fmt.Errorf("attach %s-%d: %w", inst.Service, inst.Index, err)
			}
		}
		s.Instances = live
		if m := o.manifestOfRelease(ctx, env.App, s.ReleaseID); m != nil {
			manifests[s.Name] = m
		}
	}
	note, err := o.adoptFound(ctx, env, drv)
	if err != nil {
		return "", err
	}
	// Which slot does the router send traffic to?
	routed := ""
	if sts, err := o.envRouteStatus(ctx, env.App, env.Name); err == nil {
		var active []string // what the routes of every service serve
		for _, st := range sts {
			active = append(active, addrs(st.Active)...)
		}
		for _, s := range env.Slots {
			if m := manifests[s.Name]; m != nil && len(active) > 0 && sameSet(active, webTargets(s, m)) {
				routed = s.Name
			}
		}
	}
	serving := routed
	if serving == "" && env.Active != "" && len(env.Slots[env.Active].Instances) > 0 {
		serving = env.Active
	}
	if serving == "" {
		for _, s := range env.Slots {
			if (s.State == gantry.SlotStandby || s.State == gantry.SlotActive) && len(s.Instances) > 0 {
				serving = s.Name
			}
		}
	}
	if serving == "" {
		if env.Active == "" {
			return "nothing was deployed yet", o.saveEnv(ctx, env)
		}
		// A restart in place interrupted between stopping the old
		// instances and starting the new: start the active slot's release
		// again, so that the environment serves.
		if err := o.startActiveAgain(ctx, env, drv, manifests[env.Active]); err != nil {
			return "", gantry.Errorf(gantry.EUNAVAILABLE, "no instance of environment %s is running, and starting %s again failed: %s; redeploy a release",
				env.Name, env.Slots[env.Active].Version, gantry.ErrorMessage(err))
		}
		serving = env.Active
	}
	// The slot that served may need a schema the database no longer has
	// (a maintenance deploy applied its migrations, then the server died
	// before the switch): then the slot whose release fits it serves, if
	// it is up and healthy.
	if fit := o.slotFittingSchema(ctx, env, serving, manifests); fit != "" {
		serving = fit
	} else if heldWrites && !o.fitsSchema(ctx, env, serving, manifests) {
		if err := o.restoreBeforeMaintenance(ctx, env, manifests[serving]); err != nil {
			return "", err
		}
	}
	slot := env.Slots[serving]
	m := manifests[serving]
	if m == nil {
		return "", gantry.Errorf(gantry.EINTERNAL, "release %s of slot %s cannot be read", slot.ReleaseID, serving)
	}
	if routed != serving {
		if _, err := o.switchTo(ctx, env, drv, slot, m, false); err != nil {
			return "", fmt.Errorf("route traffic to slot %s: %w", serving, err)
		}
	}
	if env.Active != serving {
		o.promoteSlot(env, serving, env.Spec.KeepWarm)
	}
	slot.State = gantry.SlotActive
	// A candidate that never took traffic is set aside, unless its rollout
	// is paused: it waits for `gantry continue` with its preview.
	other := env.Slots[gantry.OtherSlot(serving)]
	paused, err := o.pausedDeployment(ctx, env.App, env.Name)
	if err != nil {
		return "", err
	}
	if paused != nil && other != nil && pausedSlot(env, paused) == other {
		if err := o.saveEnv(ctx, env); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s serving from slot %s; deployment #%d stays paused on slot %s%s", slot.Version, serving, paused.ID, other.Name, note), o.keepPreview(ctx, env, other)
	}
	// A canary that the crash interrupted: every request goes back to the
	// slot that serves before the candidate stops.
	ended, err := o.clearCanaries(ctx, env)
	if err != nil {
		return "", err
	}
	note += ended
	if other != nil && other.State == gantry.SlotStarting {
		if err := o.stopSlot(ctx, env, drv, other, manifests[other.Name]); err != nil {
			return "", err
		}
	}
	if other != nil && other.State == gantry.SlotStandby && len(other.Instances) == 0 {
		other.State = gantry.SlotStopped
	}
	o.clearPreview(ctx, env.App, env.Name)
	if held.app != nil && slot.ReleaseID != held.app.release {
		if err := o.restoreInterruptedAppMigration(ctx, env, m, held.app); err != nil {
			return "", err
		}
		note += "; database restored from snapshot " + held.app.snap
	}
	o.resumeHeldRoutes(ctx, env)
	return fmt.Sprintf("%s serving from slot %s%s", slot.Version, serving, note), o.saveEnv(ctx, env)
}

// startActiveAgain starts the release of env's active slot, which has no
// live instance, and waits until it is healthy.
func (o *Orchestrator) startActiveAgain(ctx context.Context, env *gantry.Environment, drv gantry.Driver, m *gantry.Manifest) error {
	slot := env.Slots[env.Active]
	if slot == nil || m == nil {
		return gantry.Errorf(gantry.ENOTFOUND, "the active slot's release cannot be read")
	}
	rel, err := o.Store.FindRelease(ctx, env.App, slot.ReleaseID)
	if err != nil {
		return err
	}
	db, err := o.resumeDatabase(ctx, env, rel, m)
	if err != nil {
		return err
	}
	o.logger().Warn("no instance of the active slot runs: starting it again", "app", env.App, "env", env.Name, "slot", slot.Name, "release", rel.ID)
	if _, err := o.startSlot(ctx, env, drv, slot, rel, m, m.ServicesInOrder(), db.connVars()); err != nil {
		return err
	}
	if _, err := o.waitHealthy(ctx, drv, slot, m); err != nil {
		return err
	}
	slot.State = gantry.SlotActive
	return o.saveEnv(ctx, env)
}

// resumeHeldRoutes lets the routes of env go that an interrupted restart
// or maintenance deploy left holding requests: nothing runs that would
// release them.
func (o *Orchestrator) resumeHeldRoutes(ctx context.Context, env *gantry.Environment) {
	sts, err := o.envRouteStatus(ctx, env.App, env.Name)
	if err != nil {
		return
	}
	for _, st := range sts {
		if !st.Paused {
			continue
		}
		if err := o.Router.Resume(ctx, st.Route.Name); err != nil {
			o.logger().Error("resume a route held by an interrupted deployment", "route", st.Route.Name, "error", err)
		}
	}
}

// fitsSchema says whether the release of env's slot name can run on the
// database as it is (true when there is nothing to judge by).
func (o *Orchestrator) fitsSchema(ctx context.Context, env *gantry.Environment, name string, manifests map[string]*gantry.Manifest) bool {
	s, m := env.Slots[name], manifests[name]
	if s == nil || m == nil {
		return false
	}
	b, err := o.migBinding(env, m)
	if err != nil || b == nil {
		return true
	}
	rel, err := o.Store.FindRelease(ctx, env.App, s.ReleaseID)
	if err != nil {
		return true
	}
	plan, err := o.planFor(ctx, env, b, rel, m, false)
	return err != nil || plan.Action != gantry.PlanRefuse
}

// restoreBeforeMaintenance puts the database back to the snapshot taken
// before an interrupted maintenance deploy applied its migrations.
func (o *Orchestrator) restoreBeforeMaintenance(ctx context.Context, env *gantry.Environment, m *gantry.Manifest) error {
	b, err := o.migBinding(env, m)
	if err != nil || b == nil {
		return err
	}
	rec, err := o.Databases.Rollback(ctx, *b, gantry.RollbackOptions{Force: true})
	if err != nil {
		return fmt.Errorf("restore the database from before the interrupted maintenance deploy: %w", err)
	}
	o.logger().Warn("interrupted maintenance deploy: database restored from before its migrations", "app", env.App, "env", env.Name, "migration", rec.Migration, "snapshot", rec.Snapshot)
	return nil
}

// slotFittingSchema returns the other slot of env when the serving slot's
// release does not fit the database's schema and the other's, which has
// live instances, does; "" otherwise.
func (o *Orchestrator) slotFittingSchema(ctx context.Context, env *gantry.Environment, serving string, manifests map[string]*gantry.Manifest) string {
	other := gantry.OtherSlot(serving)
	if s := env.Slots[other]; s == nil || len(s.Instances) == 0 || o.fitsSchema(ctx, env, serving, manifests) || !o.fitsSchema(ctx, env, other, manifests) {
		return ""
	}
	o.logger().Warn("the serving release does not fit the database's schema: the other slot takes over", "app", env.App, "env", env.Name, "slot", other)
	return other
}

func addrs(ts []gantry.TargetStatus) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Addr
	}
	return out
}

// ReapStandby stops warm standby slots whose keep_warm window has closed.
// An environment that is locked is left for the next round.
func (o *Orchestrator) ReapStandby(ctx context.Context) error {
	apps, err := o.Store.ListApps(ctx)
	if err != nil {
		return err
	}
	now := o.now()
	for _, app := range apps {
		envs, err := o.Store.ListEnvironments(ctx, app.Name)
		if err != nil {
			return err
		}
		for _, env := range envs {
			for _, s := range env.Slots {
				if s.State != gantry.SlotStandby || s.WarmUntil.After(now) || len(s.Instances) == 0 {
					continue
				}
				if err := o.reapSlot(ctx, env.App, env.Name, s.Name); err != nil && gantry.ErrorCode(err) != gantry.ECONFLICT {
					o.logger().Error("stop warm standby", "app", env.App, "env", env.Name, "slot", s.Name, "error", err)
				}
			}
		}
	}
	return nil
}

const systemActor = "gantry"

func (o *Orchestrator) reapSlot(ctx context.Context, app, envName, slotName string) error {
	lock := &gantry.Lock{App: app, Env: envName, Holder: systemActor, Operation: "stop warm standby", Since: o.now()}
	if err := o.Store.AcquireLock(ctx, lock); err != nil {
		return err
	}
	defer o.Store.ReleaseLock(context.WithoutCancel(ctx), app, envName, systemActor, false)
	env, err := o.Store.FindEnvironment(ctx, app, envName)
	if err != nil {
		return err
	}
	s := env.Slots[slotName]
	if s == nil || s.State != gantry.SlotStandby || s.WarmUntil.After(o.now()) {
		return nil
	}
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return err
	}
	o.logger().Info("keep_warm over: stopping standby", "app", app, "env", envName, "slot", slotName, "release", s.ReleaseID)
	if err := o.scaleDownSlot(ctx, env, drv, s, nil); err != nil {
		return err
	}
	// With the old slot gone, nothing needs the old schema any more.
	if a := env.ActiveSlot(); a != nil && o.Databases != nil {
		if am := o.manifestOfRelease(ctx, app, a.ReleaseID); am != nil {
			if _, err := o.contractIfDue(ctx, env, am); err != nil {
				o.logger().Error("contract after keep_warm", "app", app, "env", envName, "error", err)
			}
		}
	}
	return nil
}

// Watch runs Settle and ReapStandby every interval until ctx ends.
func (o *Orchestrator) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.Settle(ctx)
			if err := o.ReapStandby(ctx); err != nil && ctx.Err() == nil {
				o.logger().Error("reap standby slots", "error", err)
			}
		}
	}
}

// Wait blocks until no deployment runs in this process, or ctx ends.
func (o *Orchestrator) Wait(ctx context.Context) {
	for {
		o.mu.Lock()
		n := len(o.running)
		o.mu.Unlock()
		if n == 0 || ctx.Err() != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StopAll stops every instance of every environment, for a demo that
// cleans up after itself. A server that stops leaves instances running.
func (o *Orchestrator) StopAll(ctx context.Context) error {
	apps, err := o.Store.ListApps(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, app := range apps {
		envs, err := o.Store.ListEnvironments(ctx, app.Name)
		if err != nil {
			return err
		}
		for _, env := range envs {
			drv, err := o.driver(&env.Spec)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, s := range env.Slots {
				if len(s.Instances) == 0 {
					continue
				}
				if err := o.stopSlot(ctx, env, drv, s, o.manifestOfRelease(ctx, app.Name, s.ReleaseID)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// keepPreview points the preview host at a paused candidate's web
// instances, as the pause left it.
func (o *Orchestrator) keepPreview(ctx context.Context, env *gantry.Environment, slot *gantry.Slot) error {
	rel, err := o.Store.FindRelease(ctx, env.App, slot.ReleaseID)
	if err != nil {
		return err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return err
	}
	return o.setPreview(ctx, env, slot, m)
}
