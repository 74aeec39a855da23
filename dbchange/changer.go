package dbchange

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// Changer implements gantry.DatabaseChanger on PostgreSQL.
type Changer struct {
	Logger *slog.Logger
	// Now is the clock of ledger records and snapshot names.
	Now func() time.Time
	// BinDir holds pg_dump and pg_restore ("": $PATH, then Debian's
	// /usr/lib/postgresql/15/bin).
	BinDir string
	// Jobs is pg_dump/pg_restore's -j (default 2).
	Jobs int
	// Schema is the app's schema (default "public").
	Schema string
	// BatchSize and BatchDelay tune pgroll's backfill (defaults: pgroll's,
	// 1000 rows and no delay).
	BatchSize  int
	BatchDelay time.Duration
	// LockTimeout bounds how long pgroll's DDL waits for a table lock, so a
	// long transaction of the app fails the migration instead of queueing
	// every writer behind it (default 500ms).
	LockTimeout time.Duration
}

var _ gantry.DatabaseChanger = (*Changer)(nil)

// engine is one way of running migrations.
type engine interface {
	name() string
	// local reads a release's migrations, in order.
	local(fsys fs.FS) ([]localMigration, error)
	// state returns the migrations applied to the database, in order, and
	// the one expanded but not yet contracted ("" if none).
	state(ctx context.Context, db *sql.DB) (applied []string, active string, err error)
	start(ctx context.Context, b gantry.DatabaseBinding, lm localMigration, releaseID string) error
	complete(ctx context.Context, b gantry.DatabaseBinding) error
	rollback(ctx context.Context, b gantry.DatabaseBinding, db *sql.DB) error
}

func (c *Changer) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func (c *Changer) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Changer) schema() string {
	if c.Schema != "" {
		return c.Schema
	}
	return "public"
}

func (c *Changer) engine(b gantry.DatabaseBinding) (engine, error) {
	switch b.Engine {
	case gantry.MigrationEnginePgroll, "":
		return &pgrollEngine{c: c}, nil
	case gantry.MigrationEngineSQL:
		return &sqlEngine{c: c}, nil
	}
	return nil, gantry.Errorf(gantry.EINVALID, "unknown migrations engine %q (want pgroll or sql)", b.Engine)
}

// Plan compares the release's migrations with the database's history.
func (c *Changer) Plan(ctx context.Context, b gantry.DatabaseBinding, req gantry.PlanRequest) (*gantry.MigrationPlan, error) {
	eng, err := c.engine(b)
	if err != nil {
		return nil, err
	}
	local, err := eng.local(req.Migrations)
	if err != nil {
		return nil, err
	}
	db, err := openDB(b)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	applied, active, err := eng.state(ctx, db)
	if err != nil {
		return nil, err
	}
	p := &gantry.MigrationPlan{App: b.App, Env: b.Env, Engine: eng.name(), Action: gantry.PlanNone, Schema: c.schema()}
	if req.Release != nil {
		p.ReleaseID = req.Release.ID
	}
	if len(local) > 0 {
		p.Schema = local[len(local)-1].schema
	}
	for _, lm := range local {
		p.Migrations = append(p.Migrations, lm.src.Name)
	}
	refuse := func(format string, args ...any) (*gantry.MigrationPlan, error) {
		p.Action, p.Reason = gantry.PlanRefuse, fmt.Sprintf(format, args...)
		return p, nil
	}
	for i := 0; i < len(local) && i < len(applied); i++ {
		if local[i].src.Name != applied[i] {
			return refuse("the database's migration #%d is %s but the release's is %s: the histories differ", i+1, applied[i], local[i].src.Name)
		}
	}
	if len(local) < len(applied) {
		missing := applied[len(local):]
		if len(missing) == 1 && missing[0] == active {
			return p, nil // the expand kept the schema this release uses
		}
		return refuse("the release predates migration(s) %s, already contracted: the schema it needs is gone. "+
			"Rolling back across a contract needs `%s` first, which restores the snapshot taken before the contract and loses the writes made since; then run this again",
			strings.Join(missing, ", "), gantry.CommandLine("db rollback", b.Env, b.App, "--force"))
	}
	pending := local[len(applied):]
	if len(pending) == 0 {
		return p, nil
	}
	p.Sources = map[string]gantry.MigrationSource{}
	for _, lm := range pending {
		p.Pending = append(p.Pending, lm.src.Name)
		p.Sources[lm.src.Name] = lm.src
	}
	switch {
	case active != "":
		return refuse("migration %s is still active: its contract is due before %s can start. Run `%s` once the slot running the previous release has stopped",
			active, p.Pending[0], gantry.CommandLine("db contract", b.Env, b.App))
	case !req.Live || req.Maintenance:
		p.Action = gantry.PlanApply
	case len(pending) > 1:
		return refuse("the release brings %d pending migrations (%s); with the app live only one migration per release step keeps the previous release working. Deploy a release that adds only %s first",
			len(pending), strings.Join(p.Pending, ", "), p.Pending[0])
	default:
		p.Action = gantry.PlanExpand
	}
	return p, nil
}

