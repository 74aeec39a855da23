package dbchange

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"github.com/lib/pq"

	"github.com/gantry-dev/gantry"
)

// lockKey is the advisory lock that serialises migrations, restores and
// copies on one database (advisory locks are scoped to their database).
const lockKey = "gantry.dbchange"

// Schemas of our own inside the app's database. The ledger lives apart from
// everything else so that snapshots (taken with -N ledgerSchema) never roll
// it back; stateSchema (the SQL engine's version table) is part of the
// app's schema state and is dumped and restored with it.
const (
	ledgerSchema = "gantry_ledger"
	stateSchema  = "gantry"
	pgrollSchema = "pgroll"
)

func openDB(b gantry.DatabaseBinding) (*sql.DB, error) {
	if b.URL == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "environment %s of %s has no database URL", b.Env, b.App)
	}
	db, err := sql.Open("postgres", b.URL)
	if err != nil {
		return nil, fmt.Errorf("open database of %s/%s: %w", b.App, b.Env, err)
	}
	db.SetMaxOpenConns(4)
	return db, nil
}

// lock holds the database's advisory lock on a connection of its own until
// the returned func is called: session-level, so it survives the DDL and the
// external pg_dump/pg_restore processes that run meanwhile.
func lock(ctx context.Context, db *sql.DB) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext($1))`, lockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("wait for the database's migration lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(hashtext($1))`, lockKey)
		conn.Close()
	}, nil
}

// withSearchPath returns rawURL with the search_path set for every session
// through the libpq "options" parameter, which lib/pq, pgx and libpq all honour.
func withSearchPath(rawURL, schema string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", gantry.Errorf(gantry.EINVALID, "the database URL is not a postgres:// URL")
	}
	q := u.Query()
	opts := strings.TrimSpace(q.Get("options"))
	var kept []string
	for _, f := range strings.Fields(opts) {
		if !strings.Contains(f, "search_path=") {
			kept = append(kept, f)
		}
	}
	// "-c" and its argument are separate fields; drop a dangling "-c".
	var clean []string
	for i := 0; i < len(kept); i++ {
		if kept[i] == "-c" && (i+1 == len(kept) || kept[i+1] == "-c") {
			continue
		}
		clean = append(clean, kept[i])
	}
	clean = append(clean, "-c", "search_path="+schema)
	q.Set("options", strings.Join(clean, " "))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// withDatabase returns rawURL pointing at database name on the same server.
func withDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", gantry.Errorf(gantry.EINVALID, "the database URL does not parse")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// databaseName returns the database a URL points at.
func databaseName(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", gantry.Errorf(gantry.EINVALID, "the database URL does not parse")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", gantry.Errorf(gantry.EINVALID, "the database URL names no database")
	}
	return name, nil
}

func quoteIdent(s string) string { return pq.QuoteIdentifier(s) }

// schemaExists reports whether a schema exists in db.
func schemaExists(ctx context.Context, q querier, name string) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&ok)
	return ok, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// openLocked opens the binding's database and takes its migration lock;
// release unlocks and closes it. Every operation that changes the database
// starts here, so migrations, snapshots and restores never overlap.
func openLocked(ctx context.Context, b gantry.DatabaseBinding) (db *sql.DB, release func(), err error) {
	if db, err = openDB(b); err != nil {
		return nil, nil, err
	}
	unlock, err := lock(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, func() { unlock(); db.Close() }, nil
}
