package deploy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/tarball"
)

// DatabaseURLSecret is the secret that binds an environment to its database.
const DatabaseURLSecret = "DATABASE_URL"

// dbBinding returns the environment's database binding, or nil when the
// release declares no database or the server has no changer.
func (o *Orchestrator) dbBinding(env *gantry.Environment, m *gantry.Manifest) (*gantry.DatabaseBinding, error) {
	if o.Databases == nil || m == nil || m.Database == nil {
		return nil, nil
	}
	url, ok := o.secretValue(env.App, env.Name, DatabaseURLSecret)
	if !ok {
		return nil, gantry.Errorf(gantry.EINVALID, "app %s declares a database: environment %s needs the secret %s (gantry secret set %s %s)",
			env.App, env.Name, DatabaseURLSecret, env.Name, DatabaseURLSecret)
	}
	engine := m.Database.Migrations.Engine
	if m.Database.AppMigrates() {
		engine = gantry.MigrationEngineCommand
	}
	return &gantry.DatabaseBinding{App: env.App, Env: env.Name, Engine: engine, URL: url,
		SnapshotDir: gantry.SnapshotDir(o.SnapshotRoot, env.App, env.Name)}, nil
}

// migBinding is dbBinding for the steps of migrations Gantry applies
// itself (plan, expand, contract, rollback): nil for an app that migrates
// its own schema, whose changes Gantry only snapshots and fingerprints.
func (o *Orchestrator) migBinding(env *gantry.Environment, m *gantry.Manifest) (*gantry.DatabaseBinding, error) {
	if m != nil && m.Database.AppMigrates() {
		return nil, nil
	}
	return o.dbBinding(env, m)
}

