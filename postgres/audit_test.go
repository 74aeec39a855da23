package postgres

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestAuditTwoServersKeyed: two pools on one schema, as two servers would
// be, append keyed entries at once; the chain is one, keyed, and verifies.
func TestAuditTwoServersKeyed(t *testing.T) {
	url := mustServer(t)
	key := []byte(strings.Repeat("k", 32))
	var dbs [2]*DB
	for i := range dbs {
		dbs[i] = MustOpen(t, url, "audittwo")
		dbs[i].SealAudit(key, nil)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	for i, db := range dbs {
		for w := range 4 {
			wg.Go(func() {
				for j := range 5 {
					e := &gantry.AuditEntry{Actor: fmt.Sprint("s", i, "w", w), Operation: fmt.Sprint("op", j), Result: gantry.AuditOK}
					if err := db.AppendAudit(ctx, e); err != nil {
						t.Errorf("AppendAudit: %v", err)
					}
				}
			})
		}
	}
	wg.Wait()
	all, err := dbs[0].ListAudit(ctx, gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seq, hash, err := dbs[1].AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := &gantry.AuditHeadRecord{Seq: seq, Hash: hash, KeyedFrom: 1}
	if r := gantry.CheckAudit(all, seq, hash, gantry.AuditAnchor{Key: key, Head: head}); !r.OK || len(all) != 40 {
		t.Errorf("CheckAudit of 40 concurrent keyed appends from two pools: %d entries, ok %v (%v)", len(all), r.OK, r.Break)
	}
	if keyed, err := dbs[0].AuditKeyed(ctx); err != nil || !keyed {
		t.Errorf("AuditKeyed: %v, %v; want true", keyed, err)
	}
}

// TestAuditTamperingDetected edits the audit rows behind the store's back,
// as someone with write access to the database could once they drop the
// append-only triggers, and checks that verification names what and where.
func TestAuditTamperingDetected(t *testing.T) {
	url := mustServer(t)
	tests := []struct {
		name     string
		sql      []string
		wantWhat string
		wantSeq  int64
	}{
		{"changed", []string{`UPDATE audit SET actor = 'mallory' WHERE seq = 3`}, "changed", 3},
		{"removed", []string{`DELETE FROM audit WHERE seq = 3`}, "removed", 4},
		{"removed last", []string{`DELETE FROM audit WHERE seq = 5`}, "removed", 5},
		{"reordered", []string{
			`UPDATE audit SET seq = 100 WHERE seq = 2`, `UPDATE audit SET seq = 2 WHERE seq = 3`, `UPDATE audit SET seq = 3 WHERE seq = 100`,
		}, "reordered", 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			db := MustOpen(t, url, fmt.Sprintf("tamper%d", i))
			for j := range 5 {
				e := &gantry.AuditEntry{Actor: "alice", Operation: "POST deploy", App: "shop", Env: "test", Release: fmt.Sprint("1.0.", j), Result: gantry.AuditOK}
				if err := db.AppendAudit(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			for _, q := range []string{`UPDATE audit SET actor = 'x' WHERE seq = 1`, `DELETE FROM audit`, `TRUNCATE audit`} {
				if _, err := db.pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
					t.Errorf("%s through the store's pool: %v, want the append-only trigger to refuse", q, err)
				}
			}
			for _, q := range append([]string{`DROP TRIGGER audit_no_update ON audit`, `DROP TRIGGER audit_no_delete ON audit`}, tt.sql...) {
				if _, err := db.pool.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			all, err := db.ListAudit(ctx, gantry.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			seq, hash, err := db.AuditHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b := gantry.VerifyAudit(all, seq, hash)
			if b == nil || b.What != tt.wantWhat || b.Seq != tt.wantSeq {
				t.Errorf("VerifyAudit: got %+v, want %s at %d", b, tt.wantWhat, tt.wantSeq)
			}
		})
	}
}

// TestDiskFull: PostgreSQL's disk_full is the same coded error as SQLite's
// full disk, so the journal's retry and the API's message treat both alike.
func TestDiskFull(t *testing.T) {
	err := internal("append step", &pgconn.PgError{Code: "53100", Message: `could not extend file "base/5/1234": No space left on device`})
	if !gantry.IsDiskFull(err) || gantry.ErrorCode(err) != gantry.EUNAVAILABLE {
		t.Errorf("internal(disk_full): got %v (code %q), want the coded disk-full error", err, gantry.ErrorCode(err))
	}
	if err := internal("x", &pgconn.PgError{Code: "23505"}); gantry.IsDiskFull(err) {
		t.Errorf("internal(unique_violation) is disk full: %v", err)
	}
}
