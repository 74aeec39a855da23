package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"github.com/gantry-dev/gantry/internal/schemafiles"
)

// migrationFS holds the schema, one file per version: migrations/NNNN_name.sql.
// A released migration is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]schemafiles.Migration, error) { return schemafiles.Load(migrationFS) }

// migrate applies the migrations newer than the database's user_version,
// each in its own transaction together with the new user_version, so that a
// crash leaves the schema at one version or the next, never in between.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var current int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return err
	}
	if current > len(ms) {
		return fmt.Errorf("schema version %d is newer than this gantry knows (%d): use a newer gantry", current, len(ms))
	}
	for _, m := range ms[current:] {
		if err := apply(ctx, db, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, m schemafiles.Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Another process may have migrated between our read of user_version
	// and this write transaction; the IMMEDIATE transaction makes the
	// re-check and the change atomic.
	var current int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return err
	}
	if current >= m.Version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	// PRAGMA takes no bound parameters; the version is an int we made.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, m.Version)); err != nil {
		return err
	}
	return tx.Commit()
}
