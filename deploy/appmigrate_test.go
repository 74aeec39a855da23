package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// selfMigrating is an app that migrates its own schema: with run, through
// its command; without, as it starts.
func selfMigrating(run string, compatible bool) App {
	app := Simple("forum")
	app.Envs = app.Envs[:1]
	extra := "database:\n  engine: postgres\n  migrate_on_start: true\n"
	if run != "" {
		extra = "database:\n  engine: postgres\n  migrations: {engine: command, run: \"" + run + "\""
		if compatible {
			extra += ", compatible: true"
		}
		extra += "}\n"
	}
	app.Extra = extra
	return app
}

// migrateByCommand makes the app's command change the fake database to
// the schema of the release's version, and notes whether every request
// was held at the router while it ran.
func migrateByCommand(t *testing.T, h *Harness, heldDuring *[]bool) {
	h.O.RunMigration = func(ctx context.Context, rel *gantry.Release, command string, vars map[string]string) (string, error) {
		url := vars["DATABASE_URL"]
		if url == "" {
			t.Errorf("the migration command got no DATABASE_URL: %v", vars)
		}
		rs, ok := h.Mem.Route("forum/test")
		*heldDuring = append(*heldDuring, !ok || (rs.Paused && !rs.WritesOnly))
		h.DB.Migrate(url, "schema of "+rel.Version)
		return "migrated", nil
	}
}

// selfMigratingHarness returns a harness whose app forum migrates itself
// (see selfMigrating) by a command that migrateByCommand fakes, and the
// list it notes in whether requests were held during each run.
func selfMigratingHarness(t *testing.T, run string, compatible bool) (*Harness, App, *[]bool) {
	h := NewHarness(t, Options{})
	held := new([]bool)
	migrateByCommand(t, h, held)
	return h, selfMigrating(run, compatible), held
}

func TestAppMigrationHoldsRequestsAndRecordsTheSchema(t *testing.T) {
	h, app, held := selfMigratingHarness(t, "bin/app migrate", false)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	h.MustDeploy(t, "forum", "test", v1)
	h.MustDeploy(t, "forum", "test", v2)
	if len(*held) != 2 || !(*held)[1] {
		t.Errorf("requests held during each migration: %v; want the second (a route existed) held, every request", *held)
	}
	url := h.DBURL("forum", "test")
	if got := h.DB.Schema(url); got != "schema of 2.0.0" {
		t.Errorf("schema after the deploy: %q", got)
	}
	if rs, _ := h.Mem.Route("forum/test"); rs.Paused {
		t.Error("the route is still paused after the deploy")
	}
	ledger, _ := h.DB.Ledger(h.Ctx, gantry.DatabaseBinding{URL: url})
	var rows []*gantry.MigrationRecord
	for _, r := range ledger {
		if r.Phase == gantry.PhaseApp {
			rows = append(rows, r)
		}
	}
	if len(rows) != 2 || rows[1].ReleaseID != v2.ID || rows[1].Before != rows[0].After || rows[1].Before == rows[1].After || rows[1].Snapshot == "" {
		t.Fatalf("ledger rows of the app's migrations: %+v", rows)
	}
	h.MustConsistent(t, "forum", "test")
}

func TestAppMigrationFailureRestoresTheSnapshot(t *testing.T) {
	h, app, _ := selfMigratingHarness(t, "bin/app migrate", false)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	h.MustDeploy(t, "forum", "test", v1)
	h.Driver.SetRelease(v2.ID, memdriver.Knobs{FailStart: true})
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	if err == nil {
		t.Fatal("a deploy whose candidate cannot start succeeded")
	}
	if got := h.DB.Schema(h.DBURL("forum", "test")); got != "schema of 1.0.0" {
		t.Errorf("schema after the failed deploy: %q, want 1.0.0's restored", got)
	}
	if len(h.DB.Calls("restore")) != 1 {
		t.Errorf("restores: %+v", h.DB.Calls("restore"))
	}
	if got := h.ActiveRelease(t, "forum", "test"); got != v1.ID {
		t.Errorf("active after the failure: %s, want %s", got, v1.ID)
	}
	if rs, _ := h.Mem.Route("forum/test"); rs.Paused {
		t.Error("the route is still paused after the failure")
	}
	h.MustConsistent(t, "forum", "test")
}

