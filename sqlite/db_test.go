package sqlite

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func TestOpenPragmas(t *testing.T) {
	db := MustOpen(t, filepath.Join(t.TempDir(), "gantry.db"))
	tests := []struct {
		pool   *sql.DB
		pragma string
		want   string
	}{
		{db.write, "journal_mode", "wal"},
		{db.write, "synchronous", "2"}, // FULL: see DB on durability
		{db.write, "foreign_keys", "1"},
		{db.write, "busy_timeout", "10000"},
		{db.read, "journal_mode", "wal"},
		{db.read, "busy_timeout", "10000"},
		{db.read, "query_only", "1"},
	}
	for _, tt := range tests {
		var got string
		if err := tt.pool.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			name := "writer"
			if tt.pool == db.read {
				name = "reader"
			}
			t.Errorf("%s PRAGMA %s: got %q, want %q", name, tt.pragma, got, tt.want)
		}
	}
	if got := db.write.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool: got %d connections, want 1", got)
	}
}

func TestMigrate(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	path := filepath.Join(t.TempDir(), "gantry.db")
	for i := range 2 { // the second Open finds the schema current and changes nothing
		db := MustOpen(t, path)
		var version int
		if err := db.read.QueryRowContext(t.Context(), "PRAGMA user_version").Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version != len(ms) {
			t.Errorf("open %d: got user_version %d, want %d", i+1, version, len(ms))
		}
		db.Close()
	}

	// A database from a newer gantry is refused, not damaged.
	db := MustOpen(t, path)
	if _, err := db.write.ExecContext(t.Context(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a schema from the future: got %v, want an error saying it is newer", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"",
		filepath.Join(dir, "missing", "gantry.db"),
		dir, // a directory
		notDB,
	} {
		db, err := Open(t.Context(), path)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q): got no error", path)
		}
	}
	// The file of a failed open is left as it was.
	if b, _ := os.ReadFile(notDB); !strings.HasPrefix(string(b), "this is not") {
		t.Errorf("Open of a non-database changed the file")
	}
}

func TestOpenOddPath(t *testing.T) {
	// Characters that mean something in an SQLite URI stay in the file name.
	dir := filepath.Join(t.TempDir(), "a?b#c%20d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gantry.db")
	db := MustOpen(t, path)
	if err := db.CreateApp(t.Context(), &gantry.App{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

// TestTwoHandles opens the same file twice, as two server processes would,
// and checks that SQLite's locking (busy_timeout, BEGIN IMMEDIATE) keeps the
// lock exclusive across handles and writers never fail with SQLITE_BUSY.
func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gantry.db")
	dbs := []*DB{MustOpen(t, path), MustOpen(t, path)}
	ctx := t.Context()
	if err := dbs[0].CreateApp(ctx, &gantry.App{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	for i, db := range dbs {
		for j := range 3 {
			holder := string(rune('a'+i)) + string(rune('0'+j))
			wg.Go(func() {
				for range 10 {
					d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, State: gantry.DeploymentRunning}
					if err := db.CreateDeployment(ctx, d); err != nil {
						t.Errorf("CreateDeployment: %v", err)
						return
					}
					if err := db.AppendStep(ctx, d.ID, &gantry.Step{Name: "start", State: gantry.StepStarted}); err != nil {
						t.Errorf("AppendStep: %v", err)
						return
					}
				}
				err := db.AcquireLock(ctx, &gantry.Lock{App: "shop", Env: "prod", Holder: holder, Operation: "deploy"})
				if err == nil {
					mu.Lock()
					winners = append(winners, holder)
					mu.Unlock()
				} else if gantry.ErrorCode(err) != gantry.ECONFLICT {
					t.Errorf("AcquireLock: got %v, want success or ECONFLICT", err)
				}
			})
		}
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Errorf("AcquireLock from two handles: got winners %q, want exactly one", winners)
	}
	ds, err := dbs[1].ListDeployments(ctx, gantry.DeploymentFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 60 {
		t.Errorf("deployments written from two handles: got %d, want 60", len(ds))
	}
}

func TestEnvironmentTimesUTC(t *testing.T) {
	db := MustOpen(t, filepath.Join(t.TempDir(), "gantry.db"))
	ctx := t.Context()
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	zone := time.FixedZone("UTC+5", 5*3600)
	at := time.Date(2026, 11, 22, 6, 2, 3, 4, zone)
	env := &gantry.Environment{App: "shop", Name: "test", CreatedAt: at, UpdatedAt: at}
	env.Slot(gantry.SlotBlue).Since = at
	env.Slot(gantry.SlotBlue).Instances = []gantry.Instance{{Service: "web", StartedAt: at}}
	if err := db.PutEnvironment(ctx, env); err != nil {
		t.Fatal(err)
	}
	if env.CreatedAt.Location() != zone || env.Slots[gantry.SlotBlue].Instances[0].StartedAt.Location() != zone {
		t.Errorf("PutEnvironment changed the caller's times")
	}
	got, err := db.FindEnvironment(ctx, "shop", "test")
	if err != nil {
		t.Fatal(err)
	}
	blue := got.Slots[gantry.SlotBlue]
	for what, tm := range map[string]time.Time{
		"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt, "slot Since": blue.Since,
		"instance StartedAt": blue.Instances[0].StartedAt,
	} {
		if !tm.Equal(at) || tm.Location() != time.UTC {
			t.Errorf("%s: got %v, want %v in UTC", what, tm, at.UTC())
		}
	}
}