// migrationsOf unpacks a release's migrations into a temporary directory.
func (o *Orchestrator) migrationsOf(ctx context.Context, rel *gantry.Release, m *gantry.Manifest) (fs.FS, func(), error) {
	a, ok := rel.Artifacts[gantry.MigrationsArtifact]
	if !ok {
		return nil, nil, gantry.Errorf(gantry.EINVALID, "release %s declares a database but carries no migrations: rebuild it", rel.ID)
	}
	dir, err := os.MkdirTemp("", "gantry-migrations-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	rc, err := o.Artifacts.Open(ctx, a.Digest)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	defer rc.Close()
	if err := tarball.Extract(rc, dir); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("migrations of %s: %w", rel.ID, err)
	}
	sub, err := fs.Sub(os.DirFS(dir), m.Database.Migrations.Dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return sub, cleanup, nil
}

// dbChange is what a deploy did to the database.
type dbChange struct {
	b        *gantry.DatabaseBinding
	vars     map[string]string
	expanded bool
}

// expandDatabase plans the release's migrations against the environment's
// database and expands before the candidate starts; the candidate's
// instances then connect through the new schema version while the old slot
// keeps its own.
func (o *Orchestrator) expandDatabase(ctx context.Context, r *run, env *gantry.Environment, rel *gantry.Release, m *gantry.Manifest, maintenance bool) (*dbChange, error) {
	b, err := o.migBinding(env, m)
	if err != nil || b == nil {
		return nil, err
	}
	fsys, cleanup, err := o.migrationsOf(ctx, rel, m)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	change := &dbChange{b: b}
	var plan *gantry.MigrationPlan
	err = r.step(ctx, "db-plan", "", func() (string, error) {
		plan, err = o.Databases.Plan(ctx, *b, gantry.PlanRequest{Release: rel, Migrations: fsys, Live: liveSlots(env), Maintenance: maintenance})
		if err != nil {
			return "", err
		}
		if plan.Action == gantry.PlanRefuse {
			return "", refuse(GateSchema, "", "database: %s", plan.Reason)
		}
		return fmt.Sprintf("%s %v", plan.Action, plan.Pending), nil
	})
	if err != nil {
		return nil, err
	}
	if plan.Action == gantry.PlanExpand || plan.Action == gantry.PlanApply {
		err = r.step(ctx, "db-expand", fmt.Sprintf("%v", plan.Pending), func() (string, error) {
			rec, err := o.Databases.Expand(ctx, *b, plan)
			if err != nil {
				return "", err
			}
			change.expanded = plan.Action == gantry.PlanExpand
			return fmt.Sprintf("%s %s; snapshot %s", rec.Phase, rec.Migration, rec.Snapshot), nil
		})
		if err != nil {
			return nil, err
		}
	}
	change.vars, err = o.Databases.ConnVars(ctx, *b, fsys)
	return change, err
}

// liveSlots says whether an app version may be using env's database: a
// slot runs and is active or standby.
func liveSlots(env *gantry.Environment) bool {
	for _, s := range env.Slots {
		if len(s.Instances) > 0 && (s.State == gantry.SlotActive || s.State == gantry.SlotStandby) {
			return true
		}
	}
	return false
}

// planFor asks the database what a deploy of rel onto env would do to it
// (the schema gate's question), without changing anything.
func (o *Orchestrator) planFor(ctx context.Context, env *gantry.Environment, b *gantry.DatabaseBinding, rel *gantry.Release, m *gantry.Manifest, maintenance bool) (*gantry.MigrationPlan, error) {
	fsys, cleanup, err := o.migrationsOf(ctx, rel, m)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return o.Databases.Plan(ctx, *b, gantry.PlanRequest{Release: rel, Migrations: fsys, Live: liveSlots(env), Maintenance: maintenance})
}

// resumeDatabase is the database change a paused rollout started its first
// groups with: the connection settings of the release's schema version, and
// whether the release expanded the migration in flight (to be rolled back
// if the rollout fails now).
func (o *Orchestrator) resumeDatabase(ctx context.Context, env *gantry.Environment, rel *gantry.Release, m *gantry.Manifest) (*dbChange, error) {
	b, err := o.migBinding(env, m)
	if err != nil || b == nil {
		return nil, err
	}
	fsys, cleanup, err := o.migrationsOf(ctx, rel, m)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	st, err := o.Databases.Status(ctx, *b)
	if err != nil {
		return nil, err
	}
	change := &dbChange{b: b, expanded: st.Active != "" && st.ActiveRelease == rel.ID}
	change.vars, err = o.Databases.ConnVars(ctx, *b, fsys)
	return change, err
}

// rollbackDatabase undoes a migration that its release no longer needs:
// the candidate failed, or traffic flipped back to the old slot.
func (o *Orchestrator) rollbackDatabase(ctx context.Context, r *run, b *gantry.DatabaseBinding) error {
	return r.step(ctx, "db-rollback", "", func() (string, error) {
		rec, err := o.Databases.Rollback(ctx, *b, gantry.RollbackOptions{})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %s", rec.Phase, rec.Migration), nil
	})
}

// contractIfDue completes the active migration once no slot that needs the
// old schema may take traffic. It is a no-op without a database or without
// an active migration.
func (o *Orchestrator) contractIfDue(ctx context.Context, env *gantry.Environment, m *gantry.Manifest) (string, error) {
	b, err := o.migBinding(env, m)
	if err != nil || b == nil {
		return "", err
	}
	st, err := o.Databases.Status(ctx, *b)
	if err != nil {
		return "", err
	}
	if st.Active == "" {
		return "", nil
	}
	if gantry.OldSchemaSlot(env, st.ActiveRelease) != nil {
		return "", nil // still warm: the next stop of the standby contracts
	}
	rec, err := o.Databases.Contract(ctx, *b, gantry.ContractGuard{Env: env})
	if err != nil {
		return "", err
	}
	o.logger().Info("contracted", "app", env.App, "env", env.Name, "migration", rec.Migration, "snapshot", rec.Snapshot)
	return fmt.Sprintf("contract %s; snapshot %s", rec.Migration, rec.Snapshot), nil
}

// Contract completes an environment's active migration now (gantry db
// contract): refused while a slot that needs the old schema may take
// traffic, unless forced.
//
// Force overrides the warm standby only: a contract that would remove the
// schema of the release serving traffic is refused whatever the flags.
func (o *Orchestrator) Contract(ctx context.Context, app, envName string, force bool) (*gantry.MigrationRecord, error) {
	env, b, err := o.envDatabase(ctx, app, envName)
	if err != nil {
		return nil, err
	}
	if force {
		st, err := o.Databases.Status(ctx, *b)
		if err != nil {
			return nil, err
		}
		if a := env.ActiveSlot(); st.Active != "" && a != nil && a.ReleaseID != st.ActiveRelease {
			return nil, refuse(GateSchema, fmt.Sprintf("gantry deploy %s --release %s, then the contract", envName, st.ActiveRelease),
				"migration %s was expanded by release %s, but %s serves traffic on %q and needs the schema the contract would remove", st.Active, st.ActiveRelease, a.Version, envName)
		}
	}
	return o.Databases.Contract(ctx, *b, gantry.ContractGuard{Env: env, Force: force})
}

// connVars returns the variables the candidate's instances get (none
// without a database).
func (c *dbChange) connVars() map[string]string {
	if c == nil {
		return nil
	}
	return c.vars
}

// DatabaseStatus returns the ledger of an environment's database.
func (o *Orchestrator) DatabaseStatus(ctx context.Context, app, envName string) (*gantry.DatabaseStatus, error) {
	_, b, err := o.envDatabase(ctx, app, envName)
	if err != nil {
		return nil, err
	}
	return o.Databases.Status(ctx, *b)
}

// envDatabase returns an environment and its database binding. The
// database belongs to the environment (its DATABASE_URL secret), not to
// the release that serves: after a rollback to a release that declares
// none, it is still the environment's, read with the engine of the latest
// release that declared it (databaseManifest).
func (o *Orchestrator) envDatabase(ctx context.Context, app, envName string) (*gantry.Environment, *gantry.DatabaseBinding, error) {
	env, err := o.Store.FindEnvironment(ctx, app, envName)
	if err != nil {
		return nil, nil, err
	}
	m, err := o.databaseManifest(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	if m == nil {
		if env.ActiveSlot() == nil {
			return nil, nil, gantry.Errorf(gantry.EINVALID, "environment %q runs nothing, and no release that ran on it declares a database", envName)
		}
		return nil, nil, gantry.Errorf(gantry.EINVALID, "environment %q has no database: no release of app %s that ran on it declares one", envName, app)
	}
	b, err := o.dbBinding(env, m)
	if err != nil {
		return nil, nil, err
	}
	return env, b, nil
}

// databaseManifest is the manifest that declares env's database: that of
// the release serving, else of the warm one, else of the latest release
// deployed there that declared one; nil when none did.
func (o *Orchestrator) databaseManifest(ctx context.Context, env *gantry.Environment) (*gantry.Manifest, error) {
	var ids []string
	if a := env.ActiveSlot(); a != nil {
		ids = append(ids, a.ReleaseID)
		if s := env.Slots[gantry.OtherSlot(a.Name)]; s != nil {
			ids = append(ids, s.ReleaseID)
		}
	}
	ds, err := o.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: env.App, Env: env.Name, State: gantry.DeploymentSucceeded, Limit: 100})
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		ids = append(ids, d.ReleaseID)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if m := o.manifestOfRelease(ctx, env.App, id); m != nil && m.Database != nil {
			return m, nil
		}
	}
	return nil, nil
}

