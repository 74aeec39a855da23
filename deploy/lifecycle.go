package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry"
)

var _ gantry.WorkflowService = (*Orchestrator)(nil)

// cloneOp is what a clone adds to its op: the new environment's record,
// and the database copy when asked.
type cloneOp struct {
	dst      *gantry.Environment
	copy     *copyPlan
	postCopy string
	// files: copy the source's persistent directories too.
	files bool
	// counted, for a preview, ends the hold the previews gate took on the
	// app's previews (holdPreviews); nil until the gate ran.
	counted func()
}

// endHold ends the previews gate's hold, if it took one.
func (c *cloneOp) endHold() {
	if c.counted != nil {
		c.counted()
	}
}

// Clone creates environment Dst with Src's settings, variables and secret
// references, and deploys to it the release Src runs. Its hosts follow its
// name. The new environment records where it came from.
func (o *Orchestrator) Clone(ctx context.Context, req gantry.CloneRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	if err := gantry.ValidName("environment", req.Dst); err != nil {
		return nil, err
	}
	src, err := o.Store.FindEnvironment(ctx, req.App, req.Src)
	if err != nil {
		return nil, err
	}
	if _, err := o.Store.FindEnvironment(ctx, req.App, req.Dst); err == nil {
		return nil, gantry.Errorf(gantry.ECONFLICT, "environment %q already exists", req.Dst)
	}
	active := src.ActiveSlot()
	if active == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "environment %q runs nothing to clone", req.Src)
	}
	spec := src.Spec
	spec.Hosts = renameHosts(src.Spec.Hosts, req.Src, req.Dst)
	if len(req.Hosts) > 0 {
		spec.Hosts = req.Hosts
	}
	if spec.Runtime.Namespace != "" {
		if spec.Runtime.Namespace, err = o.cloneNamespace(ctx, src, req.Dst); err != nil {
			return nil, err
		}
	}
	spec.PromoteFrom = ""
	spec.Approvals = nil
	spec.HotfixApprovals = nil
	spec.Freeze = nil
	spec.MigrationsViaClone = false
	dst := &gantry.Environment{App: req.App, Name: req.Dst, Spec: spec, ClonedFrom: req.Src, Preview: req.Preview, CreatedAt: o.now()}
	relID := active.ReleaseID
	if req.Release != "" {
		relID = req.Release
	}
	rel, err := o.Store.FindRelease(ctx, req.App, relID)
	if err != nil {
		return nil, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, err
	}
	c := &cloneOp{dst: dst, postCopy: req.PostCopy}
	op := &op{kind: gantry.KindClone, app: req.App, env: req.Dst, actor: req.Actor, rel: rel, m: m, spec: &dst.Spec,
		fromEnv: req.Src, source: src, alsoFrozen: []*gantry.EnvironmentSpec{&src.Spec}, strategy: gantry.StrategyBlueGreen, clone: c,
		breakGlass: req.BreakGlass}
	// Every secret first, all named at once: the copy's own check would
	// name DATABASE_URL alone.
	if err := o.checkNeeds(ctx, op); err != nil {
		return nil, err
	}
	if req.WithData {
		_, slotRuntime := o.slotDriver(&dst.Spec)
		c.files = hasPersist(m) && (o.PersistRoot != "" || slotRuntime)
		if m.Database != nil || !c.files {
			if c.copy, err = o.planCopy(ctx, src, dst, m); err != nil {
				if !c.files {
					err = gantry.Errorf(gantry.ErrorCode(err), "%s; and it keeps no persistent directories", gantry.ErrorMessage(err))
				}
				return nil, err
			}
		}
	}
	defer c.endHold()
	return o.execute(ctx, op, progress)
}

// performClone creates the new environment, copies its data when asked,
// and rolls the source's release out on it. A clone that fails before the
// new environment serves removes what it made.
func (o *Orchestrator) performClone(ctx context.Context, r *run, op *op) error {
	c := op.clone
	err := r.step(ctx, "create", fmt.Sprintf("%s from %s, hosts %s", op.env, op.fromEnv, strings.Join(c.dst.Spec.Hosts, ",")), func() (string, error) {
		return sourceHostsIn(c.dst.Spec.Vars, op.source, op.env), o.saveEnv(ctx, c.dst)
	})
	c.endHold() // the new preview counts from here on
	if err != nil {
		return err
	}
	if c.copy != nil {
		// Kept with the environment: env delete, or the recovery of a
		// clone a crash interrupted, drops what Gantry created.
		keep := func(rec *gantry.CopyRecord) error {
			c.dst.DatabaseCopy = rec
			return o.saveEnv(ctx, c.dst)
		}
		if err := o.copyData(ctx, r, c.copy, c.postCopy, keep); err != nil {
			return o.undoClone(ctx, r, op, err)
		}
	} else if p := c.dst.Preview; p != nil && p.Database {
		if err := o.createPreviewDatabase(ctx, r, c.dst, op.m); err != nil {
			return err
		}
	}
	// A runtime that switches slots itself keeps the files in its own
	// volumes, which the deploy's "files" step copies.
	if _, slotRuntime := o.slotDriver(&c.dst.Spec); c.files && !slotRuntime {
		if err := o.copyPersist(ctx, r, op.source, c.dst); err != nil {
			return o.undoClone(ctx, r, op, err)
		}
	}
	if err := o.roll(ctx, r, op); err != nil {
		return o.undoClone(ctx, r, op, err)
	}
	return nil
}

