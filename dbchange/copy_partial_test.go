package dbchange_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/dbchange"
)

// TestUnfinishedCopyIsRecognisable: a database Copy creates carries the
// target's name only once it is whole, so that a copy a crash interrupts
// leaves a database Gantry knows as its own unfinished copy, never one that
// passes for a database that was there (Miniflux: the next clone refused
// to copy over it, and it had to be dropped by hand). A copy into the same
// target meanwhile is refused; DiscardCopy with no record (recovery) leaves
// a copy that runs alone, drops a crash's leftover, sessions and all, and
// never touches a database under the target's own name; the next copy
// drops a leftover itself.
func TestUnfinishedCopyIsRecognisable(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	src := MustBinding(t, "prod", gantry.MigrationEngineSQL)
	mustExec(t, src.URL, `CREATE TABLE entries (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO entries (title) VALUES ('a')`)
	dst := newTarget(t, src, "testnew")
	name := dst.URL[strings.LastIndex(dst.URL, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	partial := strings.Replace(dst.URL, "/"+name+"?", "/"+dbchange.PartialName(name)+"?", 1)

	// The post-copy script holds the copy open while the test looks.
	done := make(chan error, 1)
	go func() {
		_, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: dst, PostCopySQL: `SELECT pg_sleep(3)`})
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !databaseExists(t, src.URL, partial) {
		if time.Now().After(deadline) {
			t.Fatal("the copy never made its partial database")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if databaseExists(t, src.URL, dst.URL) {
		t.Error("a copy still being made already holds the target's name")
	}
	_, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: dst})
	wantCode(t, err, gantry.ECONFLICT)
	if err := c.DiscardCopy(ctx, nil, dst); err != nil {
		t.Fatal(err)
	}
	if !databaseExists(t, src.URL, partial) {
		t.Error("DiscardCopy without a record dropped a copy that was being made")
	}
	if err := <-done; err != nil {
		t.Fatalf("copy: %v", err)
	}
	if databaseExists(t, src.URL, partial) || !databaseExists(t, src.URL, dst.URL) {
		t.Fatal("the whole copy did not take the target's name")
	}
	if got := entries(t, dst.URL); got != 1 {
		t.Errorf("the copy holds %d entries, want 1", got)
	}
	// DiscardCopy without a record never touches the target itself.
	if err := c.DiscardCopy(ctx, nil, dst); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dst.URL); got != 1 {
		t.Errorf("DiscardCopy without a record touched the target: %d entries, want 1", got)
	}
	if err := c.DiscardCopy(ctx, &gantry.CopyRecord{Created: true}, dst); err != nil {
		t.Fatal(err)
	}

	// What a crash leaves: the partial database, half filled, with the
	// session of the pg_restore the killed server left running.
	crashed := func() *sql.DB {
		mustExec(t, src.URL, `CREATE DATABASE `+dbchange.PartialName(name))
		mustExec(t, partial, `CREATE TABLE entries (id serial PRIMARY KEY, title text NOT NULL)`)
		db, err := sql.Open("postgres", partial)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		return db
	}
	stray := crashed()
	defer stray.Close()
	dump := filepath.Join(dst.SnapshotDir, "copy-123")
	if err := os.MkdirAll(dump, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.DiscardCopy(ctx, nil, dst); err != nil {
		t.Fatalf("recovery's discard of an unfinished copy: %v", err)
	}
	if databaseExists(t, src.URL, partial) {
		t.Error("DiscardCopy without a record left the unfinished copy of a crash")
	}
	if _, err := os.Stat(dump); !os.IsNotExist(err) {
		t.Errorf("DiscardCopy without a record left the unfinished copy's dump: %v", err)
	}
	stray2 := crashed()
	defer stray2.Close()
	if _, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: dst}); err != nil {
		t.Fatalf("the next copy after a crash's unfinished one: %v", err)
	}
	if databaseExists(t, src.URL, partial) || entries(t, dst.URL) != 1 {
		t.Error("the next copy did not replace the unfinished one")
	}
}

