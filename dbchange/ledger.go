package dbchange

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gantry-dev/gantry"
)

var ledgerDDL = `
CREATE SCHEMA IF NOT EXISTS ` + ledgerSchema + `;
CREATE TABLE IF NOT EXISTS ` + ledgerSchema + `.ledger (
	id         bigserial PRIMARY KEY,
	app        text NOT NULL,
	env        text NOT NULL,
	release_id text NOT NULL DEFAULT '',
	engine     text NOT NULL DEFAULT '',
	migration  text NOT NULL DEFAULT '',
	phase      text NOT NULL,
	snapshot   text NOT NULL DEFAULT '',
	note       text NOT NULL DEFAULT '',
	at         timestamptz NOT NULL
);
ALTER TABLE ` + ledgerSchema + `.ledger ADD COLUMN IF NOT EXISTS schema_before text NOT NULL DEFAULT '';
ALTER TABLE ` + ledgerSchema + `.ledger ADD COLUMN IF NOT EXISTS schema_after text NOT NULL DEFAULT '';`

func ensureLedger(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, ledgerDDL); err != nil {
		return fmt.Errorf("create ledger: %w", err)
	}
	return nil
}

func (c *Changer) record(ctx context.Context, db *sql.DB, r *gantry.MigrationRecord) error {
	if err := ensureLedger(ctx, db); err != nil {
		return err
	}
	if r.At.IsZero() {
		r.At = c.now()
	}
	err := db.QueryRowContext(ctx, `INSERT INTO `+ledgerSchema+`.ledger
		(app, env, release_id, engine, migration, phase, snapshot, note, schema_before, schema_after, at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING id`,
		r.App, r.Env, r.ReleaseID, r.Engine, r.Migration, r.Phase, r.Snapshot, r.Note, r.Before, r.After, r.At.UTC()).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}

// ledger returns the ledger oldest first (empty when it was never written).
func ledger(ctx context.Context, db *sql.DB) ([]*gantry.MigrationRecord, error) {
	ok, err := tableExists(ctx, db, ledgerSchema, "ledger")
	if err != nil || !ok {
		return []*gantry.MigrationRecord{}, err
	}
	// An older ledger lacks the fingerprint columns until a write adds them.
	if err := ensureLedger(ctx, db); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT id, app, env, release_id, engine, migration, phase, snapshot, note, schema_before, schema_after, at
		FROM `+ledgerSchema+`.ledger ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer rows.Close()
	out := []*gantry.MigrationRecord{}
	for rows.Next() {
		r := &gantry.MigrationRecord{}
		if err := rows.Scan(&r.ID, &r.App, &r.Env, &r.ReleaseID, &r.Engine, &r.Migration, &r.Phase, &r.Snapshot, &r.Note, &r.Before, &r.After, &r.At); err != nil {
			return nil, err
		}
		r.At = r.At.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// lastOf returns the newest ledger record of migration name in phase, or nil.
func lastOf(recs []*gantry.MigrationRecord, name, phase string) *gantry.MigrationRecord {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Migration == name && recs[i].Phase == phase {
			return recs[i]
		}
	}
	return nil
}

func tableExists(ctx context.Context, q querier, schema, table string) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)`, schema, table).Scan(&ok)
	return ok, err
}
