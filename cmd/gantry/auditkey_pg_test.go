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

// TestAuditTwoServersOnPostgres: two servers on one PostgreSQL store (one
// leads, both answer) append in turn. Each one's appends follow the other's,
// which is no break: the head recorded outside keeps up with the chain
// instead of staying where the other server's first append left it.
func TestAuditTwoServersOnPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	f := newAuditFixture(t)
	f.store = pg.CreateDB(t, "twoservers")
	s1 := f.open(t)
	defer s1.Close()
	g := *f
	g.data = t.TempDir()
	s2 := g.open(t)
	defer s2.Close()
	for i := range 3 {
		appendEntries(t, s1, fmt.Sprintf("a%d-", i), 1)
		appendEntries(t, s2, fmt.Sprintf("b%d-", i), 1)
	}
	for _, s := range []*Server{s1, s2} {
		code, v, errs := verify(t, s)
		if code != 0 || v["ok"] != true {
			t.Fatalf("audit verify: exit %d, %v (%s); want intact", code, v, errs)
		}
		if got, want := v["anchor_seq"], v["head_seq"]; got != want {
			t.Errorf("anchor_seq %v, want the chain's end %v: the recorded head stopped following the chain", got, want)
		}
	}
}
