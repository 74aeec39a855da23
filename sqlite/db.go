// Package sqlite implements gantry.Store on one SQLite file, with the pure-Go
// driver modernc.org/sqlite, so that `gantry server` needs nothing installed.
//
// It stores and finds; it must not decide. Policy (who may deploy, what a
// lock protects, when a deployment counts as crashed) belongs to deploy/; the
// only rule enforced here is the one a store must make atomic: one lock per
// environment. It must not import other implementation packages, and it is
// checked by the shared suite in internal/storetest like every other Store.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var _ gantry.Store = (*DB)(nil)

const (
	// busyTimeoutMS bounds how long a connection waits for a lock held by
	// another connection. Within one DB writers queue in database/sql (there
	// is one writer connection), so this only matters when a second process
	// or a second DB has the same file open.
	busyTimeoutMS = 10000
	// readConns is the size of the reader pool. In WAL mode readers never
	// block the writer nor each other.
	readConns = 4
)

// DB is a gantry.Store on an SQLite database file.
//
// Durability: the file is in WAL mode with synchronous=FULL, so every commit
// syncs the WAL before it returns. NORMAL would survive a crash of the
// process but could lose the last commits on power loss, and the journal's
// promise (a step is written before it acts, invariant 4) must hold through
// both. The cost is one fsync per write, a handful per deployment step.
type DB struct {
	// Now is the clock for lock expiry and for timestamps the caller left
	// zero. Set it before the DB is used; Open sets time.Now.
	Now func() time.Time

	path string
	// write has exactly one connection: SQLite admits one writer at a time,
	// and queuing writers in database/sql rather than in SQLite's busy
	// handler means concurrent writers of this DB never see SQLITE_BUSY.
	// Its transactions BEGIN IMMEDIATE so a read-then-write transaction
	// (AcquireLock) holds the write lock from its first read.
	write *sql.DB
	// read is a pool of query-only connections; a read can never write by
	// mistake, and reads do not wait behind writes.
	read *sql.DB

	// routesWake is closed when the route table changes (routes.go).
	routesMu   sync.Mutex
	routesWake chan struct{}
	// audit seals the audit chain (audit.go).
	audit auditSeal

	closeOnce sync.Once
	closeErr  error
}

// Open opens the database at path, creating the file if needed, and applies
// the embedded schema migrations that it lacks. The parent directory must
// exist.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "sqlite: empty database path")
	}
	uri := "file:" + uriEscaper.Replace(path)
	write, err := openPool(ctx, uri, fmt.Sprintf(
		"_txlock=immediate&_busy_timeout=%d&_foreign_keys=1&_journal_mode=WAL&_synchronous=FULL", busyTimeoutMS), 1)
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate state database %s: %w", path, err)
	}
	read, err := openPool(ctx, uri, fmt.Sprintf("_busy_timeout=%d&_query_only=1", busyTimeoutMS), readConns)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	return &DB{Now: time.Now, path: path, write: write, read: read}, nil
}

// uriEscaper escapes what would end the path part of an SQLite URI filename.
var uriEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func openPool(ctx context.Context, uri, params string, conns int) (*sql.DB, error) {
	pool, err := sql.Open("sqlite", uri+"?"+params)
	if err != nil {
		return nil, err
	}
	pool.SetMaxOpenConns(conns)
	pool.SetMaxIdleConns(conns)
	// Ping opens a first connection, which applies the pragmas: a file that
	// cannot be opened or is not a database fails here, not at first use.
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Close closes the database. Closing the last connection checkpoints the WAL
// into the main file. Close may be called more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closeErr = errors.Join(db.read.Close(), db.write.Close())
	})
	return db.closeErr
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

func (db *DB) now() time.Time { return db.Now().UTC() }

// update runs fn in a write transaction and commits it unless fn fails.
func (db *DB) update(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return internal("begin", err)
	}
	defer tx.Rollback()
	// A fenced write (gantry.WithFence) is refused in its own
	// transaction unless its token is the lease's epoch.
	if err := checkFence(ctx, tx); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return internal("commit", err)
	}
	return nil
}

// view runs fn in a read transaction, so that its queries see one snapshot.
func (db *DB) view(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// internal wraps an unexpected error with what was being done. Coded errors
// pass through unchanged so that callers still see their code; a write the
// disk refused becomes the coded disk-full error, which the operator can act
// on, instead of an "internal error".
func internal(op string, err error) error {
	var e *gantry.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	if diskRefused(err) {
		return gantry.DiskFullError("the state database", fmt.Errorf("sqlite: %s: %w", op, err))
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// SQLite's primary result codes for a write the filesystem refused: its
// unix VFS turns ENOSPC into SQLITE_FULL, and a file on a read-only
// filesystem is opened read-only, so writes get SQLITE_READONLY.
const (
	sqliteReadOnly = 8
	sqliteFull     = 13
)

// diskRefused reports whether err is SQLite's or the system's word for a
// full, over-quota or read-only disk.
func diskRefused(err error) bool {
	if gantry.IsDiskFull(err) {
		return true
	}
	var c interface{ Code() int }
	if errors.As(err, &c) {
		switch c.Code() & 0xff {
		case sqliteFull, sqliteReadOnly:
			return true
		}
	}
	return false
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// requireApp returns ENOTFOUND unless the app exists. Writers check it inside
// their transaction for a clear message; the foreign keys are the backstop.
func requireApp(ctx context.Context, q querier, app string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM apps WHERE name = ?`, app).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
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
