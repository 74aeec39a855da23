package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// AcquireLock takes the lock of l.App's environment l.Env for l.Holder; a
// zero Since is set to now. While another lock is held it returns ECONFLICT
// naming that lock's holder, operation and since when. A lock whose Expires
// has passed (by db.Now) is replaced. Locks are not reentrant: the same
// holder asking twice gets ECONFLICT too, since two operations by one actor
// must not overlap either.
func (db *DB) AcquireLock(ctx context.Context, l *gantry.Lock) error {
	if l.App == "" || l.Env == "" || l.Holder == "" {
		return gantry.Errorf(gantry.EINVALID, "lock needs an app, an environment and a holder")
	}
	now := db.now()
	since := l.Since
	if since.IsZero() {
		since = now
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := requireApp(ctx, tx, l.App); err != nil {
			return err
		}
		cur, err := findLock(ctx, tx, l.App, l.Env)
		if err == nil && cur.HeldAt(now) {
			return gantry.LockedError(cur, "")
		} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// The single writer connection and BEGIN IMMEDIATE make the read
		// above and this write one atomic step.
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO locks
			(app, env, holder, operation, reason, deployment_id, since, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			l.App, l.Env, l.Holder, l.Operation, l.Reason, l.DeploymentID, timeArg(since), timeArg(l.Expires))
		return err
	})
	if err != nil {
		return internal("acquire lock", err)
	}
	l.Since = since
	return nil
}

// ReleaseLock frees app's environment env if holder holds its lock, or
// whoever holds it when force. It returns ENOTFOUND when the environment is
// not locked (an expired lock of another holder counts as none) and
// ECONFLICT when another holder has it.
//
// Force never takes the lock of a deployment that is running or paused:
// that is ECONFLICT too, decided in the same transaction as the delete, so
// that a lock another deployment took since the caller looked is not taken
// from under it either (invariant 12). The engine releases its own locks
// unforced, once the deployment's outcome is recorded.
func (db *DB) ReleaseLock(ctx context.Context, app, env, holder string, force bool) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		cur, err := findLock(ctx, tx, app, env)
		if errors.Is(err, sql.ErrNoRows) {
			return gantry.NotLockedError(app, env)
		} else if err != nil {
			return err
		}
		if cur.Holder != holder && !force {
			if !cur.HeldAt(now) {
				return gantry.NotLockedError(app, env)
			}
			return gantry.LockedError(cur, fmt.Sprintf(", not by %s; unlock with force to take it away", holder))
		}
		if force && cur.DeploymentID != 0 {
			var state string
			err := tx.QueryRowContext(ctx, `SELECT state FROM deployments WHERE id = ?`, cur.DeploymentID).Scan(&state)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if state == gantry.DeploymentRunning || state == gantry.DeploymentPaused {
				return gantry.LockedError(cur, fmt.Sprintf(", which is %s: its lock is not taken away; `gantry cancel %s` stops it", state, env))
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM locks WHERE app = ? AND env = ?`, app, env)
		return err
	})
	return internal("release lock", err)
}

// SetLockDeployment records which deployment holder's lock on app's
// environment env is held for.
func (db *DB) SetLockDeployment(ctx context.Context, app, env, holder string, deploymentID int64) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return nameLock(ctx, tx, app, env, holder, deploymentID, now)
	})
	return internal("set lock deployment", err)
}

// nameLock names deploymentID in the lock holder holds on app's
// environment env at now, or returns ENOTFOUND.
func nameLock(ctx context.Context, tx *sql.Tx, app, env, holder string, deploymentID int64, now time.Time) error {
	cur, err := findLock(ctx, tx, app, env)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (cur.Holder != holder || !cur.HeldAt(now))) {
		return gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q is not locked by %s", env, app, holder)
	} else if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE locks SET deployment_id = ? WHERE app = ? AND env = ?`, deploymentID, app, env)
	return err
}

// FindLock returns the lock held on app's environment env, or ENOTFOUND when
// there is none or it has expired.
func (db *DB) FindLock(ctx context.Context, app, env string) (*gantry.Lock, error) {
	l, err := findLock(ctx, db.read, app, env)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !l.HeldAt(db.now())) {
		return nil, gantry.NotLockedError(app, env)
	}
	return l, internal("find lock", err)
}

func findLock(ctx context.Context, q querier, app, env string) (*gantry.Lock, error) {
	var l gantry.Lock
	err := q.QueryRowContext(ctx, `SELECT app, env, holder, operation, reason, deployment_id, since, expires
		FROM locks WHERE app = ? AND env = ?`, app, env).Scan(
		&l.App, &l.Env, &l.Holder, &l.Operation, &l.Reason, &l.DeploymentID, timeCol{&l.Since}, timeCol{&l.Expires})
	if err != nil {
		return nil, err
	}
	return &l, nil
}
