package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
)

// errPaused ends a rollout that paused after a group, as asked: the
// deployment is not over, so neither its lock nor its candidate go away.
var errPaused = errors.New("rollout paused")

// rollout is a blue-green rollout in progress: the operation's state, in
// one place, for every step of it and for a paused one to go on.
type rollout struct {
	r    *run
	op   *op
	env  *gantry.Environment
	drv  gantry.Driver
	rel  *gantry.Release
	m    *gantry.Manifest // the deployed release's, for hooks
	spec *gantry.EnvironmentSpec
	p    *plan
	cand *gantry.Slot
	db   *dbChange
	// pauseAfter is the group to pause after, if any.
	pauseAfter *int
}

// checkOpts refuses rollout options that cannot apply, before anything is
// locked or recorded.
func (o *Orchestrator) checkOpts(op *op) error {
	m := op.m
	if err := o.checkCanaryOpts(op); err != nil {
		return err
	}
	if op.only != "" && m.Services[op.only] == nil {
		return gantry.Errorf(gantry.EINVALID, "--only %s: the release has no service %q (services: %s)", op.only, op.only, strings.Join(serviceNames(m), ", "))
	}
	if _, ok := o.slotDriver(op.spec); ok {
		// The runtime switches whole slots: it cannot hold writes, mix
		// releases in a slot or stop between groups.
		switch {
		case op.only != "":
			return gantry.Errorf(gantry.EINVALID, "--only %s: the %s runtime switches whole slots; deploy the whole release", op.only, op.spec.Runtime.Driver)
		case op.pauseAfter != nil:
			return gantry.Errorf(gantry.EINVALID, "--pause-after: the %s runtime rolls a slot out whole; deploy without it", op.spec.Runtime.Driver)
		case op.strategy == gantry.StrategyMaintenance:
			return gantry.Errorf(gantry.EINVALID, "strategy maintenance needs Gantry's router to hold writes; the %s runtime routes its own traffic", op.spec.Runtime.Driver)
		case op.strategy == gantry.StrategyRestart && op.spec.Runtime.RouterInFront():
			return gantry.Errorf(gantry.EINVALID, "strategy restart with runtime.traffic: router: the %s runtime's rolling update replaces the pods Gantry's router sends traffic to; deploy with the bluegreen strategy", op.spec.Runtime.Driver)
		}
	}
	if op.pauseAfter == nil {
		return nil
	}
	if m.Database.AppMigratesIncompatibly() {
		return gantry.Errorf(gantry.EINVALID, "--pause-after: app %s migrates its own schema, and every request is held from its migration until the new release serves; a pause would hold them for as long", op.app)
	}
	switch op.strategy {
	case gantry.StrategyRestart:
		return gantry.Errorf(gantry.EINVALID, "--pause-after needs the bluegreen strategy: a restart holds the route's requests while it runs")
	case gantry.StrategyMaintenance:
		return gantry.Errorf(gantry.EINVALID, "--pause-after needs the bluegreen strategy: maintenance holds writes until the new release serves, and a pause would hold them for as long")
	}
	var orders []string
	for _, s := range m.ServicesInOrder() {
		if s.Order == *op.pauseAfter {
			return nil
		}
		if n := fmt.Sprint(s.Order); len(orders) == 0 || orders[len(orders)-1] != n {
			orders = append(orders, n)
		}
	}
	return gantry.Errorf(gantry.EINVALID, "--pause-after %d: the release has no order group %d (groups: %s)", *op.pauseAfter, *op.pauseAfter, strings.Join(orders, ", "))
}

