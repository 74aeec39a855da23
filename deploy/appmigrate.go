package deploy

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// Apps that migrate their own schema (migrations engine command, or
// migrate_on_start) change the database in ways Gantry cannot read, so
// Gantry treats every such deploy as incompatible unless the manifest says
// compatible: true. The old release stops taking traffic first (the router
// holds every request), a snapshot is taken, the migration runs (or the
// candidate migrates as it starts), the candidate must be healthy, traffic
// switches and the held requests go to it. Each deploy is recorded in the
// ledger with the schema's fingerprint before and after, so that the
// schema gate can tell which schema each release ran on.

// appMigration is what a deploy of a self-migrating app did so far.
type appMigration struct {
	b      *gantry.DatabaseBinding
	before string
	snap   *gantry.Snapshot
}

// deployMigratingApp is roll's way for an app that migrates itself: with
// hold, every request is held at the router from before the migration
// until the candidate serves; a failure before the switch restores the
// snapshot (nothing else wrote: requests were held) and the route resumes
// on the old release.
func (o *Orchestrator) deployMigratingApp(ctx context.Context, r *run, op *op, hold bool) error {
	b, err := o.dbBinding(o.hooksEnv(op), op.m)
	if err != nil || b == nil {
		if err == nil {
			return o.rollOut(ctx, r, op) // no database support on this server
		}
		return err
	}
	name := gantry.RouteName(r.d.App, r.d.Env)
	var held []string
	// release lets the held requests go, once: right after the switch (so
	// the new release takes them and the watch sees real traffic), or when
	// the deploy ends without one.
	release := func() {
		if len(held) > 0 {
			names := held
			held, op.held = nil, false
			o.letGo(ctx, r, "release-requests", name, names)
		}
	}
	defer release()
	if hold {
		held, err = o.holdRoutes(ctx, r, "hold-requests", name+": the app migrates its own schema; every request waits for the new release", r.d.App, r.d.Env, false, "no route yet: nothing serves, nothing to hold")
		op.held = len(held) > 0
		if err != nil {
			return err
		}
	}
	mig := &appMigration{b: b}
	if err := r.step(ctx, "db-snapshot", "before "+op.rel.Version+" migrates", func() (string, error) {
		if mig.before, err = o.Databases.Fingerprint(ctx, *b); err != nil {
			return "", err
		}
		if mig.snap, err = o.Databases.Snapshot(ctx, *b, "before "+op.rel.Version+" migrates"); err != nil {
			return "", err
		}
		return fmt.Sprintf("snapshot %s; schema %s", mig.snap.Name, shortFP(mig.before)), nil
	}); err != nil {
		return err
	}
	if run := op.m.Database.Migrations.Run; run != "" {
		if err := r.step(ctx, "db-migrate", run, func() (string, error) {
			return o.runAppMigration(ctx, op, b, run)
		}); err != nil {
			return o.restoreAppSchema(ctx, r, op, mig, err)
		}
	}
	// Once traffic is on the new release the schema it runs on is
	// recorded, before the watch: its automatic rollback then meets the
	// schema gate with the ledger as it is.
	switched := false
	op.afterSwitch = func(ctx context.Context) error {
		switched = true
		release()
		return o.recordAppSchema(ctx, r, op, mig, "")
	}
	if err := o.rollOut(ctx, r, op); err != nil {
		if switched {
			// The new release served and took writes: they are kept.
			return err
		}
		return o.restoreAppSchema(ctx, r, op, mig, err)
	}
	if !switched {
		return o.recordAppSchema(ctx, r, op, mig, "")
	}
	return nil
}

// restoreAppSchema puts the database back to the snapshot taken before a
// failed migration, while requests are still held, and returns cause.
func (o *Orchestrator) restoreAppSchema(ctx context.Context, r *run, op *op, mig *appMigration, cause error) error {
	wctx := context.WithoutCancel(ctx)
	err := r.step(wctx, "db-restore", "snapshot "+mig.snap.Name+": "+op.rel.Version+" did not take traffic", func() (string, error) {
		after, err := o.Databases.Fingerprint(wctx, *mig.b)
		if err == nil && after == mig.before {
			return "the schema did not change: nothing to restore", nil
		}
		if _, err := o.Databases.Restore(wctx, *mig.b, mig.snap.Name); err != nil {
			return "", err
		}
		return "restored; the old release serves the schema it knows", nil
	})
	if err != nil {
		return fmt.Errorf("%w (and the database could not be restored from snapshot %s: %s)", cause, mig.snap.Name, gantry.ErrorMessage(err))
	}
	return cause
}