func TestAppMigrationRollbackRefusedThenForced(t *testing.T) {
	h, app, _ := selfMigratingHarness(t, "bin/app migrate", false)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	h.MustDeploy(t, "forum", "test", v1)
	h.MustDeploy(t, "forum", "test", v2)
	snaps := h.DB.Calls("snapshot")
	if len(snaps) != 2 {
		t.Fatalf("snapshots: %+v", snaps)
	}
	before := h.state(t, "forum")
	_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "forum", Env: "test", Actor: "dev"}, nil)
	h.mustRefuse(t, "forum", before, err, "schema", "gantry rollback test --force")
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "snapshot snap-") {
		t.Errorf("the refusal does not name the snapshot: %s", msg)
	} else {
		t.Log(msg)
	}
	// A cold deploy of the older release is refused as well.
	_, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: v1.ID, Actor: "dev"}, nil)
	h.mustRefuse(t, "forum", before, err, "schema", "--force")

	_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "forum", Env: "test", Actor: "dev", Force: true}, nil)
	mustAllow(t, "rollback --force", err)
	ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "forum", Env: "test", Limit: 1})
	t.Log("rollback --force:", h.Steps(t, ds[0].ID))
	if got := h.ActiveRelease(t, "forum", "test"); got != v1.ID {
		t.Errorf("after rollback --force %s is active, want %s", got, v1.ID)
	}
	if got := h.DB.Schema(h.DBURL("forum", "test")); got != "schema of 1.0.0" {
		t.Errorf("schema after rollback --force: %q", got)
	}
	if rs, _ := h.Mem.Route("forum/test"); rs.Paused {
		t.Error("the route is still paused after rollback --force")
	}
	h.MustConsistent(t, "forum", "test")
	// Going forward again is a deploy like the first: 2.0.0 migrates again.
	_, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	mustAllow(t, "deploy 2.0.0 again", err)
	if got := h.DB.Schema(h.DBURL("forum", "test")); got != "schema of 2.0.0" {
		t.Errorf("schema after deploying 2.0.0 again: %q", got)
	}
}

func TestAppMigrationAtStart(t *testing.T) {
	h := NewHarness(t, Options{})
	app := selfMigrating("", false)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	url := h.DBURL("forum", "test")
	heldAtStart := true
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "start-group" && s.State == gantry.StepStarted {
			if rs, ok := h.Mem.Route("forum/test"); ok && !rs.Paused {
				heldAtStart = false
			}
			h.DB.Migrate(url, "schema of "+d.Version)
		}
	})
	h.MustDeploy(t, "forum", "test", v1)
	h.MustDeploy(t, "forum", "test", v2)
	h.SetOnStep(nil)
	if !heldAtStart {
		t.Error("the candidate started (and migrated) while requests went to the old release")
	}
	before := h.state(t, "forum")
	_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "forum", Env: "test", Actor: "dev"}, nil)
	h.mustRefuse(t, "forum", before, err, "schema", "gantry rollback test --force")
}

func TestAppMigrationCompatibleIsBlueGreen(t *testing.T) {
	h, app, held := selfMigratingHarness(t, "bin/app migrate", true)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	h.MustDeploy(t, "forum", "test", v1)
	h.MustDeploy(t, "forum", "test", v2)
	if len(*held) != 2 || (*held)[1] {
		t.Errorf("requests held during a compatible migration: %v", *held)
	}
	if len(h.Mem.Calls("pause")) != 0 {
		t.Errorf("a compatible migration paused the route: %+v", h.Mem.Calls("pause"))
	}
}

func TestAppMigrationCrashBeforeTheSwitchRestores(t *testing.T) {
	h, app, _ := selfMigratingHarness(t, "bin/app migrate", false)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	h.MustDeploy(t, "forum", "test", v1)
	h.CrashAt(t, "start-group", gantry.StepStarted, func() {
		h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	})
	url := h.DBURL("forum", "test")
	if got := h.DB.Schema(url); got != "schema of 2.0.0" {
		t.Fatalf("before the crash the app migrated to %q", got)
	}
	if err := h.NewOrchestrator().Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.DB.Schema(url); got != "schema of 1.0.0" {
		t.Errorf("schema after recovery: %q, want 1.0.0's restored", got)
	}
	if got := h.ActiveRelease(t, "forum", "test"); got != v1.ID {
		t.Errorf("active after recovery: %s, want %s", got, v1.ID)
	}
	if rs, _ := h.Mem.Route("forum/test"); rs.Paused {
		t.Error("the route is still paused after recovery")
	}
}

func TestAppMigrationRefusesPauseAfter(t *testing.T) {
	h := NewHarness(t, Options{})
	app := selfMigrating("bin/app migrate", false)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	one := 0
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: v1.ID, Actor: "dev", PauseAfter: &one}, nil)
	if gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("--pause-after on a self-migrating app: %v, want EINVALID", err)
	}
}

func TestAppMigrationCompatibleRollsBack(t *testing.T) {
	h, app, _ := selfMigratingHarness(t, "bin/app migrate", true)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	h.MustDeploy(t, "forum", "test", v1)
	h.MustDeploy(t, "forum", "test", v2)
	_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "forum", Env: "test", Actor: "dev"}, nil)
	mustAllow(t, "rollback across a migration declared compatible", err)
	if got := h.ActiveRelease(t, "forum", "test"); got != v1.ID {
		t.Errorf("after the rollback %s is active, want %s", got, v1.ID)
	}
}

