package dbchange

import (
	"context"
	"database/sql"
	"time"

	"github.com/gantry-dev/gantry"
)

// writeCount reads the database's cumulative count of rows inserted,
// updated and deleted in the app's tables. It is the database's total
// (which keeps the writes of tables dropped since, as a destructive
// migration does) less its own system catalogs' (DDL) and the ledger's.
// The catalogs shared by the whole server (pg_database, pg_authid…) count
// in no database's total: subtracting them made a CREATE DATABASE
// anywhere on the server lower this database's count.
// Backends report their counts when idle, within about a second.
//
// The database's total and its tables' counts are read from one snapshot
// of the statistics (stats_fetch_consistency, PostgreSQL 15 and later;
// earlier servers read one snapshot per transaction anyway). A backend
// reports its tables' counts and then its database's, so a reading taken
// between the two still counts its catalog writes wrong for a moment
// (an ANALYZE, a DDL statement): the count is read until two readings in
// a row agree, a few times at most.
func writeCount(ctx context.Context, db *sql.DB) (*gantry.WriteCount, error) {
	var version int
	if err := db.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return nil, err
	}
	var last *gantry.WriteCount
	for range 6 {
		w, err := readWriteCount(ctx, db, version >= 150000)
		if err != nil {
			return nil, err
		}
		if last != nil && *w == *last {
			break
		}
		last = w
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return last, nil
}

// readWriteCount is one reading of writeCount's figure; snapshot says the
// server has stats_fetch_consistency.
func readWriteCount(ctx context.Context, db *sql.DB, snapshot bool) (*gantry.WriteCount, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if snapshot {
		if _, err := tx.ExecContext(ctx, `SET LOCAL stats_fetch_consistency = snapshot`); err != nil {
			return nil, err
		}
	}
	w := &gantry.WriteCount{}
	err = tx.QueryRowContext(ctx, `SELECT
		d.tup_inserted + d.tup_updated + d.tup_deleted
		- COALESCE((SELECT sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del) FROM pg_stat_sys_tables s
			JOIN pg_class c ON c.oid = s.relid WHERE NOT c.relisshared), 0)
		- COALESCE((SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables WHERE schemaname = $1), 0),
		COALESCE(d.stats_reset::text, '')
		FROM pg_stat_database d WHERE d.datname = current_database()`, ledgerSchema).Scan(&w.Rows, &w.Epoch)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// WritesSince compares the write counter now with the one snap recorded.
func (c *Changer) WritesSince(ctx context.Context, b gantry.DatabaseBinding, snap *gantry.Snapshot) (gantry.WritesSince, error) {
	if snap == nil || snap.Writes == nil {
		return gantry.WritesSince{}, nil
	}
	db, err := openDB(b)
	if err != nil {
		return gantry.WritesSince{}, err
	}
	defer db.Close()
	now, err := writeCount(ctx, db)
	if err != nil {
		return gantry.WritesSince{}, err
	}
	return since(snap.Writes, now), nil
}

// since is the difference between two readings, unknown across a reset.
func since(then, now *gantry.WriteCount) gantry.WritesSince {
	if then == nil || now == nil || then.Epoch != now.Epoch || now.Rows < then.Rows {
		return gantry.WritesSince{}
	}
	return gantry.WritesSince{Rows: now.Rows - then.Rows, Known: true}
}
