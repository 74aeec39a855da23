package deploy_test

// The environment's database and the checks made before anything changes
// (issue 19): the database is the environment's, whichever release serves;
// a deploy refused for what it needs stops nothing.

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
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

// TestRefusedDeployKeepsTheWarmStandby: a deploy refused for what its
// plan needs (a secret not set, a database change that does not fit) is
// refused before anything changes: the warm standby still runs, so a
// rollback is still one flip (Miniflux: the refused deploy had stopped
// the standby, and test lost its rollback target).
func TestRefusedDeployKeepsTheWarmStandby(t *testing.T) {
	base := Simple("shop")
	base.Envs = []Env{{Name: "test"}}
	needsSecret := base
	needsSecret.Envs = []Env{{Name: "test", Secrets: []string{"API_KEY", "MAIL_PASSWORD"}}}
	withDB := base
	withDB.Database = true
	for _, tc := range []struct {
		name string
		app  App
		rel  Rel
		want string
	}{
		{"secrets not set", needsSecret, Rel{Version: "1.2.0"}, "API_KEY, MAIL_PASSWORD"},
		{"database plan refused", withDB, Rel{Version: "1.2.0", Migrations: []string{"01", "02"}}, "2 pending migrations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHarness(t, Options{})
			v1 := h.MustRelease(t, base, Rel{Version: "1.0.0"})
			v2 := h.MustRelease(t, base, Rel{Version: "1.1.0"})
			h.MustDeploy(t, "shop", "test", v1)
			h.MustDeploy(t, "shop", "test", v2)
			before := len(h.Driver.RunningIn("shop", "test"))
			bad := h.MustRelease(t, tc.app, tc.rel)
			_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: bad.ID, Actor: "dev"}, nil)
			if err == nil || !strings.Contains(gantry.ErrorMessage(err), tc.want) {
				t.Errorf("deploy of %s: %v; want it refused naming %q", tc.rel.Version, err, tc.want)
			}
			env := h.MustEnv(t, "shop", "test")
			standby := env.Slots[gantry.OtherSlot(env.Active)]
			if standby == nil || standby.ReleaseID != v1.ID || len(standby.Instances) == 0 {
				t.Fatalf("standby after the refused deploy: %+v; want 1.0.0 still running", standby)
			}
			if n := len(h.Driver.RunningIn("shop", "test")); n != before {
				t.Errorf("instances running: %d, want %d as before the refused deploy", n, before)
			}
			if _, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil); err != nil {
				t.Fatalf("rollback after the refused deploy: %v", err)
			}
			if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
				t.Errorf("serving after the rollback: %s, want 1.0.0", got)
			}
		})
	}
}

// cloneSource is an app whose prod needs two secrets and a database, and
// derives a variable from its host; prod runs 1.0.0 with those set.
func cloneSource(t *testing.T, h *Harness) *gantry.Release {
	t.Helper()
	app := Simple("shop")
	app.Database = true
	app.Envs = []Env{{Name: "prod", Secrets: []string{"API_KEY", "MAIL_PASSWORD"}, Vars: `{BASE_URL: "https://{host}/", SITE: "{app} on {env}"}`}}
	rel := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01_init"}})
	for _, name := range []string{"API_KEY", "MAIL_PASSWORD"} {
		h.mustSecret(t, "shop", "prod", name)
	}
	h.MustDeploy(t, "shop", "prod", rel)
	return rel
}

func (h *Harness) mustSecret(tb testing.TB, app, env, name string) {
	tb.Helper()
	if err := h.Store.PutSecret(h.Ctx, app, env, name, []byte("value of "+name)); err != nil {
		tb.Fatal(err)
	}
}

// TestCloneChecksEverySecretFirst: a clone names every secret the new
// environment lacks before it creates or copies anything (Miniflux: only
// DATABASE_URL was checked, the data was copied, then the clone failed on
// another secret); a variable derived from the host follows the clone.
func TestCloneChecksEverySecretFirst(t *testing.T) {
	h := NewHarness(t, Options{})
	cloneSource(t, h)
	clone := gantry.CloneRequest{App: "shop", Src: "prod", Dst: "testnew", Actor: "dev", WithData: true}
	_, err := h.O.Clone(h.Ctx, clone, nil)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "API_KEY, MAIL_PASSWORD") {
		t.Fatalf("clone without the new environment's secrets: %v; want both named", err)
	}
	if _, err := h.Store.FindEnvironment(h.Ctx, "shop", "testnew"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("testnew after the refused clone: %v; want it not made", err)
	}
	if calls := h.DB.Calls("copy"); len(calls) != 0 {
		t.Errorf("database copies made by the refused clone: %v", calls)
	}
	h.mustSecret(t, "shop", "testnew", "API_KEY")
	_, err = h.O.Clone(h.Ctx, clone, nil)
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "MAIL_PASSWORD") || strings.Contains(msg, "API_KEY") {
		t.Fatalf("clone with one secret set: %v; want MAIL_PASSWORD alone named", err)
	}
	h.mustSecret(t, "shop", "testnew", "MAIL_PASSWORD")
	if _, err := h.O.Clone(h.Ctx, clone, nil); err != nil {
		t.Fatalf("clone with every secret set: %v", err)
	}
	for env, want := range map[string][2]string{
		"prod":    {"https://prod.shop.localhost/", "shop on prod"},
		"testnew": {"https://testnew.shop.localhost/", "shop on testnew"},
	} {
		running := h.Driver.RunningIn("shop", env)
		if len(running) == 0 {
			t.Fatalf("nothing runs on %s", env)
		}
		if got := running[0].Vars; got["BASE_URL"] != want[0] || got["SITE"] != want[1] {
			t.Errorf("%s's BASE_URL, SITE = %q, %q; want %q, %q", env, got["BASE_URL"], got["SITE"], want[0], want[1])
		}
	}
}