func TestAppMigrationWatchDoesNotFlipOntoTheNewSchema(t *testing.T) {
	h, app, _ := selfMigratingHarness(t, "bin/app migrate", false)
	app.Verify = true
	app.Envs[0].Watch = "{window: 2s, max_error_rate: 0.05, min_requests: 10}"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	h.MustDeploy(t, "forum", "test", v1)
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "watch" && s.State == gantry.StepStarted {
			// The candidate had no preview traffic (the route was held):
			// the watch takes its counters at its first poll as the base,
			// so the failing traffic comes after it.
			go func() {
				time.Sleep(300 * time.Millisecond)
				for _, a := range h.Mem.Serving("forum/test") {
					h.Mem.AddTraffic(a, 100, 40, 0)
				}
			}()
		}
	})
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	h.SetOnStep(nil)
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "automatic rollback to 1.0.0 was refused (schema: ") {
		t.Errorf("the deploy's error does not say the schema gate refused the automatic rollback: %v", err)
	}
	if got := h.ActiveRelease(t, "forum", "test"); got != v2.ID {
		t.Errorf("after a breach, %s is active; want %s to keep serving (1.0.0 never ran on 2.0.0's schema)", got, v2.ID)
	}
	if got := h.DB.Schema(h.DBURL("forum", "test")); got != "schema of 2.0.0" {
		t.Errorf("schema after the refused automatic rollback: %q", got)
	}
	h.MustConsistent(t, "forum", "test")
}

func TestAppMigrationColdForcedRollback(t *testing.T) {
	h, app, _ := selfMigratingHarness(t, "bin/app migrate", false)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	v3 := h.MustRelease(t, app, Rel{Version: "3.0.0"})
	for _, rel := range []*gantry.Release{v1, v2, v3} {
		h.MustDeploy(t, "forum", "test", rel)
	}
	before := h.state(t, "forum")
	_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "forum", Env: "test", To: v1.ID, Actor: "dev"}, nil)
	h.mustRefuse(t, "forum", before, err, "schema", "gantry rollback test --to "+v1.ID+" --force")
	_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "forum", Env: "test", To: v1.ID, Actor: "dev", Force: true}, nil)
	mustAllow(t, "cold rollback --force", err)
	if got := h.ActiveRelease(t, "forum", "test"); got != v1.ID {
		t.Errorf("after the cold rollback --force %s is active, want %s", got, v1.ID)
	}
	if got := h.DB.Schema(h.DBURL("forum", "test")); got != "schema of 1.0.0" {
		t.Errorf("schema after the cold rollback --force: %q", got)
	}
	if rs, _ := h.Mem.Route("forum/test"); rs.Paused {
		t.Error("the route is still paused after the cold rollback --force")
	}
	h.MustConsistent(t, "forum", "test")
}

// An app that migrates itself has no migration Gantry could undo: a db
// rollback says so and names the commands that do go back.
func TestAppMigrationDatabaseRollbackPointsToTheSnapshot(t *testing.T) {
	for _, run := range []string{"bin/app migrate", ""} {
		h, app, _ := selfMigratingHarness(t, run, false)
		h.MustDeploy(t, "forum", "test", h.MustRelease(t, app, Rel{Version: "1.0.0"}))
		_, err := h.O.DatabaseRollback(h.Ctx, "forum", "test", false)
		if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "gantry rollback test --force") {
			t.Errorf("db rollback of an app that migrates itself (run %q): got %v, want EINVALID naming the forced rollback", run, err)
		}
	}
}

// TestAppMigrationHoldsEveryRequestWhateverTheStrategy: Miniflux with
// strategy maintenance answered 39 of 818 page views 500, as only writes
// were held while the app migrated. For an app that migrates itself every
// request is held, reads included, under each strategy.
func TestAppMigrationHoldsEveryRequestWhateverTheStrategy(t *testing.T) {
	for _, strategy := range []string{gantry.StrategyBlueGreen, gantry.StrategyMaintenance, gantry.StrategyRestart} {
		t.Run(strategy, func(t *testing.T) {
			h, app, held := selfMigratingHarness(t, "bin/app migrate", false)
			v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
			v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
			h.MustDeploy(t, "forum", "test", v1)
			if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: v2.ID, Actor: "dev", Strategy: strategy}, nil); err != nil {
				t.Fatal(err)
			}
			if len(*held) != 2 || !(*held)[1] {
				t.Errorf("every request held while the app migrated: %v; want true for the second deploy", *held)
			}
			if got := h.ActiveRelease(t, "forum", "test"); got != v2.ID {
				t.Errorf("active after the deploy: %s, want %s", got, v2.ID)
			}
			h.MustConsistent(t, "forum", "test")
		})
	}
}

// TestAppSchemaChangedByHandSaysWhatIsAllowed: a release that ran on a
// schema the database left outside any deploy (changed by hand), with no
// snapshot recorded of the change, is refused by the schema gate, which
// still says what is allowed, as every gate does.
func TestAppSchemaChangedByHandSaysWhatIsAllowed(t *testing.T) {
	h, app, _ := selfMigratingHarness(t, "bin/app migrate", false)
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	h.MustDeploy(t, "forum", "test", v1)
	h.MustDeploy(t, "forum", "test", v2)
	h.DB.Migrate(h.DBURL("forum", "test"), "changed by hand")
	before := h.state(t, "forum")
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	h.mustRefuse(t, "forum", before, err, "schema", "gantry db snapshots test")
	t.Log(gantry.ErrorMessage(err))
}
