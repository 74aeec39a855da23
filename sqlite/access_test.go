package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/storetest"
)

func TestAccessStore(t *testing.T) {
	dir := t.TempDir()
	storetest.RunAccess(t, func(t *testing.T, name string, now func() time.Time) gantry.Store {
		db := MustOpen(t, filepath.Join(dir, name+".db"))
		db.Now = now
		return db
	})
}

// TestAuditTamperingDetected edits the database file behind the store's
// back, as someone with access to it could (dropping the append-only
// triggers first), and checks that verification names what and where.
func TestAuditTamperingDetected(t *testing.T) {
	tests := []struct {
		name     string
		sql      []string
		wantWhat string
		wantSeq  int64
	}{
		{"changed", []string{`UPDATE audit SET actor = 'mallory' WHERE seq = 3`}, "changed", 3},
		{"changed time", []string{`UPDATE audit SET time = '2020-01-01T00:00:00.000000000Z' WHERE seq = 2`}, "changed", 2},
		{"removed", []string{`DELETE FROM audit WHERE seq = 3`}, "removed", 4},
		{"removed last", []string{`DELETE FROM audit WHERE seq = 5`}, "removed", 5},
		{"removed and renumbered", []string{`DELETE FROM audit WHERE seq = 2`, `UPDATE audit SET seq = seq - 1 WHERE seq > 2`, `UPDATE audit_head SET seq = 4`}, "removed", 2},
		{"reordered", []string{
			`UPDATE audit SET seq = 100 WHERE seq = 2`, `UPDATE audit SET seq = 2 WHERE seq = 3`, `UPDATE audit SET seq = 3 WHERE seq = 100`,
		}, "reordered", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := MustOpen(t, filepath.Join(t.TempDir(), "state.db"))
			for i := range 5 {
				e := &gantry.AuditEntry{Actor: "alice", Operation: "POST /v1/apps/{app}/environments/{env}/deploy", App: "shop", Env: "test", Release: "1.0." + string(rune('0'+i)), Result: gantry.AuditOK}
				if err := db.AppendAudit(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			mustVerify(t, db, "", 0)
			if _, err := db.write.ExecContext(ctx, `UPDATE audit SET actor = 'x' WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("UPDATE through the store's connection: %v, want the append-only trigger to refuse", err)
			}
			for _, q := range append([]string{`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`}, tt.sql...) {
				if _, err := db.write.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			mustVerify(t, db, tt.wantWhat, tt.wantSeq)
		})
	}
}

func mustVerify(t *testing.T, db *DB, wantWhat string, wantSeq int64) {
	t.Helper()
	all, err := db.ListAudit(context.Background(), gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seq, hash, err := db.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := gantry.VerifyAudit(all, seq, hash)
	switch {
	case wantWhat == "" && b != nil:
		t.Fatalf("intact chain: %v", b)
	case wantWhat == "":
	case b == nil:
		t.Fatalf("tampered chain verified; want %s at %d", wantWhat, wantSeq)
	case b.What != wantWhat || b.Seq != wantSeq:
		t.Errorf("got %s at %d (%s), want %s at %d", b.What, b.Seq, b.Msg, wantWhat, wantSeq)
	}
}