// deployOrdered is the blue-green rollout through Gantry's router: the
// candidate slot's groups start in order, each healthy before the next; the
// candidate is verified through its preview host; the router switches; the
// previous slot stays warm. With the restart strategy the active slot is
// patched in place instead.
func (o *Orchestrator) deployOrdered(ctx context.Context, r *run, op *op) error {
	rel, m, spec := op.rel, op.m, op.spec
	env, err := o.loadEnv(ctx, rel.App, r.d.Env, spec)
	if err != nil {
		return err
	}
	drv, err := o.driver(spec)
	if err != nil {
		return err
	}
	if err := r.step(ctx, "verify-artifacts", "", func() (string, error) { return o.verifyArtifacts(ctx, rel) }); err != nil {
		return err
	}
	active := env.ActiveSlot()
	if active != nil {
		r.d.FromRelease = active.ReleaseID
	}
	keep, err := o.unchangedStep(ctx, r, op, env, active)
	if err != nil || (keep != nil && len(keep) == len(m.Services)) {
		return err // nothing changed: left running
	}
	p, err := o.makePlan(ctx, rel, m, active, op.only, keep)
	if err != nil {
		return err
	}
	if len(p.groups) > 1 || op.only != "" || len(p.keep) > 0 || op.pauseAfter != nil {
		if err := r.step(ctx, "plan", p.describe(op.pauseAfter), func() (string, error) { return "", nil }); err != nil {
			return err
		}
	}
	if op.strategy == gantry.StrategyRestart && active != nil {
		if len(p.groups) > 1 || op.only != "" || len(p.keep) > 0 {
			return o.restartGroups(ctx, r, env, drv, rel, m, p)
		}
		return o.restartInPlace(ctx, r, env, drv, rel, m)
	}
	slot := gantry.SlotBlue
	if active != nil {
		slot = gantry.OtherSlot(active.Name)
	}
	r.d.Slot = slot
	cand := env.Slot(slot)
	if len(cand.Instances) > 0 {
		if err := r.step(ctx, "stop-standby", fmt.Sprintf("slot %s (%s)", slot, cand.Version), func() (string, error) {
			return "", o.stopSlot(ctx, env, drv, cand, m)
		}); err != nil {
			return err
		}
	}
	if err := o.contractBeforeExpand(ctx, r, env, rel, m); err != nil {
		return err
	}
	db, err := o.expandDatabase(ctx, r, env, rel, m, op.strategy == gantry.StrategyMaintenance)
	if err != nil {
		return err
	}
	*cand = gantry.Slot{Name: slot, State: gantry.SlotStarting, ReleaseID: rel.ID, Version: rel.Version, Since: o.now()}
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	ro := &rollout{r: r, op: op, env: env, drv: drv, rel: rel, m: m, spec: spec, p: p, cand: cand, db: db, pauseAfter: op.pauseAfter}
	if err := o.rollGroups(ctx, ro, nil); err != nil {
		if errors.Is(err, errPaused) {
			return err
		}
		return o.failRollout(ctx, ro, err)
	}
	return o.switchOver(ctx, ro)
}

// rollGroups starts the groups after group after (all when nil), one at a
// time, each healthy before the next starts.
func (o *Orchestrator) rollGroups(ctx context.Context, ro *rollout, after *int) error {
	for _, g := range ro.p.groups {
		if after != nil && g.order <= *after {
			continue
		}
		if err := ro.r.step(ctx, "start-group", g.label()+" on slot "+ro.cand.Name, func() (string, error) {
			msg, err := o.startGroup(ctx, ro.env, ro.drv, ro.cand, ro.p.m, g, ro.db.connVars())
			return msg, groupErr(g, err)
		}); err != nil {
			return err
		}
		if err := ro.r.reached(ctx, g.order); err != nil {
			return err
		}
		if ro.pauseAfter != nil && g.order == *ro.pauseAfter {
			return o.pauseAt(ctx, ro, g)
		}
	}
	if len(ro.cand.Instances) == 0 {
		return errNoInstances
	}
	return nil
}

// pauseAt journals where the rollout stopped and what to check before it
// goes on. The candidate's web instances, when some are up, answer on the
// preview host.
func (o *Orchestrator) pauseAt(ctx context.Context, ro *rollout, g group) error {
	main, _ := o.mainRoute(ro.env, ro.cand, ro.p.m)
	var pending []string
	for _, x := range ro.p.groups {
		if x.order > g.order {
			pending = append(pending, x.label())
		}
	}
	if len(pending) == 0 {
		pending = []string{"none: verify and switch"}
	}
	err := ro.r.step(ctx, "pause-after", fmt.Sprintf("after group %d", g.order), func() (string, error) {
		check := "no http service runs on the candidate yet"
		if targets := webTargets(ro.cand, ro.p.m); len(targets) > 0 && len(main.route.PreviewHosts) > 0 {
			switch err := o.setPreview(ctx, ro.env, ro.cand, ro.p.m); {
			case gantry.ErrorCode(err) == gantry.ENOTFOUND:
				// A first deploy: no route, so no preview host yet.
				check = "the instances directly at http://" + strings.Join(targets, ", http://")
			case err != nil:
				return "", err
			default:
				check = "preview " + o.previewURL(main.route.PreviewHosts[0])
			}
		}
		serving := "nothing serves yet"
		if a := ro.env.ActiveSlot(); a != nil {
			serving = fmt.Sprintf("traffic stays on slot %s (%s)", a.Name, a.Version)
		}
		return fmt.Sprintf("after group %d; done: %s; pending: %s; check: %s (slot %s); %s; go on with: gantry continue %s",
			g.order, doneLabels(ro.p, g.order), strings.Join(pending, " + "), check, ro.cand.Name, serving, ro.env.Name), nil
	})
	if err != nil {
		return err
	}
	return errPaused
}

func doneLabels(p *plan, upTo int) string {
	var s []string
	for _, g := range p.groups {
		if g.order <= upTo {
			s = append(s, g.label())
		}
	}
	return strings.Join(s, " + ")
}

// previewURL is where a preview host answers through the router.
func (o *Orchestrator) previewURL(host string) string {
	port := ""
	if i := strings.LastIndex(o.RouterURL, ":"); i >= 0 && !strings.HasSuffix(o.RouterURL[:i], "http") && !strings.HasSuffix(o.RouterURL[:i], "https") {
		port = o.RouterURL[i:]
	}
	return "http://" + host + port + "/"
}