// Expand takes a snapshot, then starts the plan's migration; for PlanApply
// it starts and completes every pending migration in order.
func (c *Changer) Expand(ctx context.Context, b gantry.DatabaseBinding, p *gantry.MigrationPlan) (*gantry.MigrationRecord, error) {
	switch p.Action {
	case gantry.PlanNone:
		return nil, nil
	case gantry.PlanExpand, gantry.PlanApply:
	default:
		return nil, gantry.Errorf(gantry.EPOLICY, "%s", p.Reason)
	}
	eng, err := c.engine(b)
	if err != nil {
		return nil, err
	}
	db, release, err := openLocked(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	// The plan may be stale: another deploy may have run since.
	applied, active, err := eng.state(ctx, db)
	if err != nil {
		return nil, err
	}
	if active != "" {
		return nil, gantry.Errorf(gantry.ECONFLICT, "migration %s is active on %s/%s: contract or roll it back first", active, b.App, b.Env)
	}
	for _, name := range p.Pending {
		for _, a := range applied {
			if a == name {
				return nil, gantry.Errorf(gantry.ECONFLICT, "migration %s was applied since the plan was made: plan again", name)
			}
		}
	}
	snap, err := c.snapshotLocked(ctx, b, "before expand "+p.Pending[0])
	if err != nil {
		return nil, err
	}
	var last *gantry.MigrationRecord
	for _, name := range p.Pending {
		src := p.Sources[name]
		lm := localMigration{src: src}
		log := c.logger().With("app", b.App, "env", b.Env, "migration", name)
		log.Info("expand")
		if err := eng.start(ctx, b, lm, p.ReleaseID); err != nil {
			log.Error("expand failed", "err", err)
			// pgroll leaves a failed start active; undo it so the database
			// is back where the snapshot was taken.
			if _, act, serr := eng.state(ctx, db); serr == nil && act == name {
				if rerr := eng.rollback(ctx, b, db); rerr != nil {
					log.Error("rollback after failed expand", "err", rerr)
				}
			}
			_ = c.record(ctx, db, &gantry.MigrationRecord{App: b.App, Env: b.Env, ReleaseID: p.ReleaseID, Engine: eng.name(),
				Migration: name, Phase: gantry.PhaseRollback, Snapshot: snap.Name, Note: "expand failed: " + gantry.ErrorMessage(err)})
			return nil, err
		}
		last = &gantry.MigrationRecord{App: b.App, Env: b.Env, ReleaseID: p.ReleaseID, Engine: eng.name(),
			Migration: name, Phase: gantry.PhaseExpand, Snapshot: snap.Name}
		if err := c.record(ctx, db, last); err != nil {
			return nil, err
		}
		if p.Action != gantry.PlanApply {
			continue
		}
		if _, act, err := eng.state(ctx, db); err != nil {
			return nil, err
		} else if act == "" {
			continue // a SQL migration without a contract step is complete
		}
		if err := eng.complete(ctx, b); err != nil {
			return nil, err
		}
		last = &gantry.MigrationRecord{App: b.App, Env: b.Env, ReleaseID: p.ReleaseID, Engine: eng.name(),
			Migration: name, Phase: gantry.PhaseContract, Snapshot: snap.Name, Note: "applied with no app live"}
		if err := c.record(ctx, db, last); err != nil {
			return nil, err
		}
	}
	return last, nil
}

// Contract takes a snapshot, then completes the active migration, unless
// the guard shows a slot that may still use the old schema.
func (c *Changer) Contract(ctx context.Context, b gantry.DatabaseBinding, guard gantry.ContractGuard) (*gantry.MigrationRecord, error) {
	eng, err := c.engine(b)
	if err != nil {
		return nil, err
	}
	db, release, err := openLocked(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	_, active, err := eng.state(ctx, db)
	if err != nil {
		return nil, err
	}
	if active == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "no migration is active on %s/%s: nothing to contract", b.App, b.Env)
	}
	recs, err := ledger(ctx, db)
	if err != nil {
		return nil, err
	}
	releaseID := ""
	if r := lastOf(recs, active, gantry.PhaseExpand); r != nil {
		releaseID = r.ReleaseID
	}
	if !guard.Force {
		if guard.Env == nil {
			return nil, gantry.Errorf(gantry.EPOLICY, "contract of %s refused: the state of the environment's slots is unknown", active)
		}
		if s := gantry.OldSchemaSlot(guard.Env, releaseID); s != nil {
			warm := ""
			if !s.WarmUntil.IsZero() {
				warm = fmt.Sprintf(", kept warm until %s", s.WarmUntil.UTC().Format(time.RFC3339))
			}
			return nil, gantry.Errorf(gantry.EPOLICY, "contract of %s refused: slot %s (%s, release %s%s) may still take traffic and needs the old schema; the contract runs once it has stopped",
				active, s.Name, s.State, s.Version, warm)
		}
	}
	snap, err := c.snapshotLocked(ctx, b, "before contract "+active)
	if err != nil {
		return nil, err
	}
	c.logger().Info("contract", "app", b.App, "env", b.Env, "migration", active)
	if err := eng.complete(ctx, b); err != nil {
		return nil, err
	}
	rec := &gantry.MigrationRecord{App: b.App, Env: b.Env, ReleaseID: releaseID, Engine: eng.name(),
		Migration: active, Phase: gantry.PhaseContract, Snapshot: snap.Name}
	if guard.Force {
		rec.Note = "forced"
	}
	return rec, c.record(ctx, db, rec)
}

