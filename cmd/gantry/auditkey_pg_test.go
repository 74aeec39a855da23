package main

import (
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/gantry-dev/gantry/internal/pgtest"
)

// TestAuditAgainstStateWriterPostgres runs the attacks of
// TestAuditAgainstStateWriter on a server whose state is in PostgreSQL,
// made by someone who can write the database: the same breaks are reported.
func TestAuditAgainstStateWriterPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	var n atomic.Int64
	testAuditAgainstStateWriter(t, func(t *testing.T) *auditFixture {
		f := newAuditFixture(t)
		f.store = pg.CreateDB(t, fmt.Sprint("audit", n.Add(1)))
		return f
	})
}

// TestAuditOnPostgres: a keyed chain in PostgreSQL verifies across
// restarts, and a server without the key of a keyed chain makes no new one.
func TestAuditOnPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	t.Run("normal use", func(t *testing.T) {
		f := newAuditFixture(t)
		f.store = pg.CreateDB(t, "normal")
		testAuditKeyedChainNormalUse(t, f)
	})
	t.Run("key missing", func(t *testing.T) {
		f := newAuditFixture(t)
		f.store = pg.CreateDB(t, "keymissing")
		testAuditKeyMissing(t, f)
	})
}

// tamperPostgres edits the store's schema behind the server's back, past
// the append-only triggers, on one connection so that search_path holds.
func (f *auditFixture) tamperPostgres(t *testing.T, fn func(db *sql.DB)) {
	t.Helper()
	db, err := sql.Open("postgres", f.store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	mustExec(t, db, `SET search_path = gantry`, `DROP TRIGGER IF EXISTS audit_no_update ON audit`, `DROP TRIGGER IF EXISTS audit_no_delete ON audit`)
	fn(db)
}
