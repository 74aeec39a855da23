package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// A paused rollout is durable: its record (state paused), its journal (the
// plan, and the pause step saying after which group it stopped), the
// environment's lock and its candidate's instances all outlive the request
// that started it, and a server restart (Recover leaves the candidate of a
// paused deployment running). Continue picks it up from the next group.

// pause records that the rollout stopped as asked.
func (r *run) pause(ctx context.Context) error {
	r.d.State = gantry.DeploymentPaused
	r.d.Error = ""
	if err := r.o.Store.UpdateDeployment(context.WithoutCancel(ctx), r.d); err != nil {
		return err
	}
	msg := ""
	if n := len(r.d.Steps); n > 0 {
		msg = r.d.Steps[n-1].Detail
	}
	r.emit("", gantry.DeploymentPaused, msg)
	return nil
}

// pausedDeployment returns the paused deployment of an environment, or nil.
func (o *Orchestrator) pausedDeployment(ctx context.Context, app, env string) (*gantry.Deployment, error) {
	ds, err := o.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: app, Env: env, State: gantry.DeploymentPaused, Limit: 1})
	if err != nil || len(ds) == 0 {
		return nil, err
	}
	return o.Store.FindDeployment(ctx, ds[0].ID)
}

// Continue resumes the paused rollout of an environment from the group
// after the one it paused after, as the same deployment. With abort it
// puts the candidate's groups back instead (in reverse order) and records
// the deployment as failed.
func (o *Orchestrator) Continue(ctx context.Context, app, envName, actor string, abort bool, progress gantry.Progress) (*gantry.Deployment, error) {
	d, err := o.pausedDeployment(ctx, app, envName)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "no deployment is paused on environment %q", envName)
	}
	if !o.claim(d.ID) {
		return nil, gantry.Errorf(gantry.ECONFLICT, "deployment #%d on %q is already being continued", d.ID, envName)
	}
	defer o.unclaim(d.ID)
	// The pause kept the lock; a manual unlock since then may have freed it.
	l, err := o.Store.FindLock(ctx, app, envName)
	switch {
	case gantry.ErrorCode(err) == gantry.ENOTFOUND:
		nl := &gantry.Lock{App: app, Env: envName, Holder: d.Actor, Operation: d.Kind + " " + d.Version, DeploymentID: d.ID, Since: o.now()}
		if err := o.Store.AcquireLock(ctx, nl); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case l.Holder != d.Actor || l.Operation != d.Kind+" "+d.Version:
		return nil, gantry.Errorf(gantry.ECONFLICT, "environment %q is locked by %s (%s), not by paused deployment #%d", envName, l.Holder, l.Operation, d.ID)
	}
	unlock := func() {
		if err := o.Store.ReleaseLock(context.WithoutCancel(ctx), app, envName, d.Actor, true); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			o.logger().Error("release lock", "app", app, "env", envName, "error", err)
		}
	}
	after, only, ok := pausePoint(d.Steps)
	if !ok {
		return nil, gantry.Errorf(gantry.EINTERNAL, "the journal of paused deployment #%d does not say where it paused", d.ID)
	}
	r := &run{o: o, d: d, progress: progress, start: time.Now()}
	d.State = gantry.DeploymentRunning
	if err := o.Store.UpdateDeployment(ctx, d); err != nil {
		return nil, err
	}
	defer unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer o.track(d.ID, cancel)()
	r.emit("", gantry.DeploymentRunning, fmt.Sprintf("continuing %s #%d of %s to %s after group %d", d.Kind, d.ID, d.Version, d.Env, after))
	ro, rel, err := o.resumeRollout(ctx, r, d, only)
	if err != nil {
		return d, r.finish(ctx, err)
	}
	o.notify(d, rel, ro.m)
	verb, detail := "continue", fmt.Sprintf("by %s, after group %d", actor, after)
	if abort {
		verb = "abort"
	}
	err = r.step(ctx, verb, detail, func() (string, error) {
		if abort {
			return "", gantry.Errorf(gantry.EFAILED, "rollout aborted by %s after group %d", actor, after)
		}
		// The groups already started must still be up: a restart of the
		// host may have taken them away.
		started := startedGroups(ro.p, ro.cand)
		for _, g := range ro.p.groups {
			if g.order <= after && !containsGroup(started, g.order) && hasInstances(g) {
				return "", gantry.Errorf(gantry.EUNAVAILABLE, "the instances of %s on slot %s are gone", g.label(), ro.cand.Name)
			}
		}
		for _, g := range started {
			for _, inst := range ro.cand.Instances {
				if svc := serviceOf(g, inst.Service); svc != nil {
					if err := o.waitReady(ctx, ro.drv, inst, svc); err != nil {
						return "", err
					}
				}
			}
		}
		return fmt.Sprintf("by %s; groups up to %d still healthy", actor, after), nil
	})
	if err == nil {
		err = o.rollGroups(ctx, ro, &after)
	}
	if err != nil {
		err = o.failRollout(ctx, ro, err)
	} else {
		err = o.switchOver(ctx, ro)
	}
	if err == nil {
		err = o.runHooks(ctx, r, ro.m, rel, ro.env, "after_"+phaseOf(d.Kind), firstHost(ro.env.Spec.Hosts))
	}
	err = r.finish(ctx, err)
	o.notify(d, rel, ro.m)
	return d, err
}