// TestPartialNameFitsPostgres: the partial copy of a database with a name
// of PostgreSQL's 63 bytes has a name of its own within them.
func TestPartialNameFitsPostgres(t *testing.T) {
	long := strings.Repeat("a", 63)
	p, q := dbchange.PartialName(long), dbchange.PartialName(long[:62]+"b")
	if len(p) > 63 || p == q || !strings.HasSuffix(p, "_gantry_partial") {
		t.Errorf("partial names %q and %q", p, q)
	}
	if got := dbchange.PartialName("shop_testnew"); got != "shop_testnew_gantry_partial" {
		t.Errorf("partial name of shop_testnew = %q", got)
	}
}

func entries(tb testing.TB, url string) int {
	tb.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM entries`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestUnfinishedCopyInPlaceIsRecognisable: a copy into an empty database
// that was there is filled in place, marked unfinished (its comment) until
// it is whole, then its own comment is put back. What a crash leaves (the
// mark on a half-filled database) is emptied by DiscardCopy without a
// record and by the next copy; a database with content and no mark is
// never touched.
func TestUnfinishedCopyInPlaceIsRecognisable(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	src := MustBinding(t, "prod", gantry.MigrationEngineSQL)
	mustExec(t, src.URL, `CREATE TABLE entries (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO entries (title) VALUES ('a')`)
	to := MustBinding(t, "existing", gantry.MigrationEngineSQL)
	name := to.URL[strings.LastIndex(to.URL, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	mustExec(t, src.URL, `COMMENT ON DATABASE `+name+` IS 'the team''s'`)

	done := make(chan error, 1)
	go func() {
		_, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: to, PostCopySQL: `SELECT pg_sleep(3)`})
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for dbComment(t, src.URL, name) != "gantry: unfinished copy" {
		if time.Now().After(deadline) {
			t.Fatal("the copy in place never marked the database unfinished")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatalf("copy: %v", err)
	}
	if got := dbComment(t, src.URL, name); got != "the team's" {
		t.Errorf("comment after the copy: %q, want the database's own back", got)
	}
	if err := c.DiscardCopy(ctx, &gantry.CopyRecord{}, to); err != nil {
		t.Fatal(err)
	}

	crashed := func() {
		mustExec(t, src.URL, `COMMENT ON DATABASE `+name+` IS 'gantry: unfinished copy'`)
		mustExec(t, to.URL, `CREATE TABLE entries (id serial PRIMARY KEY, title text NOT NULL)`)
	}
	crashed()
	if err := c.DiscardCopy(ctx, nil, to); err != nil {
		t.Fatal(err)
	}
	if n := relations(t, to.URL); n != 0 || dbComment(t, src.URL, name) != "" {
		t.Errorf("after DiscardCopy without a record: %d relations, comment %q; want it emptied and unmarked", n, dbComment(t, src.URL, name))
	}
	crashed()
	if _, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: to}); err != nil {
		t.Fatalf("the next copy over a crash's unfinished one: %v", err)
	}
	if got := entries(t, to.URL); got != 1 {
		t.Errorf("the copy holds %d entries, want 1", got)
	}
	// Content without the mark is somebody's: left alone, and refused.
	if err := c.DiscardCopy(ctx, nil, to); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, to.URL); got != 1 {
		t.Errorf("DiscardCopy without a record emptied an unmarked database: %d entries", got)
	}
	_, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: to})
	wantCode(t, err, gantry.ECONFLICT)
}

func dbComment(tb testing.TB, via, name string) string {
	tb.Helper()
	db, err := sql.Open("postgres", via)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var got sql.NullString
	if err := db.QueryRow(`SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, name).Scan(&got); err != nil {
		tb.Fatal(err)
	}
	return got.String
}

func relations(tb testing.TB, url string) int {
	tb.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
