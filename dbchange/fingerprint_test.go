package dbchange_test

import (
	"database/sql"
	"os"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestFingerprintAppMigration: for an app that migrates itself (engine
// command) the fingerprint changes with a column rename and comes back
// with the snapshot taken before it; Gantry's ledger does not change it;
// Record and Ledger keep the fingerprints; Status reads the ledger.
func TestFingerprintAppMigration(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	b := MustBinding(t, "app", gantry.MigrationEngineCommand)
	if err := os.MkdirAll(b.SnapshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE visits (id bigserial PRIMARY KEY, page text NOT NULL); CREATE INDEX visits_page ON visits (page)`); err != nil {
		t.Fatal(err)
	}
	v1, err := c.Fingerprint(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot(ctx, b, "before 2 migrates")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Fingerprint(ctx, b); again != v1 {
		t.Errorf("a snapshot (and the ledger it may create) changed the fingerprint: %s → %s", v1, again)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE visits RENAME COLUMN page TO path`); err != nil {
		t.Fatal(err)
	}
	v2, _ := c.Fingerprint(ctx, b)
	if v2 == v1 {
		t.Fatalf("a column rename left the fingerprint %s", v1)
	}
	rec, err := c.Record(ctx, b, &gantry.MigrationRecord{ReleaseID: "r2", Phase: gantry.PhaseApp, Migration: "bin/app migrate", Before: v1, After: v2, Snapshot: snap.Name})
	if err != nil || rec.ID == 0 {
		t.Fatalf("record: %+v %v", rec, err)
	}
	if after, _ := c.Fingerprint(ctx, b); after != v2 {
		t.Errorf("writing the ledger changed the fingerprint")
	}
	ledger, err := c.Ledger(ctx, b)
	if err != nil || len(ledger) != 1 || ledger[0].Before != v1 || ledger[0].After != v2 || ledger[0].Snapshot != snap.Name {
		t.Fatalf("ledger: %+v %v", ledger, err)
	}
	if _, err := c.Restore(ctx, b, snap.Name); err != nil {
		t.Fatal(err)
	}
	if back, _ := c.Fingerprint(ctx, b); back != v1 {
		t.Errorf("after restoring the snapshot the fingerprint is %s, want %s", back, v1)
	}
	st, err := c.Status(ctx, b)
	if err != nil || st.SchemaVersion != v1 || len(st.Ledger) != 2 {
		t.Errorf("status: %+v %v", st, err)
	}
}
