package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// The gantry db verbs, run by the server: it holds each environment's
// database binding (the DATABASE_URL secret) and the one snapshot directory
// (gantry.SnapshotDir under SnapshotRoot), so the CLI needs neither.

var _ gantry.DatabaseService = (*Orchestrator)(nil)

// dbActor names who runs a db verb, for the environment's lock: the
// identity the API established, else the server itself.
func dbActor(ctx context.Context) string {
	if id := gantry.IdentityFrom(ctx); id != nil && id.Name != "" {
		return id.Name
	}
	return systemActor
}

// lockForDatabase takes the environment's deployment lock for a db verb
// that changes the database or its snapshots, so that it never runs beside
// a deployment, which may be expanding or contracting the same database.
// A held lock is ECONFLICT naming its holder.
func (o *Orchestrator) lockForDatabase(ctx context.Context, app, envName, op string) (func(), error) {
	if _, err := o.Store.FindEnvironment(ctx, app, envName); err != nil {
		return nil, err
	}
	who := dbActor(ctx)
	l := &gantry.Lock{App: app, Env: envName, Holder: who, Operation: "db " + op, Since: o.now()}
	if err := o.Store.AcquireLock(ctx, l); err != nil {
		return nil, err
	}
	return func() {
		if err := o.Store.ReleaseLock(context.WithoutCancel(ctx), app, envName, who, false); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			o.logger().Error("release lock", "app", app, "env", envName, "error", err)
		}
	}, nil
}

// databaseOf returns the environment and the binding of its database.
func (o *Orchestrator) databaseOf(ctx context.Context, app, envName string) (*gantry.Environment, *gantry.DatabaseBinding, error) {
	if o.Databases == nil {
		return nil, nil, gantry.Errorf(gantry.EINVALID, "this server has no database support: use `gantry db` with --url")
	}
	return o.envDatabase(ctx, app, envName)
}

// DatabaseContract is `gantry db contract` through the server: Contract
// under the environment's lock, so that a contract by hand never runs
// beside a deployment, which may be expanding or switching.
func (o *Orchestrator) DatabaseContract(ctx context.Context, app, envName string, force bool) (*gantry.MigrationRecord, error) {
	if o.Databases == nil {
		_, _, err := o.databaseOf(ctx, app, envName)
		return nil, err
	}
	unlock, err := o.lockForDatabase(ctx, app, envName, "contract")
	if err != nil {
		return nil, err
	}
	defer unlock()
	return o.Contract(ctx, app, envName, force)
}

// Snapshots lists an environment's database snapshots, newest first: those
// the server took before each expand and contract, and manual ones.
func (o *Orchestrator) Snapshots(ctx context.Context, app, envName string) ([]*gantry.Snapshot, error) {
	_, b, err := o.databaseOf(ctx, app, envName)
	if err != nil {
		return nil, err
	}
	return o.Databases.Snapshots(ctx, *b)
}

// Snapshot takes a snapshot of an environment's database now. It holds the
// lock because taking one prunes the oldest beyond the retention.
func (o *Orchestrator) Snapshot(ctx context.Context, app, envName, reason string) (*gantry.Snapshot, error) {
	if strings.TrimSpace(reason) == "" {
		reason = "manual"
	}
	var snap *gantry.Snapshot
	err := o.underLock(ctx, app, envName, "snapshot", func(b *gantry.DatabaseBinding) (err error) {
		snap, err = o.Databases.Snapshot(ctx, *b, reason)
		return err
	})
	return snap, err
}

// Restore replaces an environment's database with one of its snapshots.
func (o *Orchestrator) Restore(ctx context.Context, app, envName, name string) (*gantry.MigrationRecord, error) {
	var rec *gantry.MigrationRecord
	err := o.underLock(ctx, app, envName, "restore", func(b *gantry.DatabaseBinding) (err error) {
		o.logger().Warn("database restore", "app", app, "env", envName, "snapshot", name, "actor", dbActor(ctx))
		rec, err = o.Databases.Restore(ctx, *b, name)
		return err
	})
	return rec, err
}