// Rollback undoes the active migration. With no migration active, the last
// step was a contract: rolling back across it restores the snapshot taken
// before it, which loses writes, so it needs opts.Force.
func (c *Changer) Rollback(ctx context.Context, b gantry.DatabaseBinding, opts gantry.RollbackOptions) (*gantry.MigrationRecord, error) {
	eng, err := c.engine(b)
	if err != nil {
		return nil, err
	}
	db, release, err := openLocked(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	recs, err := ledger(ctx, db)
	if err != nil {
		return nil, err
	}
	_, active, err := eng.state(ctx, db)
	if err != nil {
		return nil, err
	}
	note := ""
	if active == "" {
		var contract *gantry.MigrationRecord
		for i := len(recs) - 1; i >= 0 && contract == nil; i-- {
			switch recs[i].Phase {
			case gantry.PhaseContract:
				contract = recs[i]
			case gantry.PhaseExpand, gantry.PhaseRollback, gantry.PhaseRestore, gantry.PhaseCopy:
				i = -1
			}
		}
		if contract == nil || contract.Snapshot == "" {
			return nil, gantry.Errorf(gantry.EINVALID, "no migration is active on %s/%s: nothing to roll back", b.App, b.Env)
		}
		if !opts.Force {
			return nil, gantry.Errorf(gantry.EPOLICY, "migration %s was contracted at %s: rolling back across the contract restores snapshot %s and loses every write made since then. `%s` does that",
				contract.Migration, contract.At.Format(time.RFC3339), contract.Snapshot, gantry.CommandLine("db rollback", b.Env, b.App, "--force"))
		}
		if err := c.restoreLocked(ctx, b, db, contract.Snapshot); err != nil {
			return nil, err
		}
		note = fmt.Sprintf("across the contract of %s: restored %s, writes since %s lost", contract.Migration, contract.Snapshot, contract.At.Format(time.RFC3339))
		if err := c.record(ctx, db, &gantry.MigrationRecord{App: b.App, Env: b.Env, Engine: eng.name(), Migration: contract.Migration,
			Phase: gantry.PhaseRestore, Snapshot: contract.Snapshot, Note: "rollback --force"}); err != nil {
			return nil, err
		}
		if _, active, err = eng.state(ctx, db); err != nil {
			return nil, err
		} else if active == "" {
			// The snapshot predates the migration's expand (a migration
			// applied whole, with no app live or under maintenance): the
			// restore alone undid it.
			return &gantry.MigrationRecord{App: b.App, Env: b.Env, ReleaseID: contract.ReleaseID, Engine: eng.name(),
				Migration: contract.Migration, Phase: gantry.PhaseRestore, Snapshot: contract.Snapshot, Note: note}, nil
		}
	}
	releaseID := ""
	if r := lastOf(recs, active, gantry.PhaseExpand); r != nil {
		releaseID = r.ReleaseID
	}
	c.logger().Info("rollback", "app", b.App, "env", b.Env, "migration", active)
	if err := eng.rollback(ctx, b, db); err != nil {
		return nil, err
	}
	rec := &gantry.MigrationRecord{App: b.App, Env: b.Env, ReleaseID: releaseID, Engine: eng.name(),
		Migration: active, Phase: gantry.PhaseRollback, Note: note}
	return rec, c.record(ctx, db, rec)
}

// ConnVars returns what an instance of a release whose migrations are
// migrations gets: the schema of the latest migration it knows.
func (c *Changer) ConnVars(ctx context.Context, b gantry.DatabaseBinding, migrations fs.FS) (map[string]string, error) {
	eng, err := c.engine(b)
	if err != nil {
		return nil, err
	}
	local, err := eng.local(migrations)
	if err != nil {
		return nil, err
	}
	schema := c.schema()
	if len(local) > 0 {
		schema = local[len(local)-1].schema
	}
	if schema != c.schema() {
		db, err := openDB(b)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		ok, err := schemaExists(ctx, db, schema)
		if err != nil {
			return nil, fmt.Errorf("check schema %s: %w", schema, err)
		}
		if !ok {
			return nil, gantry.Errorf(gantry.EFAILED, "schema %s does not exist in %s/%s: the release's migration %s is not expanded (or was contracted away)",
				schema, b.App, b.Env, local[len(local)-1].src.Name)
		}
	}
	u, err := withSearchPath(b.URL, schema)
	if err != nil {
		return nil, err
	}
	return map[string]string{"DATABASE_URL": u, "GANTRY_DB_SCHEMA": schema}, nil
}

// Status returns the ledger and the migration in flight.
func (c *Changer) Status(ctx context.Context, b gantry.DatabaseBinding) (*gantry.DatabaseStatus, error) {
	if b.Engine == gantry.MigrationEngineCommand {
		// The app keeps its own history: the ledger is all Gantry knows,
		// and the schema version is the catalog's fingerprint.
		recs, err := c.Ledger(ctx, b)
		if err != nil {
			return nil, err
		}
		fp, err := c.Fingerprint(ctx, b)
		return &gantry.DatabaseStatus{App: b.App, Env: b.Env, Engine: b.Engine, SchemaVersion: fp, Ledger: recs}, err
	}
	eng, err := c.engine(b)
	if err != nil {
		return nil, err
	}
	db, err := openDB(b)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	applied, active, err := eng.state(ctx, db)
	if err != nil {
		return nil, err
	}
	recs, err := ledger(ctx, db)
	if err != nil {
		return nil, err
	}
	st := &gantry.DatabaseStatus{App: b.App, Env: b.Env, Engine: eng.name(), Active: active, Ledger: recs}
	if len(applied) > 0 {
		st.SchemaVersion = applied[len(applied)-1]
	}
	if r := lastOf(recs, active, gantry.PhaseExpand); active != "" && r != nil {
		st.ActiveRelease = r.ReleaseID
	}
	return st, nil
}
