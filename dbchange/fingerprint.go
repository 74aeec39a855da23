package dbchange

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"

	"github.com/gantry-dev/gantry"
)

// catalogQuery lists the app's schema as one sorted set of lines: tables
// and their columns with types and nullability, constraints with their
// definitions, and indexes with theirs. Gantry's own bookkeeping (the
// ledger, pgroll's state) and the system's schemas are left out, so that
// recording a deploy does not change what it records. Sorting makes the
// digest independent of catalog order (OIDs, attnum after a drop).
const catalogQuery = `
SELECT line FROM (
	SELECT format('column %s.%s.%s %s %s', n.nspname, c.relname, a.attname,
		format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'not null' ELSE 'null' END) AS line
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname <> ALL($1)
	UNION ALL
	SELECT format('constraint %s.%s.%s %s', n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid))
	FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname <> ALL($1)
	UNION ALL
	SELECT format('index %s.%s %s', n.nspname, c.relname, pg_get_indexdef(c.oid))
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'i' AND n.nspname <> ALL($1)
) s ORDER BY line`

// excludedSchemas are never part of an app's schema.
func excludedSchemas() []string {
	return []string{"pg_catalog", "information_schema", "pg_toast", ledgerSchema, "pgroll"}
}

// Fingerprint returns "sha256:<hex>" over the app's catalog (catalogQuery).
func (c *Changer) Fingerprint(ctx context.Context, b gantry.DatabaseBinding) (string, error) {
	db, err := openDB(b)
	if err != nil {
		return "", err
	}
	defer db.Close()
	return fingerprint(ctx, db)
}

func fingerprint(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, catalogQuery, pqArray(excludedSchemas()))
	if err != nil {
		return "", fmt.Errorf("read the schema's catalog: %w", err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		h.Write([]byte(line))
		h.Write([]byte{'\n'})
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// pqArray renders names as a PostgreSQL text[] literal; the names are
// Gantry's constants, never user input, but they are quoted anyway.
func pqArray(names []string) string {
	out := "{"
	for i, n := range names {
		if i > 0 {
			out += ","
		}
		out += `"` + n + `"`
	}
	return out + "}"
}

// Record appends an app's own migration (PhaseApp) to the ledger.
func (c *Changer) Record(ctx context.Context, b gantry.DatabaseBinding, rec *gantry.MigrationRecord) (*gantry.MigrationRecord, error) {
	db, err := openDB(b)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	r := *rec
	r.App, r.Env = b.App, b.Env
	if r.Engine == "" {
		r.Engine = b.Engine
	}
	return &r, c.record(ctx, db, &r)
}

// Ledger returns the ledger oldest first, whatever the engine.
func (c *Changer) Ledger(ctx context.Context, b gantry.DatabaseBinding) ([]*gantry.MigrationRecord, error) {
	db, err := openDB(b)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return ledger(ctx, db)
}