// copyPlan is a validated database copy for a clone; made is the copy,
// once made.
type copyPlan struct {
	from, to *gantry.DatabaseBinding
	made     *gantry.CopyRecord
}

// planCopy checks, before anything changes, that a clone with data can be
// made: the source has a database, and the new environment is bound to
// another one by its own DATABASE_URL secret (Gantry creates that database).
func (o *Orchestrator) planCopy(ctx context.Context, src, dst *gantry.Environment, m *gantry.Manifest) (*copyPlan, error) {
	if o.Databases == nil || m.Database == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "--with-data: app %s declares no database", src.App)
	}
	_, from, err := o.envDatabase(ctx, src.App, src.Name)
	if err != nil {
		return nil, err
	}
	to, err := o.dbBinding(dst, m)
	if err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "--with-data: set the new environment's database first: gantry secret set %s %s (Gantry creates that database and copies %s into it)",
			dst.Name, DatabaseURLSecret, src.Name)
	}
	if to.URL == from.URL {
		return nil, gantry.Errorf(gantry.EINVALID, "--with-data: %s's %s is the same database as %s's; give it a database of its own", dst.Name, DatabaseURLSecret, src.Name)
	}
	return &copyPlan{from: from, to: to}, nil
}

// copyData copies the source environment's database into the new
// environment's (W2: testnew as a copy of production), before the new
// environment's instances start, and journals its provenance. keep stores
// the copy's record with the environment as the copy begins (before it
// makes or fills the database) and once it is made, so that a crash at any
// point of it leaves the copy known to recovery.
func (o *Orchestrator) copyData(ctx context.Context, r *run, p *copyPlan, postCopySQL string, keep func(*gantry.CopyRecord) error) error {
	if err := os.MkdirAll(p.to.SnapshotDir, 0o755); err != nil {
		return err
	}
	return r.step(ctx, "copy-data", p.from.Env+" → "+p.to.Env, func() (string, error) {
		rec, err := o.Databases.Copy(ctx, gantry.CopyRequest{From: *p.from, To: *p.to, Method: gantry.CopyDump, PostCopySQL: postCopySQL,
			Begun: keep})
		if err != nil {
			return "", err
		}
		p.made = rec
		if err := keep(rec); err != nil {
			return "", err
		}
		version := shortFP(rec.SchemaVersion)
		if version == "" {
			version = "(none recorded)"
		}
		return fmt.Sprintf("copied %s/%s by %s at schema version %s in %s (post-copy script: %t)",
			rec.FromApp, rec.FromEnv, rec.Method, version, rec.Took.Round(time.Millisecond), rec.PostCopy), nil
	})
}