// TestFailedCloneRemovesWhatItMade: a clone whose release does not come
// up on the new environment removes the environment and its database
// copy, and the same clone then runs again (Miniflux: a stopped testnew
// and a filled database were left, and the retry refused to copy over it).
func TestFailedCloneRemovesWhatItMade(t *testing.T) {
	h := NewHarness(t, Options{})
	rel := cloneSource(t, h)
	for _, name := range []string{"API_KEY", "MAIL_PASSWORD"} {
		h.mustSecret(t, "shop", "testnew", name)
	}
	h.Driver.SetRelease(rel.ID, memdriver.Knobs{FailStart: true})
	clone := gantry.CloneRequest{App: "shop", Src: "prod", Dst: "testnew", Actor: "dev", WithData: true}
	d, err := h.O.Clone(h.Ctx, clone, nil)
	if err == nil {
		t.Fatal("the clone succeeded though its instances cannot start")
	}
	if _, err := h.Store.FindEnvironment(h.Ctx, "shop", "testnew"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("testnew after the failed clone: %v; want it removed", err)
	}
	if url := h.DBURL("shop", "testnew"); h.DB.Exists(url) {
		t.Errorf("testnew's database copy is still there after the failed clone")
	}
	if d == nil || !strings.Contains(strings.Join(h.Steps(t, d.ID), " "), "remove-clone") {
		t.Errorf("the failed clone's journal does not say what it removed")
	}
	h.Driver.SetRelease(rel.ID, memdriver.Knobs{})
	if _, err := h.O.Clone(h.Ctx, clone, nil); err != nil {
		t.Fatalf("the clone again, once its release starts: %v", err)
	}
	if applied, _ := h.DB.Applied(h.DBURL("shop", "testnew")); len(applied) != 1 {
		t.Errorf("testnew's database after the retry has migrations %v, want prod's copied", applied)
	}
}

// TestPromoteTakesAStrategy: promote takes --strategy as deploy does, so
// that an app whose migration the old release cannot live with is
// promoted with restart (Miniflux: promote had no --strategy); an unknown
// one is refused before anything runs.
func TestPromoteTakesAStrategy(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	for _, rel := range []*gantry.Release{v1, v2} {
		h.MustDeploy(t, "shop", "test", rel)
		if rel == v1 {
			if _, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev", Strategy: "sideways"}, nil)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), `unknown strategy "sideways"`) {
		t.Errorf("promote --strategy sideways: %v", err)
	}
	d, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev", Strategy: gantry.StrategyRestart}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Strategy != gantry.StrategyRestart {
		t.Errorf("promotion's strategy %q, want restart", d.Strategy)
	}
	env := h.MustEnv(t, "shop", "prod")
	if env.Active != gantry.SlotBlue || env.ActiveSlot().ReleaseID != v2.ID {
		t.Errorf("prod after a restart promotion: slot %s runs %s; want 1.1.0 in place on blue", env.Active, env.ActiveSlot().Version)
	}
}

// TestCloneWarnsOfTheSourcesHosts: a variable that names the source's host
// as written is copied as written, and the clone's journal says so and
// how to derive it instead.
func TestCloneWarnsOfTheSourcesHosts(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Envs = []Env{{Name: "prod", Vars: `{BASE_URL: "https://prod.shop.localhost/", LOG_LEVEL: info}`}}
	h.MustDeploy(t, "shop", "prod", h.MustRelease(t, app, Rel{Version: "1.0.0"}))
	d, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "prod", Dst: "testnew", Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, err := h.Store.FindDeployment(h.Ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	var detail string
	for _, s := range full.Steps {
		if s.Name == "create" && s.State == gantry.StepDone {
			detail = s.Detail
		}
	}
	if !strings.Contains(detail, "BASE_URL (prod.shop.localhost)") || !strings.Contains(detail, "{host}") || strings.Contains(detail, "LOG_LEVEL") {
		t.Errorf("the clone's create step says %q; want a warning naming BASE_URL alone and {host}", detail)
	}
}

// TestSelfMigratingAppWithAMissingArtifactMigratesNothing: a release whose
// artifact is gone from the store is refused before the app's migration
// runs, not after it (the snapshot would then have to be restored).
func TestSelfMigratingAppWithAMissingArtifactMigratesNothing(t *testing.T) {
	h, app, held := selfMigratingHarness(t, "bin/app migrate", false)
	h.MustDeploy(t, "forum", "test", h.MustRelease(t, app, Rel{Version: "1.0.0"}))
	good := h.MustRelease(t, app, Rel{Version: "2.0.0"})
	broken := *good
	broken.ID, broken.Version = good.ID+"x", "2.0.1"
	broken.Artifacts = map[string]gantry.Artifact{}
	for k, a := range good.Artifacts {
		broken.Artifacts[k] = a
	}
	broken.Artifacts["web"] = gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: "sha256:" + strings.Repeat("0", 64), Size: 1}
	if err := h.Store.CreateRelease(h.Ctx, &broken); err != nil {
		t.Fatal(err)
	}
	runs := len(*held)
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: broken.ID, Actor: "dev"}, nil)
	if gantry.ErrorCode(err) != gantry.ENOTFOUND || !strings.Contains(gantry.ErrorMessage(err), "missing from the artifact store") {
		t.Errorf("deploy of a release whose artifact is gone: %v", err)
	}
	if len(*held) != runs {
		t.Errorf("the app's migration ran %d more time(s) for a release that cannot start", len(*held)-runs)
	}
	if calls := h.DB.Calls("snapshot", "restore"); len(calls) > 1 {
		t.Errorf("database snapshots and restores: %v; want only the first deploy's snapshot", calls)
	}
}