// underLock runs fn with the binding of an environment's database while
// the environment's lock is held for a db verb op.
func (o *Orchestrator) underLock(ctx context.Context, app, envName, op string, fn func(*gantry.DatabaseBinding) error) error {
	unlock, err := o.lockForDatabase(ctx, app, envName, op)
	if err != nil {
		return err
	}
	defer unlock()
	_, b, err := o.databaseOf(ctx, app, envName)
	if err != nil {
		return err
	}
	return fn(b)
}

// dbRollbackTarget is the migration a database rollback would undo.
type dbRollbackTarget struct {
	migration  string
	expandedBy string // the release whose deploy expanded it
	// contract is set when the migration was contracted: rolling back
	// crosses it by restoring the snapshot taken before it.
	contract *gantry.MigrationRecord
}

// rollbackTarget reads, as the changer's Rollback does, what a rollback
// would undo: the active migration, else the migration of a contract that
// is the latest change. nil: nothing (the changer says so).
func rollbackTarget(st *gantry.DatabaseStatus) *dbRollbackTarget {
	if st.Active != "" {
		return &dbRollbackTarget{migration: st.Active, expandedBy: st.ActiveRelease}
	}
	for i := len(st.Ledger) - 1; i >= 0; i-- {
		r := st.Ledger[i]
		switch r.Phase {
		case gantry.PhaseContract:
			if r.Snapshot == "" {
				return nil
			}
			t := &dbRollbackTarget{migration: r.Migration, contract: r}
			for j := i - 1; j >= 0; j-- {
				if e := st.Ledger[j]; e.Migration == r.Migration && e.Phase == gantry.PhaseExpand {
					t.expandedBy = e.ReleaseID
					break
				}
			}
			return t
		case gantry.PhaseExpand, gantry.PhaseRollback, gantry.PhaseRestore, gantry.PhaseCopy:
			return nil
		}
	}
	return nil
}

// slotNeeds reports whether the release a slot runs relies on migration t:
// it is the release that expanded it, or its migrations include it (a later
// release that brought no migration of its own).
func (o *Orchestrator) slotNeeds(ctx context.Context, b *gantry.DatabaseBinding, s *gantry.Slot, t *dbRollbackTarget) (bool, error) {
	if s == nil || s.ReleaseID == "" {
		return false, nil
	}
	if s.ReleaseID == t.expandedBy {
		return true, nil
	}
	rel, err := o.Store.FindRelease(ctx, b.App, s.ReleaseID)
	if err != nil {
		return false, err
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return false, err
	}
	if m.Database == nil {
		return false, nil
	}
	fsys, cleanup, err := o.migrationsOf(ctx, rel, m)
	if err != nil {
		return false, err
	}
	defer cleanup()
	p, err := o.Databases.Plan(ctx, *b, gantry.PlanRequest{Release: rel, Migrations: fsys, Live: true})
	if err != nil {
		return false, err
	}
	return slices.Contains(p.Migrations, t.migration), nil
}

