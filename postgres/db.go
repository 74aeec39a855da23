// Package postgres implements gantry.Store on PostgreSQL with pgx, so that
// Gantry's state can live in a database that teams already run with
// replication and failover, rather than in one machine's SQLite file.
//
// It stores and finds; it must not decide. Policy (who may deploy, what a
// lock protects, when a deployment counts as crashed) belongs to deploy/; the
// only rule enforced here is the one a store must make atomic: one lock per
// environment. It keeps the semantics of sqlite/ exactly (codes, ordering,
// paging, lock expiry by the store's clock, the conflict message), checked by
// the shared suite in internal/storetest. It must not import other
// implementation packages (sqlite/ included): only the root package,
// internal/ and third-party packages.
//
// Its tables live in a PostgreSQL schema of their own (Open's schema
// argument), so one database can hold several stores side by side.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ gantry.Store = (*DB)(nil)

// DefaultSchema is the schema Gantry's tables live in when none is given.
const DefaultSchema = "gantry"

// schemaName is what Open accepts as a schema: it is put into SQL as an
// identifier (schemas cannot be bound parameters), so it is kept to names
// that need no quoting.
var schemaName = lazyre.New(`^[a-z_][a-z0-9_]{0,62}$`)

// DB is a gantry.Store on a PostgreSQL database.
//
// Durability: every write is one transaction, and a method returns only
// after its COMMIT has returned. With synchronous_commit on, which Open sets
// for its own sessions whatever the server's default, PostgreSQL flushes the
// commit's WAL to disk (and waits for synchronous standbys, when the server
// has any) before COMMIT returns. So when AppendStep returns, the step is
// durable and the orchestrator may act on it (invariant 4), through a crash
// of Gantry, of PostgreSQL or of the machine. That holds only if the server
// itself runs with fsync on, which is PostgreSQL's default.
type DB struct {
	// Now is the clock for lock expiry and for timestamps the caller left
	// zero. Set it before the DB is used; Open sets time.Now.
	Now func() time.Time

	pool   *pgxpool.Pool
	schema string
	// audit seals the audit chain (audit.go).
	audit auditSeal

	// routeWatch wakes the watchers of the route table (routes.go);
	// closing ends its listening connection before the pool closes.
	routeWatch routeWatch
	closing    chan struct{}
	closed     atomic.Bool

	closeOnce sync.Once
}

// IdleInTransactionTimeout is how long a session of the store may sit in an
// open transaction between statements before PostgreSQL ends it, releasing
// its locks (the lease row's above all).
const IdleInTransactionTimeout = 5 * time.Second

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value connection string), creates schema in it if needed and applies
// the embedded schema migrations that it lacks. An empty schema means
// DefaultSchema.
func Open(ctx context.Context, url, schema string) (*DB, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	if !schemaName.MatchString(schema) {
		return nil, gantry.Errorf(gantry.EINVALID, "postgres: schema name %q: want lowercase letters, digits and _, at most 63", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's message quotes the URL with its password replaced by
		// "xxxxx" (TestOpenRefuses checks that it stays so).
		return nil, gantry.Errorf(gantry.EINVALID, "postgres: %v", err)
	}
	// Every session sees only this store's schema, so the queries name
	// tables without a schema and two stores in one database never meet.
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	// Durability must not depend on the server's default (see DB).
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	// A server that hangs or is frozen inside a transaction must not hold
	// its locks for ever: a fenced write holds the lease row FOR SHARE, so
	// a frozen leader's open transaction would keep every other server
	// from taking the lease. PostgreSQL ends such a session after this
	// bound; the store's transactions do no other I/O, so a live one is
	// never idle that long.
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.Itoa(int(IdleInTransactionTimeout / time.Millisecond))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate schema %s: %w", schema, err)
	}
	return &DB{Now: time.Now, pool: pool, schema: schema, closing: make(chan struct{})}, nil
}

// Close closes the pool's connections. Close may be called more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		close(db.closing)
		db.routeWatch.stop()
		db.pool.Close()
	})
	return nil
}

// Schema returns the PostgreSQL schema the store's tables are in.
func (db *DB) Schema() string { return db.schema }

func (db *DB) now() time.Time { return db.Now().UTC() }

// update runs fn in a read-committed write transaction and commits it unless
// fn fails. Read committed is enough because every read-then-write below
// either locks the row it read (FOR UPDATE) or is a single statement that
// PostgreSQL makes atomic (INSERT … ON CONFLICT, UPDATE … WHERE).
//
// A write whose context carries a fencing token (gantry.WithFence) is
// refused first, in the same transaction, unless the token is the lease's
// epoch: a deposed leader cannot write.
func (db *DB) update(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := checkFence(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// view runs fn in a read-only repeatable-read transaction, so that its
// queries see one snapshot.
func (db *DB) view(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// internal wraps an unexpected error with what was being done. Coded errors
// pass through unchanged so that callers still see their code; a write the
// disk refused becomes the coded disk-full error.
func internal(op string, err error) error {
	var e *gantry.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	if isDiskFull(err) {
		return gantry.DiskFullError("the PostgreSQL state database", fmt.Errorf("postgres: %s: %w", op, err))
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// isDiskFull reports whether err is PostgreSQL's disk_full (53100): the
// server could not extend a file or write WAL. Like SQLite's SQLITE_FULL it
// is the operator's to fix and goes away when space returns, so it gets the
// one coded disk-full error instead of "internal error".
func isDiskFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53100"
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// querier is what the pool and a transaction have in common.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// requireApp returns ENOTFOUND unless the app exists. Writers check it inside
// their transaction for a clear message; the foreign keys are the backstop.
func requireApp(ctx context.Context, q querier, app string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM apps WHERE name = $1`, app).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return gantry.Errorf(gantry.ENOTFOUND, "app %q not found", app)
	}
	return err
}

// Limits on list sizes, shared by the list methods.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// collect reads every row of rows with scan.
func collect[T any](rows pgx.Rows, scan func(pgx.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
