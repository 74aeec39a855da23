package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// op is one operation on one environment as the engine plans it: which
// release would serve, with which configuration, coming from where, asked
// by whom. Every public operation (Deploy, Promote, Rollback, Clone, Rename,
// Continue) builds one and hands it to execute, which takes the lock, runs
// the gates and then the operation's steps. Nothing in between decides
// policy.
type op struct {
	kind     string // gantry.Kind*
	app, env string
	actor    string
	// rel is the release that will serve on env when op succeeds, and m
	// its manifest; spec is the configuration it will run with there.
	rel  *gantry.Release
	m    *gantry.Manifest
	spec *gantry.EnvironmentSpec
	// current is env's record as it is (nil before its first deploy); it is
	// read again once the lock is held.
	current *gantry.Environment
	// fromEnv names where the release comes from (promote, clone, rename),
	// and source is that environment's record.
	fromEnv string
	source  *gantry.Environment
	// alsoFrozen are further configurations whose freeze windows apply
	// (a clone's source, a rename's environment being renamed).
	alsoFrozen []*gantry.EnvironmentSpec
	// alsoLock names further environments locked for the whole operation.
	alsoLock []string

	breakGlass string
	wait       bool
	// strategy is how the release starts: bluegreen, restart, maintenance, canary.
	strategy string
	// pauseAfter and only are an ordered rollout's options.
	pauseAfter *int
	only       string
	// flip: a warm rollback, the standby slot takes traffic back.
	flip bool
	// force: a rollback whose release predates the schema rolls the
	// database back first.
	force bool

	// The kind-specific parts.
	clone  *cloneOp
	rename *renameOp
	// resume is the paused deployment a Continue goes on with; abort puts
	// its candidate back instead.
	resume      *gantry.Deployment
	abort       bool
	continuedBy string

	// Set by the gates.
	served          *bool
	dbPlan          *gantry.MigrationPlan
	dbRollbackFirst *gantry.DatabaseBinding
	// appRestore: a forced rollback of an app that migrates itself restores
	// this snapshot first. held says the route holds every request now (no
	// preview through it, no second hold).
	appRestore *appRestore
	held       bool
	// afterSwitch, when set, runs once traffic is on the new release, before
	// the watch (a self-migrating app releases its held requests there).
	afterSwitch func(ctx context.Context) error
}

// record is the deployment record op starts.
func (op *op) record() *gantry.Deployment {
	d := &gantry.Deployment{App: op.app, Env: op.env, Kind: op.kind, FromEnv: op.fromEnv, Strategy: op.strategy,
		Actor: op.actor, PauseAfter: op.pauseAfter, Only: op.only}
	if op.rel != nil {
		d.ReleaseID, d.Version = op.rel.ID, op.rel.Version
	}
	if op.flip {
		d.Strategy = "flip"
	}
	return d
}

// execute runs op: the environment's lock (queued behind others with
// op.wait), the gates, the deployment record, the operation's steps, the
// outcome. A refused op leaves nothing behind but its error.
func (o *Orchestrator) execute(ctx context.Context, op *op, progress gantry.Progress) (*gantry.Deployment, error) {
	ctx, err := o.fence(ctx)
	if err != nil {
		return nil, err
	}
	d := op.record()
	if op.resume != nil {
		d = op.resume
	}
	unlock, err := o.lockFor(ctx, op, d, progress)
	if err != nil {
		return nil, err
	}
	// A paused deployment keeps its lock until it goes on: a Continue that
	// is refused leaves it paused, lock and all.
	keep := op.resume != nil
	defer func() {
		if !keep {
			unlock()
		}
	}()
	if err := o.refresh(ctx, op); err != nil {
		return nil, err
	}
	if !op.abort {
		if err := o.checkGates(ctx, op); err != nil {
			return nil, err
		}
	}
	if err := o.checkNeeds(ctx, op); err != nil {
		return nil, err
	}
	r, err := o.start(ctx, d, policySteps(op, d.Actor), progress)
	if err != nil {
		return nil, err
	}
	o.nameOtherLocks(ctx, op, d)
	keep = false
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer o.track(d.ID, cancel)()
	err = o.perform(ctx, r, op)
	if errors.Is(err, errPaused) {
		if err = r.pause(ctx); err == nil {
			keep = true
			return d, nil
		}
	}
	err = r.finish(ctx, err)
	if o.OnFinish != nil {
		o.OnFinish(d)
	}
	if r.unsettled {
		// What the records say may not be what serves: the lock stays
		// until Settle has made them follow the router.
		keep = true
		o.owe(d, true)
	}
	if op.rel != nil && op.kind != gantry.KindRename {
		o.notify(d, op.rel, op.m, o.envAsConfigured(op))
	}
	return d, err
}

