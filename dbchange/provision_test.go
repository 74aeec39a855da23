package dbchange_test

import (
	"database/sql"
	"net/url"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestCreateAndDropDatabase: a preview's database is created empty (an
// existing empty one is accepted, a used one refused), and dropped with
// the sessions still on it; dropping it again is no error.
func TestCreateAndDropDatabase(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	tpl := MustBinding(t, "test", gantry.MigrationEngineSQL)
	b := tpl
	b.Env = "mr-1"
	b.URL = strings.Replace(tpl.URL, "_test?", "_test_mr_1?", 1)
	if err := c.CreateDatabase(ctx, b); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.CreateDatabase(ctx, b); err != nil {
		t.Fatalf("create again over an empty database: %v", err)
	}
	db, err := sql.Open("postgres", b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id int)`); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, b); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("create over a used database: %v, want ECONFLICT", err)
	}
	// db holds a session: the drop ends it.
	if err := c.DropDatabase(ctx, b); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if n := countDatabases(t, tpl.URL, dbName(b.URL)); n != 0 {
		t.Errorf("after the drop: %d databases named like the preview's, want 0", n)
	}
	if n := countDatabases(t, tpl.URL, dbName(tpl.URL)); n != 1 {
		t.Errorf("the template's database: %d, want it kept", n)
	}
	if err := c.DropDatabase(ctx, b); err != nil {
		t.Errorf("drop again: %v", err)
	}
}

// dbName is the database a postgres:// URL names.
func dbName(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(p.Path, "/")
}

func countDatabases(t *testing.T, dsn, name string) int {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
