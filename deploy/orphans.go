package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
)

// What a crash can leave behind that no deployment owns any more: an
// instance started but not yet recorded, and a lock whose deployment has
// ended. Recover finds both, here.

// adoptFound makes env's record know every instance the driver runs for
// it, when the driver can find instances by their identity (an
// InstanceLister). A server killed between starting an instance and saving
// its handle left it running unknown to the record: it is adopted into its
// slot when the record keeps that slot for the release it runs (and has no
// other instance in its place), and stopped otherwise, so that no instance
// outlives the state's knowledge of it. The rest of reconcile then treats
// adopted instances like recorded ones (a candidate that never took
// traffic is stopped whole). It returns what it did, for the outcome.
func (o *Orchestrator) adoptFound(ctx context.Context, env *gantry.Environment, drv gantry.Driver) (string, error) {
	l, ok := drv.(gantry.InstanceLister)
	if !ok {
		return "", nil
	}
	found, err := l.ListInstances(ctx, env.App, env.Name)
	if err != nil {
		return "", fmt.Errorf("find the instances of %s: %w", env.Name, err)
	}
	// Known means known to any environment of the app: an instance keeps
	// the name of the environment it was started in, and after a rename
	// it belongs to the record of the environment's new name.
	others, err := o.Store.ListEnvironments(ctx, env.App)
	if err != nil {
		return "", err
	}
	known := map[string]bool{}
	for _, e := range append(others, env) {
		for _, s := range e.Slots {
			for _, inst := range s.Instances {
				known[inst.Handle] = true
			}
		}
	}
	var adopted, stopped []string
	for _, f := range found {
		inst := f.Instance
		if !f.Running || known[inst.Handle] {
			continue
		}
		name := fmt.Sprintf("%s-%d", inst.Service, inst.Index)
		if s := env.Slots[f.Slot]; keepsFound(s, inst) && drv.Attach(ctx, inst) == nil {
			s.Instances = append(s.Instances, inst)
			adopted = append(adopted, name+" into slot "+s.Name)
			continue
		}
		stop := gantry.StopSpec{Signal: "SIGTERM", Timeout: gantry.DefaultStopTimeout}
		if m := o.manifestOfRelease(ctx, env.App, inst.ReleaseID); m != nil && m.Services[inst.Service] != nil {
			stop = m.Services[inst.Service].Stop
		}
		if err := drv.Stop(ctx, inst, stop); err != nil {
			return "", fmt.Errorf("stop %s of slot %s, unknown to the record: %w", name, f.Slot, err)
		}
		stopped = append(stopped, name+" of slot "+f.Slot)
	}
	if len(adopted)+len(stopped) == 0 {
		return "", nil
	}
	o.logger().Warn("instances unknown to the record after a restart", "app", env.App, "env", env.Name, "adopted", adopted, "stopped", stopped)
	note := ""
	if len(adopted) > 0 {
		note += "; adopted " + strings.Join(adopted, ", ") + " (started before the crash, not yet recorded)"
	}
	if len(stopped) > 0 {
		note += "; stopped " + strings.Join(stopped, ", ") + " (running unknown to the record)"
	}
	return note, nil
}

// keepsFound says whether slot s is where a found instance belongs: the
// record keeps s (not stopped) for the release the instance runs, and has
// no instance of its own in the same place.
func keepsFound(s *gantry.Slot, inst gantry.Instance) bool {
	if s == nil || s.State == gantry.SlotStopped || s.State == "" || (inst.ReleaseID != "" && inst.ReleaseID != s.ReleaseID) {
		return false
	}
	for _, x := range s.Instances {
		if x.Service == inst.Service && x.Index == inst.Index {
			return false
		}
	}
	return true
}

// releaseOrphanLocks frees the locks that outlived their deployment: a
// server killed after a deployment's outcome was recorded and before its
// lock was released leaves a lock naming a deployment that no longer runs,
// and every later deploy would be refused until a forced unlock. A lock
// of a running or paused deployment stays (a paused one keeps its lock
// until `gantry continue`), and so does one that names no deployment (a
// manual lock). Each release is logged and said in the deployment's journal.
func (o *Orchestrator) releaseOrphanLocks(ctx context.Context, app string, envs []*gantry.Environment) error {
	names := map[string]bool{}
	for _, env := range envs {
		names[env.Name] = true
	}
	// A first deploy that failed left no environment behind, but may have
	// left its lock: its name is in the history.
	recent, err := o.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: app, Limit: 200})
	if err != nil {
		return err
	}
	for _, d := range recent {
		names[d.Env] = true
	}
	var errs []error
	for name := range names {
		l, err := o.Store.FindLock(ctx, app, name)
		if gantry.ErrorCode(err) == gantry.ENOTFOUND || (err == nil && l.DeploymentID == 0) {
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		d, err := o.Store.FindDeployment(ctx, l.DeploymentID)
		if err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			errs = append(errs, err)
			continue
		}
		if d != nil && (d.State == gantry.DeploymentRunning || d.State == gantry.DeploymentPaused) {
			continue
		}
		if err := o.Store.ReleaseLock(ctx, app, name, l.Holder, false); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			errs = append(errs, err)
			continue
		}
		state := "gone from the history"
		if d != nil {
			state = d.State
		}
		o.logger().Warn("released a lock that outlived its deployment", "app", app, "env", name, "deployment", l.DeploymentID, "state", state, "holder", l.Holder)
		if d == nil {
			continue
		}
		s := &gantry.Step{Name: "lock-released", State: gantry.StepDone, StartedAt: o.now(), EndedAt: o.now(),
			Detail: fmt.Sprintf("the server stopped after this deployment ended (%s) and before it released the lock on %s; released at the next start", d.State, name)}
		if err := o.Store.AppendStep(ctx, d.ID, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
