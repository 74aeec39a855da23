package postgres

import (
	"context"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

// CreateApproval records an approval and sets a.ID; a zero CreatedAt is set
// to now.
func (db *DB) CreateApproval(ctx context.Context, a *gantry.Approval) error {
	if a.App == "" || a.Env == "" || a.ReleaseID == "" || a.Approver == "" {
		return gantry.Errorf(gantry.EINVALID, "an approval needs an app, an environment, a release and an approver")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = db.now()
	}
	err := db.update(ctx, func(tx pgx.Tx) error {
		if err := requireApp(ctx, tx, a.App); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO approvals (app, env, release_id, fingerprint, approver, role, comment, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			a.App, a.Env, a.ReleaseID, a.Fingerprint, a.Approver, a.Role, a.Comment, timeArg(a.CreatedAt)).Scan(&a.ID)
	})
	return internal("create approval", err)
}

// ListApprovals returns the approvals of a release for an environment, oldest first.
func (db *DB) ListApprovals(ctx context.Context, app, env, releaseID string) ([]*gantry.Approval, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, fingerprint, approver, role, comment, created_at FROM approvals
		WHERE app = $1 AND env = $2 AND release_id = $3 ORDER BY id`, app, env, releaseID)
	if err != nil {
		return nil, internal("list approvals", err)
	}
	out, err := collect(rows, func(r pgx.Rows) (*gantry.Approval, error) {
		a := &gantry.Approval{App: app, Env: env, ReleaseID: releaseID}
		err := r.Scan(&a.ID, &a.Fingerprint, &a.Approver, &a.Role, &a.Comment, timeCol{&a.CreatedAt})
		return a, err
	})
	return out, internal("list approvals", err)
}