// refresh reads op's environment again now that its lock is held: what
// the gates judge is what the operation will change.
func (o *Orchestrator) refresh(ctx context.Context, op *op) error {
	env, err := o.Store.FindEnvironment(ctx, op.app, op.env)
	switch {
	case gantry.ErrorCode(err) == gantry.ENOTFOUND:
		if op.current != nil && op.kind != gantry.KindRename {
			return gantry.Errorf(gantry.ECONFLICT, "environment %q was deleted while the %s waited; run it again", op.env, op.kind)
		}
		op.current = nil
	case err != nil:
		return err
	default:
		op.current = env
	}
	if op.kind == gantry.KindClone && op.current != nil {
		return gantry.Errorf(gantry.ECONFLICT, "environment %q already exists", op.env)
	}
	return nil
}

// perform runs op's steps once the gates let it through.
func (o *Orchestrator) perform(ctx context.Context, r *run, op *op) error {
	switch op.kind {
	case gantry.KindClone:
		return o.performClone(ctx, r, op)
	case gantry.KindRename:
		return o.performRename(ctx, r, op)
	case gantry.KindContinue:
		return o.performContinue(ctx, r, op)
	}
	o.recordPolicy(r, op)
	o.notify(r.d, op.rel, op.m, o.envAsConfigured(op))
	phase := phaseOf(op.kind)
	hooksEnv := o.envAsConfigured(op)
	if err := o.runHooks(ctx, r, op.m, op.rel, hooksEnv, "before_"+phase, gantry.FirstHost(op.spec.Hosts)); err != nil {
		return err
	}
	if op.dbRollbackFirst != nil {
		if err := o.rollBackSchemaFirst(ctx, r, op); err != nil {
			return err
		}
	}
	if op.appRestore != nil {
		release, err := o.restoreAppSnapshot(ctx, r, op)
		defer release()
		if err != nil {
			return err
		}
	}
	if op.flip {
		// A flip back is a switch like any other: what purges a cache
		// after a switch runs after this one too.
		if err := o.flipBack(ctx, r, op); err != nil {
			return err
		}
		if err := o.runHooks(ctx, r, op.m, op.rel, hooksEnv, "after_switch", gantry.FirstHost(op.spec.Hosts)); err != nil {
			return err
		}
	} else if err := o.roll(ctx, r, op); err != nil {
		return err
	}
	return o.runHooks(ctx, r, op.m, op.rel, hooksEnv, "after_"+phase, gantry.FirstHost(op.spec.Hosts))
}

// envAsConfigured is the environment whose vars and secrets hooks and
// notifications see: its record with the configuration the operation
// brings, so that a release that adds a secret gives it to its own hooks.
func (o *Orchestrator) envAsConfigured(op *op) *gantry.Environment {
	env := o.hooksEnv(op)
	if env == nil || op.spec == nil {
		return env
	}
	e := *env
	e.Spec = *op.spec
	return &e
}

// hooksEnv is the environment as hooks see it: its record, or for a first
// deploy one made of the configuration it will have.
func (o *Orchestrator) hooksEnv(op *op) *gantry.Environment {
	if op.current != nil {
		return op.current
	}
	if op.spec == nil { // an operation that failed before it was planned
		return nil
	}
	return &gantry.Environment{App: op.app, Name: op.env, Spec: *op.spec}
}

// roll is the one place that decides how a release reaches an
// environment's traffic: by the runtime's own switch (a SlotDriver), with
// writes held (maintenance), in place (restart), or blue-green by order
// group through the router.
func (o *Orchestrator) roll(ctx context.Context, r *run, op *op) error {
	db := op.m.Database
	if sd, ok := o.slotDriver(op.spec); ok {
		if db.AppMigratesIncompatibly() {
			how := "mark the migrations compatible: true if the change is additive"
			if db.MigrateOnStart {
				how = "if the change is additive, migrate by a command (migrations: {engine: command, run: …, compatible: true}) or by Gantry's migrations (engine pgroll or sql)"
			}
			return gantry.Errorf(gantry.EINVALID, "app %s migrates its own schema: the %s runtime routes its own traffic, so Gantry cannot hold requests while it migrates; %s, or deploy with the process or docker driver", op.app, op.spec.Runtime.Driver, how)
		}
		if db.AppMigrates() {
			// Compatible: snapshot and fingerprints, nothing held.
			return o.deployMigratingApp(ctx, r, op, false)
		}
		return o.deploySlots(ctx, r, sd, op)
	}
	if db.AppMigrates() {
		// The app changes its own schema: snapshot, fingerprints, and
		// (unless compatible) every request held while it migrates.
		return o.deployMigratingApp(ctx, r, op, db.AppMigratesIncompatibly() && !op.held)
	}
	if op.strategy == gantry.StrategyMaintenance {
		return o.deployHoldingWrites(ctx, r, op)
	}
	return o.deployOrdered(ctx, r, op)
}

// rollOut starts op's release on a slot and switches traffic to it: by
// the runtime's own switch (a SlotDriver) or through Gantry's router.
func (o *Orchestrator) rollOut(ctx context.Context, r *run, op *op) error {
	if sd, ok := o.slotDriver(op.spec); ok {
		return o.deploySlots(ctx, r, sd, op)
	}
	return o.deployOrdered(ctx, r, op)
}

