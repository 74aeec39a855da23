package deploy_test

// The environment's database and the checks made before anything changes
// (issue 19): the database is the environment's, whichever release serves;
// a deploy refused for what it needs stops nothing.

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestDatabaseBelongsToTheEnvironment: after a rollback to a release that
// declares no database, the db verbs still find the environment's
// database (Miniflux: "release 2.2.10 of app miniflux declares no
// database").
func TestDatabaseBelongsToTheEnvironment(t *testing.T) {
	h := NewHarness(t, Options{})
	plain := Simple("shop")
	plain.Envs = plain.Envs[:1]
	withDB := plain
	withDB.Database = true
	v1 := h.MustRelease(t, plain, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, withDB, Rel{Version: "1.1.0", Migrations: []string{"01_init"}})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2)
	if _, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil); err != nil {
		t.Fatalf("rollback to 1.0.0: %v", err)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Fatalf("serving after the rollback: %s, want 1.0.0 (%s)", got, v1.ID)
	}
	st, err := h.O.DatabaseStatus(h.Ctx, "shop", "test")
	if err != nil {
		t.Fatalf("db status after a rollback to a release without a database: %v", err)
	}
	if st.Env != "test" || st.Engine != gantry.MigrationEnginePgroll {
		t.Errorf("db status: env %q engine %q, want test's database read by pgroll", st.Env, st.Engine)
	}
	if _, err := h.O.Snapshot(h.Ctx, "shop", "test", "by hand"); err != nil {
		t.Errorf("db snapshot after the rollback: %v", err)
	}
	if _, err := h.O.Snapshots(h.Ctx, "shop", "test"); err != nil {
		t.Errorf("db snapshots after the rollback: %v", err)
	}
}

// TestDatabaseOfAnEnvironmentThatNeverHadOne: the db verbs say the
// environment has none, naming it.
func TestDatabaseOfAnEnvironmentThatNeverHadOne(t *testing.T) {
	h := NewHarness(t, Options{})
	plain := Simple("shop")
	plain.Envs = plain.Envs[:1]
	h.MustDeploy(t, "shop", "test", h.MustRelease(t, plain, Rel{Version: "1.0.0"}))
	_, err := h.O.DatabaseStatus(h.Ctx, "shop", "test")
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), `environment "test" has no database`) {
		t.Errorf("db status of an environment without a database: %v", err)
	}
}

// TestDatabaseWithoutMigrationsIsTheAppsOwn: `database: {engine: postgres}`
// alone passes the manifest check (MustRelease decodes it) and deploys as
// an app that migrates as it starts: a snapshot before, the schema it runs
// on recorded after, every request held while it starts (Miniflux: every
// deploy was refused, "declares a database but carries no migrations").
func TestDatabaseWithoutMigrationsIsTheAppsOwn(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("reader")
	app.Envs = app.Envs[:1]
	app.Extra = "database:\n  engine: postgres\n"
	v1 := h.MustRelease(t, app, Rel{Version: "2.2.10"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.3.5"})
	h.MustDeploy(t, "reader", "test", v1)
	d := h.MustDeploy(t, "reader", "test", v2)
	steps := strings.Join(h.Steps(t, d.ID), " ")
	for _, want := range []string{"hold-requests", "db-snapshot", "db-record", "release-requests"} {
		if !strings.Contains(steps, want) {
			t.Errorf("deploy of 2.3.5 has no %s step: %s", want, steps)
		}
	}
	st, err := h.O.DatabaseStatus(h.Ctx, "reader", "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Engine != gantry.MigrationEngineCommand || len(st.Ledger) < 2 {
		t.Errorf("db status: engine %q, %d ledger rows; want the app's own schema, one row per deploy", st.Engine, len(st.Ledger))
	}
}
