package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"

	"github.com/gantry-dev/gantry"
)

var _ gantry.AuditLog = (*DB)(nil)

// auditSeal is how the audit chain is sealed: the key (nil: unkeyed) and a
// function told of each entry once it is committed, which records the head
// outside the state.
type auditSeal struct {
	// mu orders appends with their after-commit calls, so that the head
	// recorded outside never moves back between two concurrent appends.
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

// AppendAudit chains e to the newest entry and stores it. Reading the head
// and writing the entry happen in one IMMEDIATE transaction, so concurrent
// appends cannot fork the chain.
func (db *DB) AppendAudit(ctx context.Context, e *gantry.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = db.now()
	}
	e.Time = e.Time.UTC()
	db.audit.mu.Lock()
	defer db.audit.mu.Unlock()
	err := db.update(ctx, func(tx *sql.Tx) error {
		var seq int64
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		e.Seq, e.PrevHash = seq+1, prev
		e.Seal(db.audit.key)
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit (seq, time, actor, operation, app, env, release, result, code, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, timeArg(e.Time), e.Actor, e.Operation, e.App, e.Env, e.Release, e.Result, e.Code, e.PrevHash, e.Hash); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, ?, ?)`, e.Seq, e.Hash)
		return err
	})
	if err == nil && db.audit.appended != nil {
		db.audit.appended(e)
	}
	return internal("append audit", err)
}

// ListAudit returns entries oldest first. Without a limit it returns them
// all, which is what verifying the chain needs.
func (db *DB) ListAudit(ctx context.Context, f gantry.AuditFilter) ([]*gantry.AuditEntry, error) {
	var where []string
	var args []any
	if f.App != "" {
		where, args = append(where, "app = ?"), append(args, f.App)
	}
	if f.Env != "" {
		where, args = append(where, "env = ?"), append(args, f.Env)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, timeArg(f.Since))
	}
	if f.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, f.AfterSeq)
	}
	q := `SELECT seq, time, actor, operation, app, env, release, result, code, prev_hash, hash FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal("list audit", err)
	}
	defer rows.Close()
	var out []*gantry.AuditEntry
	for rows.Next() {
		var e gantry.AuditEntry
		if err := rows.Scan(&e.Seq, timeCol{&e.Time}, &e.Actor, &e.Operation, &e.App, &e.Env, &e.Release, &e.Result, &e.Code, &e.PrevHash, &e.Hash); err != nil {
			return nil, internal("list audit", err)
		}
		out = append(out, &e)
	}
	return out, internal("list audit", rows.Err())
}

// AuditHead returns the newest entry's seq and hash.
func (db *DB) AuditHead(ctx context.Context) (int64, string, error) {
	var seq int64
	var hash string
	err := db.read.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return seq, hash, internal("audit head", err)
}

// AuditKeyed says whether any entry of the chain is sealed with a key, so
// that a server that finds no key file knows not to start a new chain key
// over a keyed chain.
func (db *DB) AuditKeyed(ctx context.Context) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM audit WHERE hash LIKE ? LIMIT 1)`, gantry.AuditMACPrefix+"%").Scan(&n)
	return n > 0, internal("audit keyed", err)
}