// rollBackSchemaFirst is a forced rollback's database step: the release to
// go back to predates the schema, so the database goes back first (the
// snapshot taken before the change is restored), and the release must fit
// it afterwards.
func (o *Orchestrator) rollBackSchemaFirst(ctx context.Context, r *run, op *op) error {
	b := op.dbRollbackFirst
	err := r.step(ctx, "db-rollback", "forced: "+op.rel.Version+" predates the schema", func() (string, error) {
		snap := o.contractSnapshot(ctx, b)
		lost := o.writesSince(ctx, b, snap)
		rec, err := o.Databases.Rollback(ctx, *b, gantry.RollbackOptions{Force: true})
		if err != nil {
			return "", err
		}
		if snap == nil {
			return fmt.Sprintf("%s %s; the writes since the snapshot are gone", rec.Phase, rec.Migration), nil
		}
		return fmt.Sprintf("%s %s; lost %s written since snapshot %s", rec.Phase, rec.Migration, lost, snap.Name), nil
	})
	if err != nil {
		return refuse(GateSchema, "", "the database could not be rolled back for %s: %s", op.rel.Version, gantry.ErrorMessage(err))
	}
	plan, err := o.planFor(ctx, op.current, b, op.rel, op.m, false)
	if err != nil {
		return err
	}
	if plan.Action == gantry.PlanRefuse {
		return refuse(GateSchema, "", "after the database rollback, release %s still does not fit: %s", op.rel.Version, plan.Reason)
	}
	return nil
}

// lockFor takes the environment's lock for op (and the other names op
// locks), queued when op.wait. A Continue finds the lock its paused
// deployment kept, or takes it again.
func (o *Orchestrator) lockFor(ctx context.Context, op *op, d *gantry.Deployment, progress gantry.Progress) (func(), error) {
	var unlocks []func()
	unlockAll := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	release := func(env string) func() {
		return func() {
			err := o.Store.ReleaseLock(context.WithoutCancel(ctx), op.app, env, d.Actor, false)
			if err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
				o.logger().Error("release lock", "app", op.app, "env", env, "error", err)
			}
			if gantry.IsDiskFull(err) && env == op.env && d.ID != 0 {
				// The disk refused the release: Settle frees it once the
				// store writes again, so the lock does not outlive the
				// deployment.
				o.owe(d, false)
			}
		}
	}
	for _, name := range op.alsoLock {
		l := &gantry.Lock{App: op.app, Env: name, Holder: d.Actor, Operation: d.Kind + " " + op.fromEnv + " → " + op.env, Since: o.now()}
		if err := o.Store.AcquireLock(ctx, l); err != nil {
			unlockAll()
			return nil, err
		}
		unlocks = append(unlocks, release(name))
	}
	if op.resume != nil {
		if err := o.reclaimLock(ctx, op.resume); err != nil {
			unlockAll()
			return nil, err
		}
	} else {
		l := &gantry.Lock{App: op.app, Env: op.env, Holder: d.Actor, Operation: d.Kind + " " + d.Version, Since: o.now()}
		if err := o.acquire(ctx, l, op.wait, progress); err != nil {
			unlockAll()
			return nil, err
		}
	}
	unlocks = append(unlocks, release(op.env))
	return unlockAll, nil
}

// start records a new deployment (or marks a resumed one running) and
// names it in the environment's lock, so that a refused operation learns
// which deployment holds the environment. recorded are the steps that
// only record (the policy's, policySteps), journaled done in the same
// write: one synced write where four stood, on a rollback's way to its
// switch.
func (o *Orchestrator) start(ctx context.Context, d *gantry.Deployment, recorded []gantry.Step, progress gantry.Progress) (*run, error) {
	r := &run{o: o, d: d, progress: progress, start: time.Now()}
	d.State = gantry.DeploymentRunning
	if d.ID != 0 {
		if err := o.Store.UpdateDeployment(ctx, d); err != nil {
			return nil, err
		}
		r.emit("", gantry.DeploymentRunning, fmt.Sprintf("continuing %s #%d of %s to %s", d.Kind, d.ID, d.Version, d.Env))
		return r, nil
	}
	d.CreatedAt = o.now()
	for i := range recorded {
		recorded[i].StartedAt, recorded[i].EndedAt = d.CreatedAt, d.CreatedAt
	}
	d.Steps = recorded
	err := o.Store.StartDeployment(ctx, d)
	if err == nil {
		r.recorded = d.Steps
	}
	// The journal's steps join d.Steps as they are reported (run.step).
	d.Steps = nil
	if err != nil {
		return nil, err
	}
	r.emit("", gantry.DeploymentRunning, fmt.Sprintf("%s #%d of %s to %s", d.Kind, d.ID, d.Version, d.Env))
	return r, nil
}
