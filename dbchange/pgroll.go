package dbchange

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/xataio/pgroll/pkg/backfill"
	"github.com/xataio/pgroll/pkg/migrations"
	"github.com/xataio/pgroll/pkg/roll"
	"github.com/xataio/pgroll/pkg/state"

	"github.com/gantry-dev/gantry"
)

// pgrollEngine runs pgroll migrations (JSON or YAML files in the migrations
// directory) through pgroll's library. pgroll keeps its own state in the
// "pgroll" schema of the database; the version schemas it creates
// (<schema>_<migration>) are what app instances reach through search_path.
type pgrollEngine struct {
	c *Changer
}

func (e *pgrollEngine) name() string { return gantry.MigrationEnginePgroll }

func (e *pgrollEngine) local(fsys fs.FS) ([]localMigration, error) {
	if fsys == nil {
		return nil, nil
	}
	files, err := migrations.CollectFilesFromDir(fsys)
	if err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "read pgroll migrations: %v", err)
	}
	out := make([]localMigration, 0, len(files))
	for _, f := range files {
		raw, err := migrations.ReadRawMigration(fsys, f)
		if err != nil {
			return nil, gantry.Errorf(gantry.EINVALID, "migration %s: %v", f, err)
		}
		if _, err := migrations.ParseMigration(raw); err != nil {
			return nil, gantry.Errorf(gantry.EINVALID, "migration %s: %v", f, err)
		}
		body, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		vs := raw.VersionSchema
		if vs == "" {
			vs = raw.Name
		}
		out = append(out, localMigration{
			src:    gantry.MigrationSource{Name: raw.Name, File: f, Expand: body},
			schema: roll.VersionedSchemaName(e.c.schema(), vs),
		})
	}
	return out, nil
}

// state reads pgroll's history directly rather than through roll.Roll so
// that a read never initialises pgroll's schema in a database.
func (e *pgrollEngine) state(ctx context.Context, db *sql.DB) (applied []string, active string, err error) {
	ok, err := tableExists(ctx, db, pgrollSchema, "migrations")
	if err != nil || !ok {
		return nil, "", err
	}
	rows, err := db.QueryContext(ctx, `SELECT name, done FROM `+pgrollSchema+`.migrations
		WHERE schema = $1 AND migration_type = 'pgroll' ORDER BY created_at, name`, e.c.schema())
	if err != nil {
		return nil, "", fmt.Errorf("read pgroll history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var done bool
		if err := rows.Scan(&name, &done); err != nil {
			return nil, "", err
		}
		applied = append(applied, name)
		if !done {
			active = name
		}
	}
	return applied, active, rows.Err()
}

func (e *pgrollEngine) open(ctx context.Context, b gantry.DatabaseBinding) (*roll.Roll, error) {
	st, err := state.New(ctx, b.URL, pgrollSchema)
	if err != nil {
		return nil, fmt.Errorf("pgroll state: %w", err)
	}
	if err := st.Init(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("pgroll init: %w", err)
	}
	lockMs := int(e.c.LockTimeout / time.Millisecond)
	if lockMs <= 0 {
		lockMs = 500
	}
	m, err := roll.New(ctx, b.URL, e.c.schema(), st, roll.WithLockTimeoutMs(lockMs))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("pgroll: %w", err)
	}
	return m, nil
}

func (e *pgrollEngine) start(ctx context.Context, b gantry.DatabaseBinding, lm localMigration, _ string) error {
	fsys := singleFile{name: lm.src.File, data: lm.src.Expand}
	raw, err := migrations.ReadRawMigration(fsys, lm.src.File)
	if err != nil {
		return gantry.Errorf(gantry.EINVALID, "migration %s: %v", lm.src.Name, err)
	}
	mig, err := migrations.ParseMigration(raw)
	if err != nil {
		return gantry.Errorf(gantry.EINVALID, "migration %s: %v", lm.src.Name, err)
	}
	m, err := e.open(ctx, b)
	if err != nil {
		return err
	}
	defer m.Close()
	var opts []backfill.OptionFn
	if e.c.BatchSize > 0 {
		opts = append(opts, backfill.WithBatchSize(e.c.BatchSize))
	}
	if e.c.BatchDelay > 0 {
		opts = append(opts, backfill.WithBatchDelay(e.c.BatchDelay))
	}
	if err := m.Start(ctx, mig, backfill.NewConfig(opts...)); err != nil {
		var inv migrations.InvalidMigrationError
		if errors.As(err, &inv) {
			return gantry.Errorf(gantry.EINVALID, "migration %s: %v", lm.src.Name, err)
		}
		return gantry.Errorf(gantry.EFAILED, "pgroll start %s: %v", lm.src.Name, err)
	}
	return nil
}

func (e *pgrollEngine) complete(ctx context.Context, b gantry.DatabaseBinding) error {
	m, err := e.open(ctx, b)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Complete(ctx); err != nil {
		return gantry.Errorf(gantry.EFAILED, "pgroll complete: %v", err)
	}
	return nil
}

func (e *pgrollEngine) rollback(ctx context.Context, b gantry.DatabaseBinding, _ *sql.DB) error {
	m, err := e.open(ctx, b)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Rollback(ctx); err != nil {
		return gantry.Errorf(gantry.EFAILED, "pgroll rollback: %v", err)
	}
	return nil
}
