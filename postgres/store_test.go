package postgres

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/pgtest"
	"github.com/gantry-dev/gantry/internal/storetest"
)

// server is the one throwaway PostgreSQL the package's tests share (nil
// when it could not be started; serverErr says why).
var (
	server    *pgtest.Instance
	serverErr error
)

func TestMain(m *testing.M) {
	server, serverErr = pgtest.New()
	code := m.Run()
	if server != nil {
		if err := server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop postgres:", err)
		}
	}
	os.Exit(code)
}

// mustServer returns the shared server's URL to database "postgres". It
// skips tb when PostgreSQL 15 is not installed, unless GANTRY_INTEGRATION=1:
// then it fails, so that CI never passes by not testing.
func mustServer(tb testing.TB) string {
	tb.Helper()
	switch {
	case errors.Is(serverErr, pgtest.ErrNotInstalled) && os.Getenv("GANTRY_INTEGRATION") != "1":
		tb.Skip(serverErr)
	case serverErr != nil:
		tb.Fatal(serverErr)
	}
	return server.URL
}

// TestStore runs the shared store suite. Every subtest's store is a schema
// of its own in one database, named by the suite's db name.
func TestStore(t *testing.T) {
	url := mustServer(t)
	storetest.Run(t, func(t *testing.T, name string, now func() time.Time) gantry.Store {
		db := MustOpen(t, url, name)
		db.Now = now
		return db
	})
}

// MustOpen opens the store in schema of the database at url and closes it
// when the test ends.
func MustOpen(tb testing.TB, url, schema string) *DB {
	tb.Helper()
	db, err := Open(tb.Context(), url, schema)
	if err != nil {
		tb.Fatalf("Open %s: %v", schema, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
