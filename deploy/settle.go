package deploy

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry"
)

// A deployment is unsettled when the store refused its records (the disk
// of the data directory was full): a step acted but its result is not in
// the journal, its outcome is not recorded, or its lock could not be
// released. Its records may then disagree with what serves, and the next
// deployment would act on the records (stopping the slot it takes for the
// standby, which may be the one taking traffic). So an unsettled
// deployment keeps its environment's lock until Settle, once the store
// writes again, has made the environment's record follow what the router
// serves (never the reverse: invariant 12), recorded the outcome and freed
// the lock. A server that restarts first does the same in Recover.

// switchedUnrecorded ends a rollout whose switch moved the traffic but
// could not be journaled: the candidate serves and keeps serving; the
// steps after the switch (watch, hooks, stopping the previous slot) do not
// run, and the deployment ends unsettled.
func (o *Orchestrator) switchedUnrecorded(ctx context.Context, ro *rollout, cause error) error {
	o.promoteSlot(ro.env, ro.cand.Name, ro.spec.KeepWarm)
	if err := o.retryRecord(context.WithoutCancel(ctx), func() error { return o.saveEnv(ctx, ro.env) }); err != nil {
		o.logger().Error("record the switch", "app", ro.env.App, "env", ro.env.Name, "slot", ro.cand.Name, "error", err)
	}
	return gantry.Errorf(gantry.EUNAVAILABLE, "traffic moved to slot %s (%s), which keeps serving, but the switch could not be recorded: %s; the steps after the switch did not run, and the environment stays locked until its record follows the router",
		ro.cand.Name, ro.rel.Version, gantry.ErrorMessage(cause))
}

// owe puts d among the unsettled deployments; reconcile says whether the
// environment's record must be made to follow the router first (its
// journal or record may be behind), or only the outcome and the lock are
// owed.
func (o *Orchestrator) owe(d *gantry.Deployment, reconcile bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.unsettled == nil {
		o.unsettled = map[int64]*unsettledRun{}
	}
	if u, ok := o.unsettled[d.ID]; ok {
		u.reconcile = u.reconcile || reconcile
		return
	}
	o.unsettled[d.ID] = &unsettledRun{d: d, reconcile: reconcile}
	o.logger().Warn("deployment unsettled: the store refused its records; it keeps its lock until they can be written",
		"deployment", d.ID, "app", d.App, "env", d.Env)
}

type unsettledRun struct {
	d         *gantry.Deployment
	reconcile bool
}

// Settle tries again, for every unsettled deployment, to make its
// environment's record follow what serves, record its outcome and free
// its lock. The server's Watch loop calls it every second; it returns how
// many deployments are still unsettled.
func (o *Orchestrator) Settle(ctx context.Context) int {
	o.mu.Lock()
	runs := make([]*unsettledRun, 0, len(o.unsettled))
	for _, u := range o.unsettled {
		runs = append(runs, u)
	}
	o.mu.Unlock()
	left := 0
	for _, u := range runs {
		if err := o.settle(ctx, u); err != nil {
			left++
			o.logger().Debug("deployment still unsettled", "deployment", u.d.ID, "error", err)
			continue
		}
		o.mu.Lock()
		delete(o.unsettled, u.d.ID)
		o.mu.Unlock()
	}
	return left
}

func (o *Orchestrator) settle(ctx context.Context, u *unsettledRun) error {
	d := u.d
	if u.reconcile {
		outcome := "nothing was deployed yet"
		env, err := o.Store.FindEnvironment(ctx, d.App, d.Env)
		switch {
		case gantry.ErrorCode(err) == gantry.ENOTFOUND:
		case err != nil:
			return err
		default:
			if outcome, err = o.reconcile(ctx, env, heldState{writes: d.Strategy == gantry.StrategyMaintenance}); err != nil {
				return err
			}
		}
		s := &gantry.Step{Name: "settle", State: gantry.StepDone, StartedAt: o.now(), EndedAt: o.now(),
			Detail: "the store refused this deployment's records (the disk was full); once it wrote again, the record followed what serves: " + outcome}
		if err := o.Store.AppendStep(ctx, d.ID, s); err != nil {
			return err
		}
		u.reconcile = false
		if d.Error != "" {
			d.Error = fmt.Sprintf("%s; settled once the store wrote again: %s", d.Error, outcome)
		}
	}
	if err := o.Store.UpdateDeployment(ctx, d); err != nil {
		return err
	}
	if err := o.Store.ReleaseLock(ctx, d.App, d.Env, d.Actor, false); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
		return err
	}
	o.logger().Warn("unsettled deployment settled: its record follows what serves and its lock is free", "deployment", d.ID, "app", d.App, "env", d.Env, "state", d.State)
	return nil
}
