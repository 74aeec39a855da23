package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

// AcquireLease takes or renews the lease in one INSERT … ON CONFLICT:
// of two servers asking at once, PostgreSQL lets exactly one through (the
// other waits for its commit, then finds a lease that runs). Expiry is
// judged by the database's clock, which every server shares.
func (db *DB) AcquireLease(ctx context.Context, holder, addr string, ttl time.Duration) (*gantry.Lease, error) {
	if holder == "" || ttl <= 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "a lease needs a holder and a positive duration")
	}
	var l *gantry.Lease
	err := db.update(ctx, func(tx pgx.Tx) error {
		got, err := scanLease(tx.QueryRow(ctx, `INSERT INTO lease (id, holder, addr, epoch, expires)
			VALUES (1, $1, $2, 1, clock_timestamp() + make_interval(secs => $3))
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, addr = excluded.addr, expires = excluded.expires,
				epoch = CASE WHEN lease.holder = excluded.holder THEN lease.epoch ELSE lease.epoch + 1 END
			WHERE lease.holder = excluded.holder OR lease.expires < clock_timestamp()
			RETURNING holder, addr, epoch, expires`, holder, addr, ttl.Seconds()))
		if errors.Is(err, pgx.ErrNoRows) {
			cur, err := findLease(ctx, tx, "")
			if err != nil {
				return err
			}
			l = cur
			return gantry.LeaseHeldError(cur)
		}
		l = got
		return err
	})
	if err != nil {
		return l, internal("acquire lease", err)
	}
	return l, nil
}

// FindLease returns the lease, ENOTFOUND before the first.
func (db *DB) FindLease(ctx context.Context) (*gantry.Lease, error) {
	l, err := findLease(ctx, db.pool, "")
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "no server has held the lease yet")
	}
	return l, internal("find lease", err)
}

// ReleaseLease makes holder's lease expire now.
func (db *DB) ReleaseLease(ctx context.Context, holder string) error {
	_, err := db.pool.Exec(ctx, `UPDATE lease SET expires = clock_timestamp() - interval '1 millisecond' WHERE holder = $1`, holder)
	return internal("release lease", err)
}

func findLease(ctx context.Context, q querier, lock string) (*gantry.Lease, error) {
	return scanLease(q.QueryRow(ctx, `SELECT holder, addr, epoch, expires FROM lease WHERE id = 1 `+lock))
}

func scanLease(row pgx.Row) (*gantry.Lease, error) {
	var l gantry.Lease
	if err := row.Scan(&l.Holder, &l.Addr, &l.Epoch, &l.Expires); err != nil {
		return nil, err
	}
	l.Expires = l.Expires.UTC()
	return &l, nil
}

// checkFence refuses, inside tx, a write whose context carries a fencing
// token that is not the lease's epoch. FOR SHARE makes a concurrent
// takeover wait for this transaction, or this transaction see the
// takeover: never a write that commits after the lease has moved.
func checkFence(ctx context.Context, tx pgx.Tx) error {
	if _, ok := gantry.FenceFrom(ctx); !ok {
		return nil
	}
	cur, err := findLease(ctx, tx, "FOR SHARE")
	if errors.Is(err, pgx.ErrNoRows) {
		cur, err = nil, nil
	}
	if err != nil {
		return err
	}
	return gantry.CheckFence(ctx, cur)
}
