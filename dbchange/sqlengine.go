package dbchange

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
)

// sqlEngine runs plain SQL migrations for teams that do not use pgroll:
//
//	expand/0002_add_email.sql     run before the candidate starts; must keep
//	                              the old app version working (additive)
//	contract/0002_add_email.sql   optional; run once the old version is gone
//	rollback/0002_add_email.sql   optional; undoes the expand while active
//
// Its version table (gantry.sql_migrations) is part of the app's schema
// state: snapshots and copies carry it. Each file runs in one transaction
// unless it starts with the line "-- gantry:no-transaction" (for CREATE
// INDEX CONCURRENTLY and the like). Both app versions use the same schema.
type sqlEngine struct {
	c *Changer
}

const noTxMarker = "-- gantry:no-transaction"

var sqlStateDDL = `
CREATE SCHEMA IF NOT EXISTS ` + stateSchema + `;
CREATE TABLE IF NOT EXISTS ` + stateSchema + `.sql_migrations (
	name          text PRIMARY KEY,
	release_id    text NOT NULL DEFAULT '',
	contract_sql  text NOT NULL DEFAULT '',
	rollback_sql  text NOT NULL DEFAULT '',
	expanded_at   timestamptz NOT NULL DEFAULT now(),
	contracted_at timestamptz
);`

func (e *sqlEngine) name() string { return gantry.MigrationEngineSQL }

func (e *sqlEngine) local(fsys fs.FS) ([]localMigration, error) {
	if fsys == nil {
		return nil, nil
	}
	read := func(dir string) (map[string][]byte, error) {
		out := map[string][]byte{}
		ents, err := fs.ReadDir(fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil
		} else if err != nil {
			return nil, gantry.Errorf(gantry.EINVALID, "read migrations %s/: %v", dir, err)
		}
		for _, ent := range ents {
			if ent.IsDir() || !strings.HasSuffix(ent.Name(), ".sql") {
				continue
			}
			b, err := fs.ReadFile(fsys, path.Join(dir, ent.Name()))
			if err != nil {
				return nil, err
			}
			out[strings.TrimSuffix(ent.Name(), ".sql")] = b
		}
		return out, nil
	}
	expand, err := read("expand")
	if err != nil {
		return nil, err
	}
	contract, err := read("contract")
	if err != nil {
		return nil, err
	}
	rollback, err := read("rollback")
	if err != nil {
		return nil, err
	}
	for _, m := range []map[string][]byte{contract, rollback} {
		for name := range m {
			if _, ok := expand[name]; !ok {
				return nil, gantry.Errorf(gantry.EINVALID, "migration %s has no expand/%s.sql", name, name)
			}
		}
	}
	names := make([]string, 0, len(expand))
	for name := range expand {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]localMigration, 0, len(names))
	for _, name := range names {
		out = append(out, localMigration{
			src:    gantry.MigrationSource{Name: name, File: path.Join("expand", name+".sql"), Expand: expand[name], Contract: contract[name], Rollback: rollback[name]},
			schema: e.c.schema(),
		})
	}
	return out, nil
}

func (e *sqlEngine) state(ctx context.Context, db *sql.DB) (applied []string, active string, err error) {
	ok, err := tableExists(ctx, db, stateSchema, "sql_migrations")
	if err != nil || !ok {
		return nil, "", err
	}
	rows, err := db.QueryContext(ctx, `SELECT name, contracted_at IS NULL AND contract_sql <> ''
		FROM `+stateSchema+`.sql_migrations ORDER BY name`)
	if err != nil {
		return nil, "", fmt.Errorf("read sql migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var pending bool
		if err := rows.Scan(&name, &pending); err != nil {
			return nil, "", err
		}
		applied = append(applied, name)
		if pending {
			active = name
		}
	}
	return applied, active, rows.Err()
}

// exec runs one migration file and the version-table change that records
// it, atomically unless the file opts out of a transaction.
func execMigration(ctx context.Context, db *sql.DB, body []byte, record string, args ...any) error {
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte(noTxMarker)) {
		if len(bytes.TrimSpace(body)) > 0 {
			if _, err := db.ExecContext(ctx, string(body)); err != nil {
				return err
			}
		}
		_, err := db.ExecContext(ctx, record, args...)
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(bytes.TrimSpace(body)) > 0 {
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, record, args...); err != nil {
		return err
	}
	return tx.Commit()
}

func (e *sqlEngine) start(ctx context.Context, b gantry.DatabaseBinding, lm localMigration, releaseID string) error {
	db, err := openDB(b)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, sqlStateDDL); err != nil {
		return fmt.Errorf("create sql version table: %w", err)
	}
	err = execMigration(ctx, db, lm.src.Expand, `INSERT INTO `+stateSchema+`.sql_migrations (name, release_id, contract_sql, rollback_sql)
		VALUES ($1, $2, $3, $4)`, lm.src.Name, releaseID, string(lm.src.Contract), string(lm.src.Rollback))
	if err != nil {
		return gantry.Errorf(gantry.EFAILED, "expand/%s.sql: %v", lm.src.Name, err)
	}
	return nil
}

func (e *sqlEngine) activeRow(ctx context.Context, db *sql.DB) (name, contractSQL, rollbackSQL string, err error) {
	err = db.QueryRowContext(ctx, `SELECT name, contract_sql, rollback_sql FROM `+stateSchema+`.sql_migrations
		WHERE contracted_at IS NULL AND contract_sql <> '' ORDER BY name DESC LIMIT 1`).Scan(&name, &contractSQL, &rollbackSQL)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", gantry.Errorf(gantry.EINVALID, "no migration is active")
	}
	return name, contractSQL, rollbackSQL, err
}

func (e *sqlEngine) complete(ctx context.Context, b gantry.DatabaseBinding) error {
	db, err := openDB(b)
	if err != nil {
		return err
	}
	defer db.Close()
	name, contractSQL, _, err := e.activeRow(ctx, db)
	if err != nil {
		return err
	}
	err = execMigration(ctx, db, []byte(contractSQL), `UPDATE `+stateSchema+`.sql_migrations SET contracted_at = now() WHERE name = $1`, name)
	if err != nil {
		return gantry.Errorf(gantry.EFAILED, "contract/%s.sql: %v", name, err)
	}
	return nil
}

func (e *sqlEngine) rollback(ctx context.Context, b gantry.DatabaseBinding, db *sql.DB) error {
	name, _, rollbackSQL, err := e.activeRow(ctx, db)
	if err != nil {
		return err
	}
	if strings.TrimSpace(rollbackSQL) == "" {
		return gantry.Errorf(gantry.EPOLICY, "migration %s has no rollback/%s.sql: its expand stays (it is compatible with the previous release, so rolling back the app alone is safe)", name, name)
	}
	err = execMigration(ctx, db, []byte(rollbackSQL), `DELETE FROM `+stateSchema+`.sql_migrations WHERE name = $1`, name)
	if err != nil {
		return gantry.Errorf(gantry.EFAILED, "rollback/%s.sql: %v", name, err)
	}
	return nil
}