// failRollout puts a rollout that failed before the switch back: the
// candidate's started groups are stopped, last group first, while the old
// slot, which traffic never left, keeps serving.
func (o *Orchestrator) failRollout(ctx context.Context, ro *rollout, cause error) error {
	wctx := context.WithoutCancel(ctx)
	detail := o.failureLogs(ctx, ro.drv, ro.cand)
	o.clearPreview(wctx, ro.env.App, ro.env.Name)
	gs := startedGroups(ro.p, ro.cand)
	serving := "nothing was serving"
	if a := ro.env.ActiveSlot(); a != nil {
		serving = fmt.Sprintf("traffic never left slot %s (%s), which keeps serving", a.Name, a.Version)
	}
	_ = ro.r.step(wctx, "stop-candidate", fmt.Sprintf("slot %s: stopping started groups [%s] in reverse order; %s", ro.cand.Name, groupOrders(gs), serving), func() (string, error) {
		return "", nil
	})
	for _, g := range gs {
		_ = ro.r.step(wctx, "stop-group", fmt.Sprintf("%s on slot %s", g.label(), ro.cand.Name), func() (string, error) {
			return "", o.stopInstances(wctx, ro.env, ro.drv, ro.cand, ro.p.m, func(inst gantry.Instance) bool { return !g.has(inst.Service) })
		})
	}
	if err := o.stopSlot(wctx, ro.env, ro.drv, ro.cand, ro.p.m); err != nil {
		o.logger().Error("stop candidate", "app", ro.env.App, "env", ro.env.Name, "slot", ro.cand.Name, "error", err)
	}
	if ro.db != nil && ro.db.expanded {
		_ = o.rollbackDatabase(wctx, ro.r, ro.db.b)
	}
	var judged *CanaryFailure
	if detail != "" && !errors.As(cause, &judged) {
		// A canary's verdict is its own evidence; the instances' logs are
		// for a candidate that failed to start or to verify.
		return withDetail(cause, detail)
	}
	return cause
}

// switchOver verifies a fully started candidate through its preview host,
// switches traffic to it and sets the previous slot aside.
func (o *Orchestrator) switchOver(ctx context.Context, ro *rollout) error {
	r, env, cand, m := ro.r, ro.env, ro.cand, ro.p.m
	slot := cand.Name
	targets := webTargets(cand, m)
	main, _ := o.mainRoute(env, cand, m)
	route := main.route
	if len(m.Verify) > 0 && len(targets) > 0 {
		if err := r.step(ctx, "verify", fmt.Sprintf("%d checks through %s", len(m.Verify), strings.Join(route.PreviewHosts, ",")), func() (string, error) {
			return o.verify(ctx, ro.rel, env, cand, m, ro.op.held)
		}); err != nil {
			return o.failRollout(ctx, ro, err)
		}
	}
	cand.Verified = true
	if err := o.runHooks(ctx, r, ro.m, ro.rel, env, "before_switch", gantry.FirstHost(route.PreviewHosts)); err != nil {
		return o.failRollout(ctx, ro, err)
	}
	if err := o.runCanary(ctx, ro, route, main.targets); err != nil {
		return o.failRollout(ctx, ro, err)
	}
	var before []gantry.RouteStatus
	if err := r.step(ctx, "switch", fmt.Sprintf("%s → slot %s", route.Name, slot), func() (string, error) {
		if ro.spec.Watch != nil && len(targets) > 0 {
			before, _ = o.Router.Status(ctx)
		}
		msg, err := o.switchTo(ctx, env, ro.drv, cand, m, false)
		if err == nil && len(targets) > 0 {
			o.clearPreview(ctx, env.App, env.Name)
		}
		return msg, err
	}); err != nil {
		if actedUnrecorded(err) {
			return o.switchedUnrecorded(ctx, ro, err)
		}
		return o.failRollout(ctx, ro, err)
	}
	o.promoteSlot(env, slot, ro.spec.KeepWarm)
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	if ro.op.afterSwitch != nil {
		if err := ro.op.afterSwitch(ctx); err != nil {
			return err
		}
	}
	if err := o.watchOrRollBack(ctx, ro, before); err != nil {
		return err
	}
	if err := o.runHooks(ctx, r, ro.m, ro.rel, env, "after_switch", gantry.FirstHost(route.Hosts)); err != nil {
		return err
	}
	old := env.Slots[gantry.OtherSlot(slot)]
	if old != nil && old.State == gantry.SlotStandby && old.WarmUntil.After(o.now()) {
		return o.stopOldWorkers(ctx, r, env, ro.drv, old, o.manifestOfRelease(ctx, env.App, old.ReleaseID))
	}
	if old != nil && old.State == gantry.SlotStandby && !old.WarmUntil.After(o.now()) {
		if err := r.step(ctx, "stop-previous", fmt.Sprintf("slot %s (%s), keep_warm is 0", old.Name, old.Version), func() (string, error) {
			err := o.stopSlot(ctx, env, ro.drv, old, m)
			if err == nil {
				err = o.saveEnv(ctx, env)
			}
			return "", err
		}); err != nil {
			return err
		}
		return o.contractStep(ctx, r, env, ro.m)
	}
	return nil
}
