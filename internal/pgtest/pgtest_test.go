package pgtest_test

import (
	"database/sql"
	"os"
	"testing"

	"github.com/gantry-dev/gantry/internal/pgtest"
)

// TestStart checks that a server comes up, CreateDB gives a usable database,
// it runs as a non-root user, and Stop removes everything.
func TestStart(t *testing.T) {
	inst := pgtest.Start(t)
	u := inst.CreateDB(t, "shop")
	db, err := sql.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got string
	if err := db.QueryRow(`SELECT current_database()`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "shop" {
		t.Errorf("current_database() = %q, want shop", got)
	}
	var version int
	if err := db.QueryRow(`SELECT current_setting('server_version_num')::int / 10000`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != 15 {
		t.Errorf("server major version = %d, want 15", version)
	}
	db.Close()
	if err := inst.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inst.Dir); !os.IsNotExist(err) {
		t.Errorf("after Stop, %s: err = %v, want not exist", inst.Dir, err)
	}
}
