package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/gantry-dev/gantry"
)

// CreateApproval records an approval.
func (db *DB) CreateApproval(ctx context.Context, a *gantry.Approval) error {
	if a.App == "" || a.Env == "" || a.ReleaseID == "" || a.Approver == "" {
		return gantry.Errorf(gantry.EINVALID, "an approval needs an app, an environment, a release and an approver")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = db.now()
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := requireApp(ctx, tx, a.App); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO approvals (app, env, release_id, fingerprint, approver, role, comment, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.App, a.Env, a.ReleaseID, a.Fingerprint, a.Approver, a.Role, a.Comment, timeArg(a.CreatedAt))
		if err != nil {
			return err
		}
		a.ID, err = res.LastInsertId()
		return err
	})
	return internal("create approval", err)
}

// ListApprovals returns the approvals of a release for an environment, oldest first.
func (db *DB) ListApprovals(ctx context.Context, app, env, releaseID string) ([]*gantry.Approval, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, fingerprint, approver, role, comment, created_at FROM approvals
		WHERE app = ? AND env = ? AND release_id = ? ORDER BY id`, app, env, releaseID)
	if err != nil {
		return nil, internal("list approvals", err)
	}
	defer rows.Close()
	var out []*gantry.Approval
	for rows.Next() {
		a := &gantry.Approval{App: app, Env: env, ReleaseID: releaseID}
		if err := rows.Scan(&a.ID, &a.Fingerprint, &a.Approver, &a.Role, &a.Comment, timeCol{&a.CreatedAt}); err != nil {
			return nil, internal("list approvals", err)
		}
		out = append(out, a)
	}
	return out, internal("list approvals", rows.Err())
}

// RenameEnvironment renames an environment and moves its history, its
// approvals and its stored secrets to the new name, in one transaction.
func (db *DB) RenameEnvironment(ctx context.Context, app, oldName, newName string) error {
	if oldName == "" || newName == "" {
		return gantry.Errorf(gantry.EINVALID, "rename needs an old and a new environment name")
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM environments WHERE app = ? AND name = ?`, app, newName).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return gantry.Errorf(gantry.ECONFLICT, "environment %q of app %q already exists", newName, app)
		}
		var doc string
		err := tx.QueryRowContext(ctx, `SELECT doc FROM environments WHERE app = ? AND name = ?`, app, oldName).Scan(&doc)
		if err == sql.ErrNoRows {
			return gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q not found", oldName, app)
		} else if err != nil {
			return err
		}
		env, err := decodeEnvironment(app, newName, doc)
		if err != nil {
			return err
		}
		env.UpdatedAt = db.now()
		newDoc, err := json.Marshal(env.InUTC())
		if err != nil {
			return err
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE environments SET name = ?, doc = ?, updated_at = ? WHERE app = ? AND name = ?`, []any{newName, string(newDoc), timeArg(env.UpdatedAt), app, oldName}},
			{`UPDATE deployments SET env = ? WHERE app = ? AND env = ?`, []any{newName, app, oldName}},
			{`UPDATE approvals SET env = ? WHERE app = ? AND env = ?`, []any{newName, app, oldName}},
			{`UPDATE secrets SET env = ? WHERE app = ? AND env = ?`, []any{newName, app, oldName}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	return internal("rename environment", err)
}
