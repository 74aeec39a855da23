package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gantry-dev/gantry"
)

// AcquireLease takes or renews the lease. The single writer connection
// and BEGIN IMMEDIATE make the read and the write one atomic step; expiry
// is judged by db.Now.
func (db *DB) AcquireLease(ctx context.Context, holder, addr string, ttl time.Duration) (*gantry.Lease, error) {
	if holder == "" || ttl <= 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "a lease needs a holder and a positive duration")
	}
	now := db.now()
	var l *gantry.Lease
	err := db.update(ctx, func(tx *sql.Tx) error {
		cur, err := findLease(ctx, tx)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		next := gantry.Lease{Holder: holder, Addr: addr, Epoch: 1, Expires: now.Add(ttl)}
		if cur != nil {
			switch {
			case cur.Holder == holder:
				next.Epoch = cur.Epoch
			case cur.Expires.After(now):
				l = cur
				return gantry.LeaseHeldError(cur)
			default:
				next.Epoch = cur.Epoch + 1
			}
		}
		l = &next
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO lease (id, holder, addr, epoch, expires) VALUES (1, ?, ?, ?, ?)`,
			next.Holder, next.Addr, next.Epoch, timeArg(next.Expires))
		return err
	})
	if err != nil {
		return l, internal("acquire lease", err)
	}
	return l, nil
}

// FindLease returns the lease, ENOTFOUND before the first.
func (db *DB) FindLease(ctx context.Context) (*gantry.Lease, error) {
	var l *gantry.Lease
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		l, err = findLease(ctx, tx)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "no server has held the lease yet")
	}
	return l, internal("find lease", err)
}

// ReleaseLease makes holder's lease expire now.
func (db *DB) ReleaseLease(ctx context.Context, holder string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE lease SET expires = ? WHERE holder = ?`, timeArg(db.now().Add(-time.Millisecond)), holder)
		return err
	})
	return internal("release lease", err)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func findLease(ctx context.Context, q queryRower) (*gantry.Lease, error) {
	var l gantry.Lease
	err := q.QueryRowContext(ctx, `SELECT holder, addr, epoch, expires FROM lease WHERE id = 1`).
		Scan(&l.Holder, &l.Addr, &l.Epoch, timeCol{&l.Expires})
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// checkFence refuses, inside tx, a write whose context carries a fencing
// token that is not the lease's epoch.
func checkFence(ctx context.Context, tx *sql.Tx) error {
	if _, ok := gantry.FenceFrom(ctx); !ok {
		return nil
	}
	cur, err := findLease(ctx, tx)
	if errors.Is(err, sql.ErrNoRows) {
		cur, err = nil, nil
	}
	if err != nil {
		return err
	}
	return gantry.CheckFence(ctx, cur)
}
