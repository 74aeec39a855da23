package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// cancelWait bounds how long Cancel waits for a cancelled deployment to put
// its candidate back (stopping instances may take their stop timeout).
const cancelWait = 2 * time.Minute

// cancelPoll is how often Cancel looks whether the deployment has ended.
const cancelPoll = 50 * time.Millisecond

// Cancel stops the deployment that holds app's environment env and returns
// its record once it has ended. It is the way to free an environment held
// by a running deployment: its lock is never removed from under it
// (invariant 12), because a second deployment would then run beside it.
//
// A running deployment's context is cancelled: before its switch it puts
// its candidate back and the previous release keeps serving; after its
// switch the new release stays. Cancel waits (at most cancelWait) until
// its record is no longer running and its lock is released, so that the
// next deploy finds the environment free. A paused deployment is aborted
// as `gantry continue ENV --abort` would. actor is recorded in the
// cancelled deployment's error.
func (o *Orchestrator) Cancel(ctx context.Context, app, env, actor string) (*gantry.Deployment, error) {
	d, err := o.holder(ctx, app, env)
	if err != nil {
		return nil, err
	}
	if d.State == gantry.DeploymentPaused {
		// The abort's own outcome ("rollout aborted") is what was asked
		// for; only a refusal, which leaves no ended record, is an error.
		aborted, err := o.Continue(ctx, gantry.ContinueRequest{App: app, Env: d.Env, Actor: actor, Abort: true}, nil)
		if aborted == nil || aborted.State == gantry.DeploymentRunning || aborted.State == gantry.DeploymentPaused {
			return aborted, err
		}
		return aborted, nil
	}
	cancel, err := o.runningCancel(ctx, d)
	if err != nil {
		return nil, err
	}
	o.logger().Warn("cancelling deployment", "deployment", d.ID, "app", app, "env", env, "actor", actor)
	cancel()
	if err := o.awaitEnd(ctx, d); err != nil {
		return nil, err
	}
	done, err := o.Store.FindDeployment(context.WithoutCancel(ctx), d.ID)
	if err != nil {
		return nil, err
	}
	if done.State == gantry.DeploymentFailed {
		// The engine records the context's end ("context canceled"); say
		// who ended it.
		done.Error = fmt.Sprintf("cancelled by %s: %s", actor, done.Error)
		if err := o.Store.UpdateDeployment(context.WithoutCancel(ctx), done); err != nil {
			o.logger().Error("record cancellation", "deployment", d.ID, "error", err)
		}
	}
	return done, nil
}

// holder returns the running or paused deployment that holds env: the one
// its lock names (which covers the other names a rename locks), else the
// newest running or paused one of env. ENOTFOUND when none does.
func (o *Orchestrator) holder(ctx context.Context, app, env string) (*gantry.Deployment, error) {
	live := func(d *gantry.Deployment) bool {
		return d.State == gantry.DeploymentRunning || d.State == gantry.DeploymentPaused
	}
	if l, err := o.Store.FindLock(ctx, app, env); err == nil && l.DeploymentID != 0 {
		if d, err := o.Store.FindDeployment(ctx, l.DeploymentID); err == nil && live(d) {
			return d, nil
		}
	}
	for _, state := range []string{gantry.DeploymentRunning, gantry.DeploymentPaused} {
		ds, err := o.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: app, Env: env, State: state, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(ds) > 0 {
			return ds[0], nil
		}
	}
	return nil, gantry.Errorf(gantry.ENOTFOUND, "no deployment of app %q runs on environment %q: nothing to cancel", app, env)
}

// runningCancel returns the cancel func of d, a deployment recorded as
// running. It waits a moment for one that has just started and is not yet
// tracked.
func (o *Orchestrator) runningCancel(ctx context.Context, d *gantry.Deployment) (context.CancelFunc, error) {
	deadline := time.Now().Add(time.Second)
	for {
		o.mu.Lock()
		cancel, ok := o.running[d.ID]
		o.mu.Unlock()
		if ok {
			return cancel, nil
		}
		if time.Now().After(deadline) {
			return nil, gantry.Errorf(gantry.ECONFLICT, "%s #%d of %s on %q is recorded as running but this server does not run it (a restart recovers it); once it is no longer running, `gantry unlock %s --force` frees the environment", d.Kind, d.ID, d.Version, d.Env, d.Env)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(cancelPoll):
		}
	}
}

// awaitEnd waits until d is no longer tracked, its record no longer says
// running and its lock no longer names it: the deployment is over and the
// environment free for the next one.
func (o *Orchestrator) awaitEnd(ctx context.Context, d *gantry.Deployment) error {
	deadline := time.Now().Add(cancelWait)
	for {
		if o.ended(ctx, d) {
			return nil
		}
		if time.Now().After(deadline) {
			return gantry.Errorf(gantry.EUNAVAILABLE, "%s #%d on %q was cancelled but has not ended after %s; `gantry history %s` shows where it is", d.Kind, d.ID, d.Env, cancelWait, d.Env)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cancelPoll):
		}
	}
}

func (o *Orchestrator) ended(ctx context.Context, d *gantry.Deployment) bool {
	o.mu.Lock()
	_, tracked := o.running[d.ID]
	o.mu.Unlock()
	if tracked {
		return false
	}
	cur, err := o.Store.FindDeployment(ctx, d.ID)
	if err != nil || cur.State == gantry.DeploymentRunning {
		return false
	}
	l, err := o.Store.FindLock(ctx, d.App, d.Env)
	return gantry.ErrorCode(err) == gantry.ENOTFOUND || (err == nil && l.DeploymentID != d.ID)
}

// nameOtherLocks names d in the further locks op holds (a rename's old
// name and the name it displaces to), so that unlock refuses those too
// while d runs, and cancel finds d from any of them.
func (o *Orchestrator) nameOtherLocks(ctx context.Context, op *op, d *gantry.Deployment) {
	for _, name := range op.alsoLock {
		if err := o.Store.SetLockDeployment(ctx, op.app, name, d.Actor, d.ID); err != nil {
			o.logger().Warn("name deployment in lock", "app", op.app, "env", name, "deployment", d.ID, "error", err)
		}
	}
}