// recordAppSchema writes the ledger row that says which schema op's
// release runs on.
func (o *Orchestrator) recordAppSchema(ctx context.Context, r *run, op *op, mig *appMigration, note string) error {
	return r.step(ctx, "db-record", "", func() (string, error) {
		after, err := o.Databases.Fingerprint(ctx, *mig.b)
		if err != nil {
			return "", err
		}
		what := op.m.Database.Migrations.Run
		if what == "" {
			what = "at start"
		}
		rec := &gantry.MigrationRecord{ReleaseID: op.rel.ID, Engine: gantry.MigrationEngineCommand, Migration: what,
			Phase: gantry.PhaseApp, Before: mig.before, After: after, Note: note}
		if mig.snap != nil {
			rec.Snapshot = mig.snap.Name
		}
		if _, err := o.Databases.Record(ctx, *mig.b, rec); err != nil {
			return "", err
		}
		if after == mig.before {
			return fmt.Sprintf("%s runs on schema %s (unchanged)", op.rel.Version, shortFP(after)), nil
		}
		return fmt.Sprintf("%s runs on schema %s (was %s)", op.rel.Version, shortFP(after), shortFP(mig.before)), nil
	})
}

// runAppMigration runs the app's migration command once, in the release's
// kept files (never the server's directory), with the environment's
// variables and secrets and the database's URL.
func (o *Orchestrator) runAppMigration(ctx context.Context, op *op, b *gantry.DatabaseBinding, command string) (string, error) {
	vars, err := o.instanceVars(o.hooksEnv(op), op.rel, "")
	if err != nil {
		return "", err
	}
	vars[DatabaseURLSecret] = b.URL
	if o.RunMigration != nil {
		return o.RunMigration(ctx, op.rel, command, vars)
	}
	files := newReleaseFiles(o.Artifacts, op.rel)
	defer files.Close()
	dir, err := files.Dir(ctx)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = gantry.CommandEnv(files.Home())
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+vars[k])
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	m, merr := o.secretMasker(ctx)
	if merr != nil {
		out = []byte("(output withheld: the secrets to mask in it could not be read)")
	} else {
		out = []byte(m.Mask(string(out)))
	}
	if err != nil {
		return "", gantry.Errorf(gantry.EFAILED, "migration command %q failed: %v\n%s", command, err, tail(string(out), 20))
	}
	return strings.ReplaceAll(tail(string(out), 5), "\n", " | "), nil
}

// shortFP shortens a fingerprint for the journal.
func shortFP(fp string) string {
	if i := strings.IndexByte(fp, ':'); i >= 0 && len(fp) > i+13 {
		return fp[:i+13]
	}
	return fp
}

// heldState is what interrupted deployments of an environment held: writes
// (maintenance), or every request around an app's own migration.
type heldState struct {
	writes bool
	app    *interruptedApp
}

// interruptedApp is an interrupted deploy of an app that migrates itself:
// its release, and the snapshot taken before the app migrated.
type interruptedApp struct{ release, snap string }

// interruptedAppMigration finds, among the interrupted deployments of env,
// one that took a snapshot before its app migrated and neither recorded
// the outcome nor restored the snapshot; nil when there is none.
func (o *Orchestrator) interruptedAppMigration(ctx context.Context, interrupted []*gantry.Deployment, env string) *interruptedApp {
	for _, d := range interrupted {
		if d.Env != env {
			continue
		}
		full, err := o.Store.FindDeployment(ctx, d.ID)
		if err != nil {
			continue
		}
		var snap string
		closed := false
		for _, s := range full.Steps {
			switch {
			case s.Name == "db-snapshot" && s.State == gantry.StepDone:
				if rest, ok := strings.CutPrefix(s.Detail, "snapshot "); ok {
					snap, _, _ = strings.Cut(rest, ";")
				}
			case (s.Name == "db-record" || s.Name == "db-restore") && s.State == gantry.StepDone:
				closed = true
			}
		}
		if snap != "" && !closed {
			return &interruptedApp{release: d.ReleaseID, snap: snap}
		}
	}
	return nil
}

// restoreInterruptedAppMigration puts the database back to the snapshot an
// interrupted deploy took before its app migrated: the release serving now
// is the old one, and requests were held from the snapshot on, so no write
// is lost.
func (o *Orchestrator) restoreInterruptedAppMigration(ctx context.Context, env *gantry.Environment, m *gantry.Manifest, app *interruptedApp) error {
	b, err := o.dbBinding(env, m)
	if err != nil || b == nil {
		return err
	}
	if _, err := o.Databases.Restore(ctx, *b, app.snap); err != nil {
		return fmt.Errorf("restore the database from before the interrupted migration (snapshot %s): %w", app.snap, err)
	}
	o.logger().Warn("interrupted app migration: database restored", "app", env.App, "env", env.Name, "snapshot", app.snap)
	return nil
}
