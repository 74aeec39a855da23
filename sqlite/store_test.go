package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/storetest"
)

func TestStore(t *testing.T) {
	dir := t.TempDir()
	storetest.Run(t, func(t *testing.T, name string, now func() time.Time) gantry.Store {
		db := MustOpen(t, filepath.Join(dir, name+".db"))
		db.Now = now
		return db
	})
}

// MustOpen opens the database at path and closes it when the test ends.
func MustOpen(tb testing.TB, path string) *DB {
	tb.Helper()
	db, err := Open(tb.Context(), path)
	if err != nil {
		tb.Fatalf("Open %s: %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
