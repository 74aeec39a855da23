package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/gantry-dev/gantry"
)

var _ gantry.AuditLog = (*DB)(nil)

// AppendAudit chains e to the newest entry and stores it. Reading the head
// and writing the entry happen in one IMMEDIATE transaction, so concurrent
// appends cannot fork the chain.
func (db *DB) AppendAudit(ctx context.Context, e *gantry.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = db.now()
	}
	e.Time = e.Time.UTC()
	err := db.update(ctx, func(tx *sql.Tx) error {
		var seq int64
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		e.Seq, e.PrevHash = seq+1, prev
		e.Hash = e.ComputeHash()
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit (seq, time, actor, operation, app, env, release, result, code, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, timeArg(e.Time), e.Actor, e.Operation, e.App, e.Env, e.Release, e.Result, e.Code, e.PrevHash, e.Hash); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, ?, ?)`, e.Seq, e.Hash)
		return err
	})
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