// undoClone removes what a failed clone made (its instances, route and
// database copy, then the environment itself, keeping its history), so
// that the same clone can run again; a clone that failed after its
// environment took traffic is kept: it serves. It returns cause.
func (o *Orchestrator) undoClone(ctx context.Context, r *run, op *op, cause error) error {
	wctx := context.WithoutCancel(ctx)
	env, err := o.Store.FindEnvironment(wctx, op.app, op.env)
	if err != nil || env.ActiveSlot() != nil {
		return cause
	}
	made := "the environment"
	if cp := op.clone.copy; cp != nil && cp.made != nil {
		made = "the environment and its database copy"
	}
	err = r.step(wctx, "remove-clone", fmt.Sprintf("%s did not come up: removing %s, so that the clone can run again", op.env, made), func() (string, error) {
		return "", o.removeClone(wctx, env, func() error {
			if cp := op.clone.copy; cp != nil && cp.made != nil {
				return o.Databases.DiscardCopy(wctx, cp.made, *cp.to)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("%w (and the clone could not be removed: %s; remove it with gantry env delete %s --force)", cause, gantry.ErrorMessage(err), op.env)
	}
	return cause
}

// removeClone stops a clone's instances, removes its route, then its
// database copy (discard) and its persistent directories (a copy, or what
// a crash left of one), then the environment, keeping its history.
func (o *Orchestrator) removeClone(ctx context.Context, env *gantry.Environment, discard func() error) error {
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return err
	}
	if err := o.stopSlots(ctx, env, drv); err != nil {
		return err
	}
	if err := o.removeRoutes(ctx, env.App, env.Name, nil); err != nil {
		return err
	}
	if err := discard(); err != nil {
		return err
	}
	if err := o.purgePersist(ctx, drv, env); err != nil {
		return err
	}
	return o.Store.DeleteEnvironment(ctx, env.App, env.Name)
}

// stopSlots stops every slot of env that has instances, each with its
// release's manifest, and stops at the first that fails.
func (o *Orchestrator) stopSlots(ctx context.Context, env *gantry.Environment, drv gantry.Driver) error {
	for _, s := range env.Slots {
		if len(s.Instances) == 0 {
			continue
		}
		if err := o.stopSlot(ctx, env, drv, s, o.manifestOfRelease(ctx, env.App, s.ReleaseID)); err != nil {
			return err
		}
	}
	return nil
}

// removeInterruptedClone is the recovery of a clone a crash interrupted
// before its environment served: it is removed as a failed clone is, its
// database copy included when the clone recorded one it created, so that
// the same clone command can run again.
func (o *Orchestrator) removeInterruptedClone(ctx context.Context, env *gantry.Environment) (string, error) {
	copied, err := o.copiedDatabase(ctx, env)
	if err != nil {
		return "", err
	}
	made := "the environment"
	var rec *gantry.CopyRecord
	if copied != nil {
		made, rec = "the environment and its database copy", env.DatabaseCopy
	} else if copied = o.unfinishedCopy(env); copied != nil {
		made = "the environment and any unfinished copy of its database"
	}
	err = o.removeClone(ctx, env, func() error {
		if copied != nil {
			return o.Databases.DiscardCopy(ctx, rec, *copied)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("the clone %s did not come up: removed %s, so that the clone can run again", env.Name, made), nil
}

// unfinishedCopy is the database of a clone the crash interrupted with no
// copy it created on record (nil: it has no database): DiscardCopy without
// a record drops only what a copy left unfinished (a database under a name
// of its own, or one it was filling in place, marked), never the database
// the environment is bound to.
func (o *Orchestrator) unfinishedCopy(env *gantry.Environment) *gantry.DatabaseBinding {
	if o.Databases == nil || env.DatabaseCopy != nil && env.DatabaseCopy.Created {
		return nil
	}
	url, ok := o.secretValue(env.App, env.Name, DatabaseURLSecret)
	if !ok {
		return nil
	}
	return &gantry.DatabaseBinding{App: env.App, Env: env.Name, URL: url, SnapshotDir: gantry.SnapshotDir(o.SnapshotRoot, env.App, env.Name)}
}

// sourceHostsIn warns of the variables a clone copies that name one of
// its source's hosts as written: the clone would link to its source.
// {host} in their place follows each environment.
func sourceHostsIn(vars map[string]string, src *gantry.Environment, dst string) string {
	var named []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		for _, h := range src.Spec.Hosts {
			if !strings.HasPrefix(h, "*.") && strings.Contains(vars[k], h) {
				named = append(named, k+" ("+h+")")
				break
			}
		}
	}
	if len(named) == 0 {
		return ""
	}
	return fmt.Sprintf("warning: %s name %s's hosts as written, so %s links to %s; write {host} in their place (docs/environment.md)",
		strings.Join(named, ", "), src.Name, dst, src.Name)
}

// renameOp is what a rename adds to its op.
type renameOp struct {
	old        *gantry.Environment
	displaced  *gantry.Environment // the environment that had the new name, or nil
	displaceTo string
}

// Rename renames Old to New, moving its history with it and its traffic to
// New's hosts. When New exists, it is first renamed to DisplaceTo (test →
// testold), so that the two renames of a migration (testnew → test) are one
// journaled operation. New's policy applies to the release Old serves: a
// rename onto prod is judged as a deployment to prod would be. Each step is
// idempotent: running the same rename again after an interruption finishes
// it.
func (o *Orchestrator) Rename(ctx context.Context, req gantry.RenameRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	if err := gantry.ValidName("environment", req.New); err != nil {
		return nil, err
	}
	if req.DisplaceTo != "" {
		if err := gantry.ValidName("environment", req.DisplaceTo); err != nil {
			return nil, err
		}
	}
	if req.Old == req.New {
		return nil, gantry.Errorf(gantry.EINVALID, "environment %q already has that name", req.Old)
	}
	old, err := o.Store.FindEnvironment(ctx, req.App, req.Old)
	if err != nil {
		return nil, err
	}
	displaced, err := o.Store.FindEnvironment(ctx, req.App, req.New)
	switch {
	case err == nil && req.DisplaceTo == "":
		return nil, gantry.Errorf(gantry.ECONFLICT, "environment %q exists; rename it out of the way with --displace-to NAME (e.g. %sold)", req.New, req.New)
	case err == nil:
	case gantry.ErrorCode(err) == gantry.ENOTFOUND:
		displaced = nil
	default:
		return nil, err
	}
	if displaced != nil {
		if _, err := o.Store.FindEnvironment(ctx, req.App, req.DisplaceTo); err == nil {
			return nil, gantry.Errorf(gantry.ECONFLICT, "environment %q exists already: choose another --displace-to", req.DisplaceTo)
		}
	}
	op := &op{kind: gantry.KindRename, app: req.App, env: req.New, actor: req.Actor, fromEnv: req.Old, source: old, current: displaced, breakGlass: req.BreakGlass,
		alsoFrozen: []*gantry.EnvironmentSpec{&old.Spec}, alsoLock: []string{req.Old},
		rename: &renameOp{old: old, displaced: displaced, displaceTo: req.DisplaceTo}}
	if displaced != nil {
		op.alsoLock = append(op.alsoLock, req.DisplaceTo)
	}
	spec := old.Spec
	if a := old.ActiveSlot(); a != nil {
		if op.rel, err = o.Store.FindRelease(ctx, req.App, a.ReleaseID); err != nil {
			return nil, err
		}
		if op.m, err = o.manifestOf(op.rel); err != nil {
			return nil, err
		}
	}
	op.spec = renamedSpec(&spec, op.m, req.Old, req.New)
	return o.execute(ctx, op, progress)
}

// renamedSpec is the configuration an environment has under a new name: the
// policy and hosts the manifest declares for that name, or else its own with
// hosts derived from the new name.
func renamedSpec(spec *gantry.EnvironmentSpec, m *gantry.Manifest, oldName, newName string) *gantry.EnvironmentSpec {
	out := *spec
	var declared *gantry.EnvironmentSpec
	if m != nil {
		declared = m.Environments[newName]
	}
	if declared == nil {
		out.Hosts = renameHosts(spec.Hosts, oldName, newName)
		return &out
	}
	out.Hosts = declared.Hosts
	out.PromoteFrom = declared.PromoteFrom
	out.Approvals = declared.Approvals
	out.HotfixApprovals = declared.HotfixApprovals
	out.Freeze = declared.Freeze
	out.MigrationsViaClone = declared.MigrationsViaClone
	return &out
}

// performRename renames the displaced environment out of the way, then
// the old one to its new name.
func (o *Orchestrator) performRename(ctx context.Context, r *run, op *op) error {
	rn := op.rename
	if op.current != nil {
		if err := o.renameOne(ctx, r, op.current, rn.displaceTo, true); err != nil {
			return err
		}
	}
	if err := o.renameOne(ctx, r, rn.old, op.env, false); err != nil {
		return err
	}
	// A runtime that serves hosts with objects of its own (Kubernetes) kept
	// the displaced environment's objects of the name until now: the
	// renamed environment has claimed the hosts in its own namespace.
	if op.current == nil || op.current.Spec.Runtime.Namespace == rn.old.Spec.Runtime.Namespace {
		return nil
	}
	drv, err := o.driver(&op.current.Spec)
	if err != nil {
		return err
	}
	hr, ok := drv.(gantry.HostReleaser)
	if !ok {
		return nil
	}
	ref := slotRef(op.current, "")
	ref.Env = op.env
	return r.step(ctx, "release-hosts", fmt.Sprintf("%s's objects of the name %s", rn.displaceTo, op.env), func() (string, error) {
		return "", hr.ReleaseHosts(ctx, ref)
	})
}

// renameOne renames one environment: its record and history, then its
// traffic: the route under the new name takes the new hosts and the
// environment's instances (a health-gated switch, so the hosts of an
// environment being displaced move without a failed request), and the old
// route goes away, unless keepRoute: a displaced environment's old route
// keeps serving its hosts until the environment taking its name switches it.
func (o *Orchestrator) renameOne(ctx context.Context, r *run, env *gantry.Environment, newName string, keepRoute bool) error {
	oldName := env.Name
	var m *gantry.Manifest
	if a := env.ActiveSlot(); a != nil {
		m = o.manifestOfRelease(ctx, env.App, a.ReleaseID)
	}
	err := r.step(ctx, "rename", oldName+" → "+newName, func() (string, error) {
		return "", o.Store.RenameEnvironment(ctx, env.App, oldName, newName)
	})
	if err != nil {
		return err
	}
	env, err = o.Store.FindEnvironment(ctx, env.App, newName)
	if err != nil {
		return err
	}
	env.Spec = *renamedSpec(&env.Spec, m, oldName, newName)
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	return r.step(ctx, "move-traffic", fmt.Sprintf("%s now serves %s", newName, strings.Join(env.Spec.Hosts, ",")), func() (string, error) {
		drv, err := o.driver(&env.Spec)
		if err != nil {
			return "", err
		}
		// The switch under the new name claims the new hosts first (the
		// router's health-gated switch, or the runtime's own objects).
		if a := env.ActiveSlot(); a != nil && m != nil {
			if _, err := o.switchTo(ctx, env, drv, a, m, false); err != nil {
				return "", err
			}
		}
		if keepRoute {
			return "", nil
		}
		if hr, ok := drv.(gantry.HostReleaser); ok {
			ref := slotRef(env, "")
			ref.Env = oldName
			if err := hr.ReleaseHosts(ctx, ref); err != nil {
				return "", err
			}
		}
		// Gantry's router's routes of the old name too (none when the
		// runtime serves the hosts itself; with runtime.traffic: router,
		// the router serves them).
		return "", o.removeRoutes(ctx, env.App, oldName, nil)
	})
}

// DeleteEnvironment stops an environment and removes it, keeping its
// history. An environment that takes traffic is refused unless forced.
func (o *Orchestrator) DeleteEnvironment(ctx context.Context, req gantry.DeleteEnvironmentRequest) error {
	env, err := o.Store.FindEnvironment(ctx, req.App, req.Env)
	if err != nil {
		return err
	}
	if a := env.ActiveSlot(); a != nil && len(a.Instances) > 0 && !req.Force {
		return gantry.Errorf(gantry.EPOLICY, "environment %q takes traffic (%s on slot %s); --force stops it and deletes it", req.Env, a.Version, a.Name)
	}
	l := &gantry.Lock{App: req.App, Env: req.Env, Holder: req.Actor, Operation: "delete", Since: o.now()}
	if err := o.Store.AcquireLock(ctx, l); err != nil {
		return err
	}
	defer o.Store.ReleaseLock(context.WithoutCancel(ctx), req.App, req.Env, req.Actor, true)
	var copied *gantry.DatabaseBinding
	if !req.KeepData {
		if copied, err = o.copiedDatabase(ctx, env); err != nil {
			return err
		}
	}
	if err := o.removeRoutes(ctx, req.App, req.Env, nil); err != nil {
		return err
	}
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return err
	}
	if err := o.stopSlots(ctx, env, drv); err != nil {
		return err
	}
	if !req.KeepData {
		if err := o.dropPreviewDatabase(ctx, env); err != nil {
			return err
		}
		if copied != nil {
			if err := o.Databases.DiscardCopy(ctx, env.DatabaseCopy, *copied); err != nil {
				return err
			}
		}
	}
	if err := o.Store.DeleteEnvironment(ctx, req.App, req.Env); err != nil {
		return err
	}
	if req.Purge {
		return o.purgePersist(ctx, drv, env)
	}
	return nil
}