// DatabaseRollback undoes an environment's active migration (gantry db
// rollback), under the environment's lock, keeping the environment's
// record true to the database: no slot may go on claiming a schema that
// the rollback drops.
//
//   - While the active slot's release needs the migration, the rollback is
//     refused: `gantry rollback ENV` flips traffic back first.
//   - Across a contract, only with force; when the active release still
//     needs the migration, force undoes the contract alone (the snapshot
//     taken before it is restored, the migration is active again, both
//     schemas exist), which is what lets `gantry rollback ENV` run next.
//   - A standby slot whose release needs the migration is stopped first.
func (o *Orchestrator) DatabaseRollback(ctx context.Context, app, envName string, force bool) (*gantry.MigrationRecord, error) {
	unlock, err := o.lockForDatabase(ctx, app, envName, "rollback")
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Read under the lock: no deployment changes the slots from here on.
	env, b, err := o.databaseOf(ctx, app, envName)
	if err != nil {
		return nil, err
	}
	if b.Engine == gantry.MigrationEngineCommand {
		return nil, gantry.Errorf(gantry.EINVALID, "app %s migrates its own database: Gantry cannot undo one of its migrations, only restore the snapshot taken before it. Go back to the release that ran on it with `gantry rollback %s --force --app %s` (it restores that snapshot and switches), or restore one by hand with `gantry db snapshots %s --app %s` and `gantry db restore %s SNAPSHOT --app %s`",
			app, envName, app, envName, app, envName, app)
	}
	st, err := o.Databases.Status(ctx, *b)
	if err != nil {
		return nil, err
	}
	t := rollbackTarget(st)
	if t == nil || (t.contract != nil && !force) {
		// Nothing to roll back, or a contract in the way: the changer
		// refuses and says what --force would lose.
		return o.Databases.Rollback(ctx, *b, gantry.RollbackOptions{Force: force})
	}
	active := env.ActiveSlot()
	needs, err := o.slotNeeds(ctx, b, active, t)
	if err != nil {
		return nil, err
	}
	if needs && t.contract == nil {
		return nil, gantry.Errorf(gantry.EPOLICY, "database rollback of %s/%s refused: slot %s runs %s, which needs migration %s (the rollback drops the schema it uses). Run %s first",
			app, envName, active.Name, active.Version, t.migration, o.flipBackAdvice(ctx, env, active, t))
	}
	if needs {
		return o.undoContract(ctx, b, env, active, t)
	}
	// Slots that need the migration stop before it goes: afterwards they
	// would serve errors. A rollback that then fails leaves a cold standby,
	// not a broken one.
	var stopped []string
	for _, name := range []string{gantry.SlotBlue, gantry.SlotGreen} {
		s := env.Slots[name]
		if s == nil || s == active || len(s.Instances) == 0 {
			continue
		}
		n, err := o.slotNeeds(ctx, b, s, t)
		if err != nil {
			return nil, err
		}
		if !n {
			continue
		}
		if err := o.stopForSchema(ctx, env, s); err != nil {
			return nil, fmt.Errorf("stop slot %s, which needs migration %s: %w", s.Name, t.migration, err)
		}
		stopped = append(stopped, fmt.Sprintf("stopped slot %s (%s), which needed %s", s.Name, s.Version, t.migration))
	}
	rec, err := o.Databases.Rollback(ctx, *b, gantry.RollbackOptions{Force: force})
	if err != nil {
		return nil, err
	}
	if rec.Note != "" {
		stopped = append([]string{rec.Note}, stopped...)
	}
	rec.Note = strings.Join(stopped, "; ")
	o.logger().Info("database rollback", "app", app, "env", envName, "migration", rec.Migration, "actor", dbActor(ctx), "note", rec.Note)
	return rec, nil
}

// undoContract restores the snapshot taken before a contract, because the
// active release still needs the contracted migration: rolling it back too
// would drop the schema that release serves from. The migration is active
// again, so the previous release can be deployed beside it.
func (o *Orchestrator) undoContract(ctx context.Context, b *gantry.DatabaseBinding, env *gantry.Environment, active *gantry.Slot, t *dbRollbackTarget) (*gantry.MigrationRecord, error) {
	rec, err := o.Databases.Restore(ctx, *b, t.contract.Snapshot)
	if err != nil {
		return nil, err
	}
	rec.Migration = t.migration
	rec.Note = fmt.Sprintf("contract of %s undone, writes since %s lost; %s is active again because slot %s runs %s, which needs it. Next: %s",
		t.migration, t.contract.At.UTC().Format(time.RFC3339), t.migration, active.Name, active.Version, o.flipBackAdvice(ctx, env, active, t))
	o.logger().Warn("database contract undone", "app", b.App, "env", b.Env, "migration", t.migration, "snapshot", t.contract.Snapshot)
	return rec, nil
}

