package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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
		if err == nil && held(cur, now) {
			return lockedError(cur, "")
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
			return notLocked(app, env)
		} else if err != nil {
			return err
		}
		if cur.Holder != holder && !force {
			if !held(cur, now) {
				return notLocked(app, env)
			}
			return lockedError(cur, fmt.Sprintf(", not by %s; unlock with force to take it away", holder))
		}
		if force && cur.DeploymentID != 0 {
			var state string
			err := tx.QueryRowContext(ctx, `SELECT state FROM deployments WHERE id = ?`, cur.DeploymentID).Scan(&state)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if state == gantry.DeploymentRunning || state == gantry.DeploymentPaused {
				return lockedError(cur, fmt.Sprintf(", which is %s: its lock is not taken away; `gantry cancel %s` stops it", state, env))
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
		cur, err := findLock(ctx, tx, app, env)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (cur.Holder != holder || !held(cur, now))) {
			return gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q is not locked by %s", env, app, holder)
		} else if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE locks SET deployment_id = ? WHERE app = ? AND env = ?`, deploymentID, app, env)
		return err
	})
	return internal("set lock deployment", err)
}

// FindLock returns the lock held on app's environment env, or ENOTFOUND when
// there is none or it has expired.
func (db *DB) FindLock(ctx context.Context, app, env string) (*gantry.Lock, error) {
	l, err := findLock(ctx, db.read, app, env)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !held(l, db.now())) {
		return nil, notLocked(app, env)
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

// held reports whether l still holds at now: it has no TTL, or its TTL has
// not passed.
func held(l *gantry.Lock, now time.Time) bool {
	return l.Expires.IsZero() || !l.Expires.Before(now)
}

func notLocked(app, env string) error {
	return gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q is not locked", env, app)
}

// lockedError is the ECONFLICT that names who holds l, for what, and since
// when, so that whoever is refused knows whom to ask.
func lockedError(l *gantry.Lock, suffix string) error {
	what := l.Operation
	if l.DeploymentID != 0 {
		what = strings.TrimSpace(fmt.Sprintf("%s #%d", what, l.DeploymentID))
	}
	msg := fmt.Sprintf("environment %q of app %q is locked by %s", l.Env, l.App, l.Holder)
	if what != "" {
		msg += " (" + what + ")"
	}
	msg += " since " + l.Since.UTC().Format(time.RFC3339)
	if !l.Expires.IsZero() {
		msg += " until " + l.Expires.UTC().Format(time.RFC3339)
	}
	if l.Reason != "" {
		msg += fmt.Sprintf(" (%q)", l.Reason)
	}
	return gantry.Errorf(gantry.ECONFLICT, "%s%s", msg, suffix)
}
