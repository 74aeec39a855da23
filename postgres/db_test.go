package postgres

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/storetest"
)

func TestAccessStore(t *testing.T) {
	url := mustServer(t)
	storetest.RunAccess(t, func(t *testing.T, name string, now func() time.Time) gantry.Store {
		db := MustOpen(t, url, name)
		db.Now = now
		return db
	})
}

// TestDurableCommits checks what DB's durability comment relies on: the
// store's sessions commit synchronously even on a server whose default is
// not to (the test server runs with synchronous_commit=off).
func TestDurableCommits(t *testing.T) {
	db := MustOpen(t, mustServer(t), "durable")
	var got string
	if err := db.pool.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "on" {
		t.Errorf("synchronous_commit: got %q, want on", got)
	}
}

// TestTwoServers opens one schema from two pools at once, as two servers
// starting together would: both migrate without error (one after the
// other), and of their simultaneous lock requests exactly one wins.
func TestTwoServers(t *testing.T) {
	url := mustServer(t)
	var (
		wg  sync.WaitGroup
		dbs [2]*DB
	)
	for i := range dbs {
		wg.Go(func() { dbs[i] = MustOpen(t, url, "twoservers") })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ctx := t.Context()
	if err := dbs[0].CreateApp(ctx, &gantry.App{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		errs := make([]error, len(dbs))
		for i, db := range dbs {
			wg.Go(func() {
				errs[i] = db.AcquireLock(ctx, &gantry.Lock{App: "shop", Env: "prod", Holder: string(rune('a' + i)), Operation: "deploy"})
			})
		}
		wg.Wait()
		var winner string
		for i, err := range errs {
			switch gantry.ErrorCode(err) {
			case "":
				if winner != "" {
					t.Fatalf("round %d: both servers got the lock", round)
				}
				winner = string(rune('a' + i))
			case gantry.ECONFLICT:
			default:
				t.Fatalf("round %d: AcquireLock: %v, want success or ECONFLICT", round, err)
			}
		}
		if winner == "" {
			t.Fatalf("round %d: no server got the lock", round)
		}
		l, err := dbs[1].FindLock(ctx, "shop", "prod")
		if err != nil || l.Holder != winner {
			t.Fatalf("round %d: FindLock from the other server: %+v, %v; want holder %s", round, l, err, winner)
		}
		if err := dbs[0].ReleaseLock(ctx, "shop", "prod", winner, false); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	url := mustServer(t)
	ctx := t.Context()
	for _, schema := range []string{"Gantry", "a-b", "x; DROP TABLE apps", strings.Repeat("s", 64)} {
		if _, err := Open(ctx, url, schema); gantry.ErrorCode(err) != gantry.EINVALID {
			t.Errorf("Open with schema %q: got %v, want EINVALID", schema, err)
		}
	}
	_, err := Open(ctx, "postgres://bob:s3cret@127.0.0.1:5432/db?sslmode=nonsense", "")
	if gantry.ErrorCode(err) != gantry.EINVALID || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open of a bad URL: got %v, want EINVALID without the password", err)
	}

	// A schema migrated by a newer gantry is not touched.
	db := MustOpen(t, url, "newer")
	if _, err := db.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(ctx, url, "newer")
	if err == nil || !strings.Contains(err.Error(), "newer than this gantry knows") {
		t.Errorf("Open of a newer schema: got %v, want a refusal", err)
	}
}