// flipBackAdvice says, as commands that work as printed, how to put the
// release before the active one back and then roll migration t back: a
// warm flip-back to the standby rolls back the migration its left-behind
// release expanded by itself; otherwise the previous release is named
// (the standby may run the active release too) and a db rollback follows.
func (o *Orchestrator) flipBackAdvice(ctx context.Context, env *gantry.Environment, active *gantry.Slot, t *dbRollbackTarget) string {
	dbRollback := fmt.Sprintf("`%s`", gantry.CommandLine("db rollback", env.Name, env.App))
	standby := env.Slots[gantry.OtherSlot(active.Name)]
	if standby != nil && standby.State == gantry.SlotStandby && len(standby.Instances) > 0 && standby.ReleaseID != active.ReleaseID {
		flip := fmt.Sprintf("`%s`: it flips traffic back to %s", gantry.CommandLine("rollback", env.Name, env.App), standby.Version)
		if active.ReleaseID == t.expandedBy {
			return flip + ", and rolls " + t.migration + " back with it"
		}
		return flip + "; then " + dbRollback
	}
	redeploy := fmt.Sprintf("`%s`: it redeploys the previous release", gantry.CommandLine("rollback", env.Name, env.App))
	if prev, err := o.previousRelease(ctx, env); err == nil {
		if rel, err := o.Store.FindRelease(ctx, env.App, prev); err == nil {
			redeploy = fmt.Sprintf("`%s`: it redeploys %s", gantry.CommandLine("rollback", env.Name, env.App, "--to", rel.Version), rel.Version)
		}
	}
	return redeploy + "; then " + dbRollback
}

// stopForSchema stops a slot whose release needs a schema about to go, as
// the end of keep_warm would (reapSlot), and records it stopped.
func (o *Orchestrator) stopForSchema(ctx context.Context, env *gantry.Environment, s *gantry.Slot) error {
	drv, err := o.driver(&env.Spec)
	if err != nil {
		return err
	}
	o.logger().Info("stopping slot before a database rollback", "app", env.App, "env", env.Name, "slot", s.Name, "release", s.ReleaseID)
	return o.scaleDownSlot(ctx, env, drv, s, nil)
}

// contractBeforeExpand is the contract a blue-green deploy makes before its
// own expand (a contract still due blocks the next expand), except when
// the release being deployed predates the active migration: a rollback to
// it, after `gantry db rollback --force` undid a contract, needs that
// migration's old schema kept, and contracting it again would leave the
// release refused.
func (o *Orchestrator) contractBeforeExpand(ctx context.Context, r *run, env *gantry.Environment, rel *gantry.Release, m *gantry.Manifest) error {
	if active := o.activeMigrationUnknownTo(ctx, env, rel, m); active != "" {
		return r.step(ctx, "db-contract", "when no slot needs the old schema", func() (string, error) {
			return fmt.Sprintf("%s kept: %s predates it", active, rel.Version), nil
		})
	}
	return o.contractStep(ctx, r, env, m)
}

// activeMigrationUnknownTo returns the database's active migration when
// rel's migrations do not include it, else "" (also when that cannot be
// told: the contract then runs as it always did).
func (o *Orchestrator) activeMigrationUnknownTo(ctx context.Context, env *gantry.Environment, rel *gantry.Release, m *gantry.Manifest) string {
	if o.Databases == nil || m == nil || m.Database == nil {
		return ""
	}
	b, err := o.migBinding(env, m)
	if err != nil || b == nil {
		return ""
	}
	st, err := o.Databases.Status(ctx, *b)
	if err != nil || st.Active == "" {
		return ""
	}
	fsys, cleanup, err := o.migrationsOf(ctx, rel, m)
	if err != nil {
		return ""
	}
	defer cleanup()
	p, err := o.Databases.Plan(ctx, *b, gantry.PlanRequest{Release: rel, Migrations: fsys, Live: true})
	if err != nil || len(p.Migrations) == 0 || slices.Contains(p.Migrations, st.Active) {
		return ""
	}
	return st.Active
}
