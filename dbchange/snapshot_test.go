package dbchange_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// TestSnapshotRestore: a restore brings back the rows and the schema of the
// snapshot, drops what was created since, keeps the ledger, and records
// itself in it. Retention keeps the newest KeepSnapshots.
func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	clock := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	ctx := ctxT(t)
	b := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
	b.KeepSnapshots = 3
	v1 := migrationsFS(t, "rename", "01_")
	MustDeploy(t, c, b, release("r1"), v1, false, gantry.PlanApply)
	db, _ := MustAppDB(t, c, b, v1)
	if _, err := db.ExecContext(ctx, `INSERT INTO users (name) VALUES ('kept')`); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot(ctx, b, "manual")
	if err != nil {
		t.Fatal(err)
	}
	if snap.SchemaVersion != "01_create_users" || snap.Size == 0 || snap.Reason != "manual" {
		t.Errorf("snapshot = %+v", snap)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO users (name) VALUES ('lost'); CREATE TABLE public.later (id int)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rec, err := c.Restore(ctx, b, snap.Name)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if rec.Phase != gantry.PhaseRestore || rec.Snapshot != snap.Name {
		t.Errorf("restore record = %+v", rec)
	}
	db, _ = MustAppDB(t, c, b, v1)
	if got := column(t, db, `SELECT name FROM users ORDER BY id`); got != "kept" {
		t.Errorf("rows after restore = %q, want kept", got)
	}
	if got := column(t, db, `SELECT count(*)::text FROM pg_tables WHERE tablename = 'later'`); got != "0" {
		t.Errorf("table created after the snapshot survived the restore")
	}
	st, err := c.Status(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.Ledger); n != 3 || st.Ledger[n-1].Phase != gantry.PhaseRestore {
		t.Errorf("ledger after restore = %d records ending %+v, want apply (2) then restore", n, st.Ledger[n-1])
	}

	_, err = c.Restore(ctx, b, "../etc")
	wantCode(t, err, gantry.EINVALID)
	_, err = c.Restore(ctx, b, "nope")
	wantCode(t, err, gantry.ENOTFOUND)

	for range 3 {
		if _, err := c.Snapshot(ctx, b, "manual"); err != nil {
			t.Fatal(err)
		}
	}
	snaps, err := c.Snapshots(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 3 || snaps[0].CreatedAt.Before(snaps[2].CreatedAt) {
		t.Fatalf("snapshots = %d, want the 3 newest, newest first", len(snaps))
	}
	for _, s := range []string{snap.Name, snap.Name + ".json"} {
		if _, err := os.Stat(filepath.Join(b.SnapshotDir, s)); !os.IsNotExist(err) {
			t.Errorf("pruned snapshot %s still there (err %v)", s, err)
		}
	}
}

// TestUnfinishedSnapshotRemoved: the dump of a snapshot a crash
// interrupted (a directory without its .json, which is written last) is
// removed by the next snapshot, and a copy's working directory is not.
func TestUnfinishedSnapshotRemoved(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	b := MustBinding(t, "prod", gantry.MigrationEngineCommand)
	crashed := filepath.Join(b.SnapshotDir, "20261207T185658766Z-before-2.1.0-migrates")
	other := filepath.Join(b.SnapshotDir, "copy-123")
	for _, d := range []string{crashed, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "toc.dat"), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Snapshot(ctx, b, "manual"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Errorf("the unfinished dump is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("the snapshot removed a directory not its own: %v", err)
	}
	snaps, err := c.Snapshots(ctx, b)
	if err != nil || len(snaps) != 1 {
		t.Errorf("snapshots after: %d (%v), want 1", len(snaps), err)
	}
}
