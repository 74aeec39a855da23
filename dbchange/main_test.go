package dbchange_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/dbchange"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// One server serves the whole package: each test gets a database of its own.
var (
	shared     *pgtest.Instance
	sharedErr  error
	sharedOnce sync.Once
	dbSeq      atomic.Int64
)

var update = flag.Bool("update", false, "rewrite golden files")

// checkGolden compares v, as indented JSON, with a golden file.
func checkGolden(tb testing.TB, file string, v any) {
	tb.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.MkdirAll(path.Dir(file), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		tb.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		tb.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", file, got, want)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop postgres:", err)
		}
	}
	os.Exit(code)
}

// MustServer returns the package's server, skipping the test when
// PostgreSQL 15 is not installed (failing under GANTRY_INTEGRATION=1).
func MustServer(tb testing.TB) *pgtest.Instance {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = pgtest.New() })
	if errors.Is(sharedErr, pgtest.ErrNotInstalled) && os.Getenv("GANTRY_INTEGRATION") != "1" {
		tb.Skip(sharedErr)
	} else if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// MustBinding creates a database for the test and binds env to it.
func MustBinding(tb testing.TB, env, engine string) gantry.DatabaseBinding {
	tb.Helper()
	srv := MustServer(tb)
	name := fmt.Sprintf("t%d_%s", dbSeq.Add(1), env)
	return gantry.DatabaseBinding{App: "shop", Env: env, Engine: engine, URL: srv.CreateDB(tb, name), SnapshotDir: tb.TempDir()}
}

func newChanger(tb testing.TB) *dbchange.Changer {
	srv := MustServer(tb)
	return &dbchange.Changer{BinDir: srv.BinDir, Jobs: 2}
}

// migrationsFS returns a release's migrations directory holding the named
// files of testdata/dir (all of them when none is named).
func migrationsFS(tb testing.TB, dir string, files ...string) fs.FS {
	tb.Helper()
	root := path.Join("testdata", dir)
	m := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		keep := len(files) == 0
		for _, f := range files {
			keep = keep || strings.HasPrefix(path.Base(p), f)
		}
		if keep {
			b, err := os.ReadFile(path.Join(root, p))
			if err != nil {
				return err
			}
			m[p] = &fstest.MapFile{Data: b}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func release(id string) *gantry.Release { return &gantry.Release{ID: id, App: "shop", Version: id} }

// MustDeploy plans and expands a release, expecting the given action.
func MustDeploy(tb testing.TB, c *dbchange.Changer, b gantry.DatabaseBinding, rel *gantry.Release, fsys fs.FS, live bool, want string) *gantry.MigrationPlan {
	tb.Helper()
	ctx := context.Background()
	p, err := c.Plan(ctx, b, gantry.PlanRequest{Release: rel, Migrations: fsys, Live: live})
	if err != nil {
		tb.Fatalf("plan %s: %v", rel.ID, err)
	}
	if p.Action != want {
		tb.Fatalf("plan %s: action = %s (%s), want %s", rel.ID, p.Action, p.Reason, want)
	}
	if _, err := c.Expand(ctx, b, p); err != nil {
		tb.Fatalf("expand %s: %v", rel.ID, err)
	}
	return p
}

// MustAppDB opens the database as an instance of a release would.
func MustAppDB(tb testing.TB, c *dbchange.Changer, b gantry.DatabaseBinding, fsys fs.FS) (*sql.DB, string) {
	tb.Helper()
	vars, err := c.ConnVars(context.Background(), b, fsys)
	if err != nil {
		tb.Fatalf("conn vars: %v", err)
	}
	db, err := sql.Open("postgres", vars["DATABASE_URL"])
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, vars["GANTRY_DB_SCHEMA"]
}

func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := gantry.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func envWith(active, standby *gantry.Slot) *gantry.Environment {
	env := &gantry.Environment{App: "shop", Name: "prod", Slots: map[string]*gantry.Slot{}}
	if active != nil {
		env.Active = active.Name
		env.Slots[active.Name] = active
	}
	if standby != nil {
		env.Slots[standby.Name] = standby
	}
	return env
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
