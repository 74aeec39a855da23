package dbchange_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestCopyNamesAnUnmigratedSchema: a database whose schema no migration
// of Gantry's made is copied at a schema version that says which schema it
// is, its fingerprint (Miniflux: "at schema version  in 338ms"): with
// empty migration directories (sql), and for an app that owns its schema
// (no migrations, or its own command), whose copy was refused as of an
// "unknown migrations engine".
func TestCopyNamesAnUnmigratedSchema(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{gantry.MigrationEngineSQL, gantry.MigrationEngineCommand} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			c := newChanger(t)
			ctx := ctxT(t)
			src := MustBinding(t, "prod", engine)
			mustExec(t, src.URL, `CREATE TABLE entries (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO entries (title) VALUES ('a')`)
			fp, err := c.Fingerprint(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			dst := newTarget(t, src, "testnew")
			rec, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: dst})
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if rec.SchemaVersion != fp {
				t.Errorf("copy's schema version = %q, want the schema's fingerprint %s", rec.SchemaVersion, fp)
			}
			var n int
			db, err := sql.Open("postgres", dst.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.QueryRow(`SELECT count(*) FROM entries`).Scan(&n); err != nil || n != 1 {
				t.Errorf("the copy holds %d entries (%v), want 1", n, err)
			}
		})
	}
}

// TestCopyDiscardedThenAgain: a copy Gantry created is dropped by
// DiscardCopy, one into an empty database that was there is emptied, a
// copy that fails after making its target removes it itself; in each
// case the same copy then runs again (Miniflux: the retry refused to copy
// over the database a failed clone had filled).
func TestCopyDiscardedThenAgain(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	src := MustBinding(t, "prod", gantry.MigrationEngineSQL)
	mustExec(t, src.URL, `CREATE TABLE entries (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO entries (title) VALUES ('a')`)

	created := newTarget(t, src, "created")
	existing := MustBinding(t, "existing", gantry.MigrationEngineSQL)
	existing.SnapshotDir = t.TempDir()
	for _, tc := range []struct {
		name        string
		to          gantry.DatabaseBinding
		wantCreated bool
	}{{"created", created, true}, {"existing", existing, false}} {
		rec, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: tc.to})
		if err != nil {
			t.Fatalf("%s: copy: %v", tc.name, err)
		}
		if rec.Created != tc.wantCreated {
			t.Errorf("%s: copy record says created %t, want %t", tc.name, rec.Created, tc.wantCreated)
		}
		if err := c.DiscardCopy(ctx, rec, tc.to); err != nil {
			t.Fatalf("%s: discard: %v", tc.name, err)
		}
		if got := databaseExists(t, src.URL, tc.to.URL); got != !tc.wantCreated {
			t.Errorf("%s: database exists after the discard: %t, want %t", tc.name, got, !tc.wantCreated)
		}
		if _, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: tc.to}); err != nil {
			t.Errorf("%s: the copy again after the discard: %v", tc.name, err)
		}
	}

	failing := newTarget(t, src, "failing")
	_, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: failing, PostCopySQL: `UPDATE no_such_table SET x = 1`})
	wantCode(t, err, gantry.EFAILED)
	if databaseExists(t, src.URL, failing.URL) {
		t.Error("a copy whose post-copy script failed left the database it created")
	}
	if _, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: failing, PostCopySQL: `UPDATE entries SET title = 'b'`}); err != nil {
		t.Errorf("the copy again after it failed: %v", err)
	}
}

// newTarget binds env to a database that does not exist yet, on src's
// server: Copy creates it.
func newTarget(tb testing.TB, src gantry.DatabaseBinding, env string) gantry.DatabaseBinding {
	tb.Helper()
	to := src
	to.Env = env
	to.SnapshotDir = tb.TempDir()
	i := strings.LastIndex(src.URL, "_prod?")
	if i < 0 {
		tb.Fatalf("unexpected test database URL %q", src.URL)
	}
	to.URL = src.URL[:i] + "_" + env + "_new" + src.URL[i+len("_prod"):]
	return to
}

func mustExec(tb testing.TB, url, q string) {
	tb.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
}

// databaseExists says the database of url is on the server (asked through
// the database of via).
func databaseExists(tb testing.TB, via, url string) bool {
	tb.Helper()
	name := url[strings.LastIndex(url, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	db, err := sql.Open("postgres", via)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		tb.Fatal(fmt.Errorf("look for database %s: %w", name, err))
	}
	return n == 1
}