// resumeRollout rebuilds a paused rollout from the records.
func (o *Orchestrator) resumeRollout(ctx context.Context, r *run, d *gantry.Deployment, only string) (*bgRollout, *gantry.Release, error) {
	rel, err := o.Store.FindRelease(ctx, d.App, d.ReleaseID)
	if err != nil {
		return nil, nil, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, nil, err
	}
	env, err := o.Store.FindEnvironment(ctx, d.App, d.Env)
	if err != nil {
		return nil, nil, err
	}
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return nil, nil, err
	}
	cand := pausedSlot(env, d)
	if cand == nil {
		return nil, nil, gantry.Errorf(gantry.ECONFLICT, "the candidate slot of paused deployment #%d is gone; deploy again", d.ID)
	}
	d.Slot = cand.Name
	p, err := o.makePlan(ctx, rel, m, env.ActiveSlot(), only)
	if err != nil {
		return nil, nil, err
	}
	spec := env.Spec
	return &bgRollout{r: r, env: env, drv: drv, rel: rel, m: m, spec: &spec, p: p, cand: cand}, rel, nil
}

// pausePoint reads from a journal the group a rollout paused after and
// the service it was limited to.
func pausePoint(steps []gantry.Step) (after int, only string, ok bool) {
	for _, s := range steps {
		switch s.Name {
		case "plan":
			only = parseOnly(s.Detail)
		case "pause-after":
			if s.State != gantry.StepDone {
				continue
			}
			if _, err := fmt.Sscanf(strings.TrimPrefix(s.Detail, "after group "), "%d", &after); err == nil {
				ok = true
			}
		}
	}
	return after, only, ok
}

// claim marks a paused deployment as being continued in this process, so
// that two continue requests do not both run it.
func (o *Orchestrator) claim(id int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, busy := o.running[id]; busy {
		return false
	}
	if o.running == nil {
		o.running = map[int64]context.CancelFunc{}
	}
	o.running[id] = func() {}
	return true
}

func (o *Orchestrator) unclaim(id int64) {
	o.mu.Lock()
	delete(o.running, id)
	o.mu.Unlock()
}

// pausedSlot finds the candidate of a paused deployment: the slot that
// starts its release (the store keeps no slot in the deployment record).
func pausedSlot(env *gantry.Environment, d *gantry.Deployment) *gantry.Slot {
	for _, s := range env.Slots {
		if s.State == gantry.SlotStarting && s.ReleaseID == d.ReleaseID && (d.Slot == "" || d.Slot == s.Name) {
			return s
		}
	}
	return nil
}

func containsGroup(gs []group, order int) bool {
	for _, g := range gs {
		if g.order == order {
			return true
		}
	}
	return false
}

func hasInstances(g group) bool {
	for _, p := range g.parts {
		if p.svc.Instances > 0 {
			return true
		}
	}
	return false
}
