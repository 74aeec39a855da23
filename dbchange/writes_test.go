package dbchange_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// TestWritesSinceSnapshot: the rows written since a snapshot (what a
// restore of it loses) are counted from PostgreSQL's statistics, those of
// a table dropped since included (a destructive migration), the ledger's
// not; after a reset of the statistics the count is unknown, not wrong.
func TestWritesSinceSnapshot(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	b := MustBinding(t, "prod", gantry.MigrationEngineCommand)
	mustExec(t, b.URL, `CREATE TABLE entries (id int PRIMARY KEY, n int NOT NULL);
		CREATE TABLE visits (id int PRIMARY KEY);
		INSERT INTO entries SELECT g, 0 FROM generate_series(1, 5) g;
		INSERT INTO visits SELECT g FROM generate_series(1, 3) g`)
	// Rows written before the snapshot but not yet reported would count as
	// written after it (CI saw "about 60 rows": these 8 too).
	waitReported(t, b.URL, map[string]int64{"entries": 5, "visits": 3})
	snap, err := c.Snapshot(ctx, b, "manual")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Writes == nil {
		t.Fatal("the snapshot recorded no write counter")
	}
	// 30 inserts, 10 updates, 5 deletes, 7 inserts into a table then dropped:
	// 52 rows; the ledger row Record writes is Gantry's, not the app's.
	mustExec(t, b.URL, `INSERT INTO entries SELECT g, 0 FROM generate_series(6, 35) g;
		UPDATE entries SET n = 1 WHERE id <= 10;
		DELETE FROM entries WHERE id > 30;
		INSERT INTO visits SELECT g FROM generate_series(4, 10) g`)
	// Another database made and dropped on the same server (a clone's
	// copy) writes the shared catalogs, which are no database's writes.
	other := fmt.Sprintf("writes_other_%d", time.Now().UnixNano())
	mustExec(t, b.URL, "CREATE DATABASE "+other)
	mustExec(t, b.URL, "DROP DATABASE "+other)
	var got gantry.WritesSince
	waitWrites := func(want int64) {
		t.Helper()
		// Backends report within about a second when idle, and when they
		// exit; a loaded machine was seen to take longer than 15 s.
		deadline := time.Now().Add(60 * time.Second)
		for {
			if got, err = c.WritesSince(ctx, b, snap); err != nil {
				t.Fatal(err)
			}
			if (got.Known && got.Rows >= want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !got.Known || got.Rows != want {
			t.Fatalf("writes since the snapshot: %+v (%s), want %d known", got, got, want)
		}
	}
	// A session's counts reach the database's only once its backend has
	// reported them; PostgreSQL drops a dropped table's unreported counts,
	// so the migration below waits for that report, as a real migration
	// long after the writes would.
	waitWrites(52)
	mustExec(t, b.URL, `DROP TABLE visits`) // the migration, in a session of its own
	if _, err := c.Record(ctx, b, &gantry.MigrationRecord{App: b.App, Env: b.Env, Engine: b.Engine, Phase: gantry.PhaseApp, Migration: "x"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the ledger row's session reports too
	waitWrites(52)
	if s := got.String(); s != "about 52 rows" {
		t.Errorf("said %q", s)
	}

	snaps, err := c.Snapshots(ctx, b)
	if err != nil || len(snaps) != 1 || snaps[0].Writes == nil || *snaps[0].Writes != *snap.Writes {
		t.Fatalf("the listed snapshot does not keep its counter: %v %+v", err, snaps)
	}
	mustExec(t, b.URL, `SELECT pg_stat_reset()`)
	if got, err = c.WritesSince(ctx, b, snaps[0]); err != nil || got.Known {
		t.Errorf("after pg_stat_reset: %+v, %v; want unknown", got, err)
	}
	if s := got.String(); s != "an unknown number of rows" {
		t.Errorf("unknown said %q", s)
	}
}

// waitReported waits until PostgreSQL's statistics count the rows inserted
// into each table (a backend reports its counts when idle or exiting, which
// a loaded machine was seen to delay by seconds).
func waitReported(tb testing.TB, url string, inserted map[string]int64) {
	tb.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for table, want := range inserted {
		for {
			var n int64
			// A fresh transaction each time: statistics read in one are cached.
			if err := db.QueryRow(`SELECT COALESCE(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&n); err != nil {
				tb.Fatal(err)
			}
			if n >= want {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("table %s: %d inserted rows reported after 60 s, want %d", table, n, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
