package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
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
	err := db.update(ctx, func(tx pgx.Tx) error {
		if err := requireApp(ctx, tx, l.App); err != nil {
			return err
		}
		// One statement decides: it inserts the lock, or replaces a row
		// whose TTL has passed, or does nothing. PostgreSQL runs an
		// INSERT … ON CONFLICT atomically, also against another server's
		// concurrent one (the loser waits for the winner's commit and then
		// sees its row), so of simultaneous acquirers exactly one wins.
		// Expiry compares the fixed-width UTC texts, which sort as instants.
		tag, err := tx.Exec(ctx, `INSERT INTO locks (app, env, holder, operation, reason, deployment_id, since, expires)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (app, env) DO UPDATE SET holder = excluded.holder, operation = excluded.operation,
				reason = excluded.reason, deployment_id = excluded.deployment_id, since = excluded.since,
				expires = excluded.expires
			WHERE locks.expires IS NOT NULL AND locks.expires < $9`,
			l.App, l.Env, l.Holder, l.Operation, l.Reason, l.DeploymentID, timeArg(since), timeArg(l.Expires), timeArg(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		// Held. The row was locked by the statement above, so it is still
		// there and still the same when read within this transaction.
		cur, err := findLock(ctx, tx, l.App, l.Env)
		if err != nil {
			return err
		}
		return gantry.LockedError(cur, "")
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
func (db *DB) ReleaseLock(ctx context.Context, app, env, holder string, force bool) error {
	now := db.now()
	err := db.update(ctx, func(tx pgx.Tx) error {
		cur, err := findLockForUpdate(ctx, tx, app, env)
		if errors.Is(err, pgx.ErrNoRows) {
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
		_, err = tx.Exec(ctx, `DELETE FROM locks WHERE app = $1 AND env = $2`, app, env)
		return err
	})
	return internal("release lock", err)
}

// SetLockDeployment records which deployment holder's lock on app's
// environment env is held for. ENOTFOUND when holder does not hold it (an
// expired lock is not held).
func (db *DB) SetLockDeployment(ctx context.Context, app, env, holder string, deploymentID int64) error {
	now := db.now()
	err := db.update(ctx, func(tx pgx.Tx) error {
		return nameLock(ctx, tx, app, env, holder, deploymentID, now)
	})
	return internal("set lock deployment", err)
}

// nameLock names deploymentID in the lock holder holds on app's
// environment env at now, or returns ENOTFOUND.
func nameLock(ctx context.Context, tx pgx.Tx, app, env, holder string, deploymentID int64, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE locks SET deployment_id = $1
		WHERE app = $2 AND env = $3 AND holder = $4 AND (expires IS NULL OR expires >= $5)`,
		deploymentID, app, env, holder, timeArg(now))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q is not locked by %s", env, app, holder)
	}
	return nil
}

// FindLock returns the lock held on app's environment env, or ENOTFOUND when
// there is none or it has expired.
func (db *DB) FindLock(ctx context.Context, app, env string) (*gantry.Lock, error) {
	l, err := findLock(ctx, db.pool, app, env)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !l.HeldAt(db.now())) {
		return nil, gantry.NotLockedError(app, env)
	}
	return l, internal("find lock", err)
}

const lockColumns = `app, env, holder, operation, reason, deployment_id, since, expires`

func findLock(ctx context.Context, q querier, app, env string) (*gantry.Lock, error) {
	return scanLock(q.QueryRow(ctx, `SELECT `+lockColumns+` FROM locks WHERE app = $1 AND env = $2`, app, env))
}

// findLockForUpdate reads the lock and keeps its row locked until the
// transaction ends, so that what is decided from it still holds when acted on.
func findLockForUpdate(ctx context.Context, tx pgx.Tx, app, env string) (*gantry.Lock, error) {
	return scanLock(tx.QueryRow(ctx, `SELECT `+lockColumns+` FROM locks WHERE app = $1 AND env = $2 FOR UPDATE`, app, env))
}

func scanLock(row pgx.Row) (*gantry.Lock, error) {
	var l gantry.Lock
	err := row.Scan(&l.App, &l.Env, &l.Holder, &l.Operation, &l.Reason, &l.DeploymentID, timeCol{&l.Since}, timeCol{&l.Expires})
	if err != nil {
		return nil, err
	}
	return &l, nil
}
