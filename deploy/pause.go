package deploy

import (
	"context"
	"fmt"

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
// after the one it paused after, as the same deployment, through the same
// gates as any operation (the database or the source may have changed
// while it was paused). With abort it puts the candidate's groups back
// instead (in reverse order) and records the deployment as failed; an
// abort changes nothing that serves, so no gate stands in its way.
func (o *Orchestrator) Continue(ctx context.Context, req gantry.ContinueRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	app, envName, actor, abort := req.App, req.Env, req.Actor, req.Abort
	d, err := o.pausedDeployment(ctx, app, envName)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "no deployment is paused on environment %q", envName)
	}
	if d.GroupDone == nil {
		return nil, gantry.Errorf(gantry.EINTERNAL, "paused deployment #%d does not record the group it reached", d.ID)
	}
	if !o.claim(d.ID) {
		return nil, gantry.Errorf(gantry.ECONFLICT, "deployment #%d on %q is already being continued", d.ID, envName)
	}
	defer o.unclaim(d.ID)
	rel, err := o.Store.FindRelease(ctx, app, d.ReleaseID)
	if err != nil {
		return nil, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, err
	}
	env, err := o.Store.FindEnvironment(ctx, app, envName)
	if err != nil {
		return nil, err
	}
	spec := env.Spec
	op := &op{kind: gantry.KindContinue, app: app, env: envName, actor: d.Actor, rel: rel, m: m, spec: &spec, current: env,
		fromEnv: d.FromEnv, strategy: d.Strategy, pauseAfter: d.PauseAfter, only: d.Only, resume: d, abort: abort, continuedBy: actor, breakGlass: req.BreakGlass}
	if d.FromEnv != "" {
		if op.source, err = o.Store.FindEnvironment(ctx, app, d.FromEnv); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			return nil, err
		}
	}
	return o.execute(ctx, op, progress)
}

// reclaimLock finds the lock a paused deployment kept, or takes it again
// when a manual unlock freed it since.
func (o *Orchestrator) reclaimLock(ctx context.Context, d *gantry.Deployment) error {
	l, err := o.Store.FindLock(ctx, d.App, d.Env)
	switch {
	case gantry.ErrorCode(err) == gantry.ENOTFOUND:
		nl := &gantry.Lock{App: d.App, Env: d.Env, Holder: d.Actor, Operation: d.Kind + " " + d.Version, DeploymentID: d.ID, Since: o.now()}
		return o.Store.AcquireLock(ctx, nl)
	case err != nil:
		return err
	case l.Holder != d.Actor || (l.DeploymentID != 0 && l.DeploymentID != d.ID):
		return gantry.Errorf(gantry.ECONFLICT, "environment %q is locked by %s (%s), not by paused deployment #%d", d.Env, l.Holder, l.Operation, d.ID)
	}
	return nil
}

// performContinue goes on with a paused rollout from its typed resume
// state: the groups up to GroupDone must still be up, the rest start, then
// verify, switch and the after hooks, as in any rollout.
func (o *Orchestrator) performContinue(ctx context.Context, r *run, op *op) error {
	d := op.resume
	after := *d.GroupDone
	ro, err := o.resumeRollout(ctx, r, op)
	if err != nil {
		return err
	}
	o.notify(d, op.rel, op.m, o.envAsConfigured(op))
	verb, detail := "continue", fmt.Sprintf("by %s, after group %d", op.continuedBy, after)
	if op.abort {
		verb = "abort"
	}
	err = r.step(ctx, verb, detail, func() (string, error) {
		if op.abort {
			return "", gantry.Errorf(gantry.EFAILED, "rollout aborted by %s after group %d", op.continuedBy, after)
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
		return fmt.Sprintf("by %s; groups up to %d still healthy", op.continuedBy, after), nil
	})
	if err == nil {
		err = o.rollGroups(ctx, ro, &after)
	}
	if err != nil {
		return o.failRollout(ctx, ro, err)
	}
	if err := o.switchOver(ctx, ro); err != nil {
		return err
	}
	return o.runHooks(ctx, r, ro.m, op.rel, ro.env, "after_"+phaseOf(d.Kind), gantry.FirstHost(ro.env.Spec.Hosts))
}

// resumeRollout rebuilds a paused rollout from the records: the candidate
// slot, the plan (with the service it is limited to), and the database
// change its first groups were started with.
func (o *Orchestrator) resumeRollout(ctx context.Context, r *run, op *op) (*rollout, error) {
	d, env := op.resume, op.current
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return nil, err
	}
	cand := pausedSlot(env, d)
	if cand == nil {
		return nil, gantry.Errorf(gantry.ECONFLICT, "the candidate slot of paused deployment #%d is gone; deploy again", d.ID)
	}
	d.Slot = cand.Name
	p, err := o.makePlan(ctx, op.rel, op.m, env.ActiveSlot(), op.only, nil)
	if err != nil {
		return nil, err
	}
	db, err := o.resumeDatabase(ctx, env, op.rel, op.m)
	if err != nil {
		return nil, err
	}
	return &rollout{r: r, op: op, env: env, drv: drv, rel: op.rel, m: op.m, spec: op.spec, p: p, cand: cand, db: db, pauseAfter: op.pauseAfter}, nil
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
