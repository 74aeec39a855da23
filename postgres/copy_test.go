package postgres

import (
	"time"

	"testing"

	"github.com/gantry-dev/gantry"
)

// TestImport: rows land as given (IDs included), the next deployment ID
// is past the source's high-water mark even when that row is gone, the
// audit chain imported verifies, and a store holding anything is refused
// without a row written.
func TestImport(t *testing.T) {
	db := MustOpen(t, mustServer(t), "import")
	ctx := t.Context()
	when := "2026-11-22T01:02:03.000000001Z"
	e := &gantry.AuditEntry{Seq: 1, Actor: "alice", Operation: "POST deploy", Result: gantry.AuditOK}
	e.Time, _ = time.Parse(time.RFC3339Nano, when)
	e.Seal(nil)
	tables := []Table{
		{Name: "apps", Columns: []string{"name", "repo", "created_at"}, Rows: [][]any{{"shop", "/src/shop", when}}},
		{Name: "deployments", Columns: []string{"id", "app", "env", "kind", "release_id", "version", "from_release", "from_env", "slot", "strategy", "actor", "state", "error", "created_at", "finished_at", "pause_after", "only_service", "group_done"},
			Rows:   [][]any{{int64(3), "shop", "test", "deploy", "r1", "1.0.0", "", "", "blue", "bluegreen", "alice", "succeeded", "", when, when, nil, "", nil}},
			NextID: 7},
		{Name: "audit", Columns: []string{"seq", "time", "actor", "operation", "app", "env", "release", "result", "code", "prev_hash", "hash"},
			Rows: [][]any{{e.Seq, when, e.Actor, e.Operation, "", "", "", e.Result, "", "", e.Hash}}},
		{Name: "audit_head", Columns: []string{"id", "seq", "hash"}, Rows: [][]any{{int64(1), int64(1), e.Hash}}},
	}
	if err := db.Import(ctx, tables); err != nil {
		t.Fatal(err)
	}
	d, err := db.FindDeployment(ctx, 3)
	if err != nil || d.Actor != "alice" || d.CreatedAt.Nanosecond() != 1 {
		t.Fatalf("FindDeployment(3): %+v, %v; want alice's, with its nanoseconds", d, err)
	}
	next := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, Actor: "bob", State: gantry.DeploymentRunning}
	if err := db.CreateDeployment(ctx, next); err != nil || next.ID != 7 {
		t.Errorf("CreateDeployment after the import: ID %d, %v; want 7, past the source's high-water mark", next.ID, err)
	}
	all, err := db.ListAudit(ctx, gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seq, hash, err := db.AuditHead(ctx)
	if b := gantry.VerifyAudit(all, seq, hash); err != nil || b != nil || len(all) != 1 {
		t.Errorf("imported audit chain: %d entries, %v, %v; want 1 intact", len(all), b, err)
	}
	rows, err := db.Export(ctx, "apps", []string{"name", "repo", "created_at"}, []string{"name"})
	if err != nil || len(rows) != 1 || rows[0][1] != "/src/shop" || rows[0][2] != when {
		t.Errorf("Export apps: %v, %v", rows, err)
	}
	if _, err := db.Export(ctx, "pg_authid", []string{"rolname"}, []string{"rolname"}); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("Export of a table not the store's: %v, want EINVALID", err)
	}

	err = db.Import(ctx, []Table{{Name: "apps", Columns: []string{"name", "repo", "created_at"}, Rows: [][]any{{"other", "/src/other", when}}}})
	if gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Fatalf("Import into a store that is not empty: %v, want ECONFLICT", err)
	}
	if apps, err := db.ListApps(ctx); err != nil || len(apps) != 1 {
		t.Errorf("after a refused import: %d apps, %v; want the one before", len(apps), err)
	}
}
