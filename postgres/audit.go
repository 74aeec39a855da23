package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

var _ gantry.KeyedAuditLog = (*DB)(nil)

// auditSeal is how the audit chain is sealed: the key (nil: unkeyed) and a
// function told of each entry once it is committed, which records the head
// outside the state.
type auditSeal struct {
	// mu orders this process's appends with their after-commit calls, so
	// that the head recorded outside never moves back between two of them.
	// Appends of other processes are ordered by the advisory lock.
	mu       sync.Mutex
	key      []byte
	appended func(*gantry.AuditEntry)
}

// SealAudit makes later appends keyed with key (nil: unkeyed, as before the
// key existed) and calls appended with each entry after it is committed.
// Set it before the audit trail is used.
func (db *DB) SealAudit(key []byte, appended func(*gantry.AuditEntry)) {
	db.audit.mu.Lock()
	defer db.audit.mu.Unlock()
	db.audit.key, db.audit.appended = key, appended
}

// AppendAudit chains e to the newest entry and stores it. A transaction-
// scoped advisory lock on the schema serialises appends from every session
// (of this server or another on the same store): reading the head under a
// row lock would not do, because the first append has no head row to lock.
func (db *DB) AppendAudit(ctx context.Context, e *gantry.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = db.now()
	}
	e.Time = e.Time.UTC()
	db.audit.mu.Lock()
	defer db.audit.mu.Unlock()
	err := db.update(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('gantry audit ' || $1))`, db.schema); err != nil {
			return err
		}
		var seq int64
		var prev string
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		e.Seq, e.PrevHash = seq+1, prev
		e.Seal(db.audit.key)
		if err := insertAudit(ctx, tx, e); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash`, e.Seq, e.Hash)
		return err
	})
	if err == nil && db.audit.appended != nil {
		db.audit.appended(e)
	}
	return internal("append audit", err)
}

func insertAudit(ctx context.Context, tx pgx.Tx, e *gantry.AuditEntry) error {
	_, err := tx.Exec(ctx, `INSERT INTO audit (seq, time, actor, operation, app, env, release, result, code, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		e.Seq, timeArg(e.Time), e.Actor, e.Operation, e.App, e.Env, e.Release, e.Result, e.Code, e.PrevHash, e.Hash)
	return err
}

// ListAudit returns entries oldest first. Without a limit it returns them
// all, which is what verifying the chain needs.
func (db *DB) ListAudit(ctx context.Context, f gantry.AuditFilter) ([]*gantry.AuditEntry, error) {
	var where []string
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.App != "" {
		arg("app = ?", f.App)
	}
	if f.Env != "" {
		arg("env = ?", f.Env)
	}
	if !f.Since.IsZero() {
		arg("time >= ?", timeArg(f.Since))
	}
	if f.AfterSeq > 0 {
		arg("seq > ?", f.AfterSeq)
	}
	q := `SELECT seq, time, actor, operation, app, env, release, result, code, prev_hash, hash FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, internal("list audit", err)
	}
	out, err := collect(rows, func(r pgx.Rows) (*gantry.AuditEntry, error) {
		var e gantry.AuditEntry
		err := r.Scan(&e.Seq, timeCol{&e.Time}, &e.Actor, &e.Operation, &e.App, &e.Env, &e.Release, &e.Result, &e.Code, &e.PrevHash, &e.Hash)
		return &e, err
	})
	return out, internal("list audit", err)
}

// AuditHead returns the newest entry's seq and hash.
func (db *DB) AuditHead(ctx context.Context) (int64, string, error) {
	var seq int64
	var hash string
	err := db.pool.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	return seq, hash, internal("audit head", err)
}

// AuditKeyed says whether any entry of the chain is sealed with a key, so
// that a server that finds no key file knows not to start a new chain key
// over a keyed chain.
func (db *DB) AuditKeyed(ctx context.Context) (bool, error) {
	var keyed bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit WHERE hash LIKE $1)`, gantry.AuditMACPrefix+"%").Scan(&keyed)
	return keyed, internal("audit keyed", err)
}
