package main

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// TestCloneCrashedDuringItsCopy: the server is killed (SIGKILL) while
// env clone --with-data copies prod's database, for an app that owns its
// schema (Miniflux's manifest: database without migrations) and whose
// DATABASE_URL secrets are sealed on the server. The copy was being made
// under a name of its own, never testnew's; the restarted server's
// recovery (which needs the sealed secrets) drops it with testnew, and
// the same clone then runs (Miniflux: the retry refused to copy over the
// partial database, which had to be dropped by hand).
func TestCloneCrashedDuringItsCopy(t *testing.T) {
	needTools(t)
	pg := pgtest.Start(t)
	prodURL, testnewURL := pg.CreateDB(t, "forum_prod"), pg.URLFor("forum_testnew")
	partialURL := pg.URLFor("forum_testnew_gantry_partial")
	data, router := t.TempDir(), freeAddr(t)
	key := "GANTRY_TEST_SECRETS_KEY=" + filepath.Join(t.TempDir(), "secrets.key")

	repo := filepath.Join(t.TempDir(), "forum")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(repo, "bin", "app"), "../../internal/selfmigrateapp").CombinedOutput(); err != nil {
		t.Fatalf("build the test app: %v\n%s", err, out)
	}
	writeFile(t, repo, "gantry.yml", `app: forum
services:
  web:
    build: {command: "true", artifacts: [bin/app]}
    run: bin/app
    health: {path: /up, interval: 100ms}
database:
  engine: postgres
environments:
  prod:
    hosts: [prod.forum.localhost]
    secrets: [DATABASE_URL]
    vars: {MIGRATE_ON_START: "1"}
`)
	writeFile(t, repo, "VERSION", "1.0.0\n")
	// The copy is held open by its post-copy script while the server is
	// killed.
	writeFile(t, repo, "slow.sql", "SELECT pg_sleep(60);\n")
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "1.0.0")

	srv := startChild(t, data, router, "", key)
	ctx := context.Background()
	c := api.NewClient(srv.API, "tester")
	mustCLI(t, srv.API, "app", "add", "forum", "--repo", repo)
	for env, url := range map[string]string{"prod": prodURL, "testnew": testnewURL} {
		if err := c.SetSecret(ctx, "forum", env, "DATABASE_URL", url); err != nil {
			t.Fatal(err)
		}
	}
	mustCLI(t, srv.API, "deploy", "prod", "--ref", "main")
	wantVersion(t, srv.Router, "prod.forum.localhost", "1.0.0")

	done := make(chan struct{})
	go func() {
		defer close(done)
		runCLI(t, srv.API, "env", "clone", "prod", "testnew", "--with-data", "--post-copy", filepath.Join(repo, "slow.sql"))
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !dbExists(t, prodURL, partialURL) {
		if time.Now().After(deadline) {
			t.Fatal("the clone's copy never appeared as forum_testnew_gantry_partial")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dbExists(t, prodURL, testnewURL) {
		t.Error("the copy being made already holds testnew's database name")
	}
	srv.cmd.Process.Kill()
	srv.cmd.Wait()
	<-done

	srv = startChild(t, data, router, "", key)
	defer srv.stop()
	if dbExists(t, prodURL, partialURL) || dbExists(t, prodURL, testnewURL) {
		t.Fatal("the unfinished copy is still there after the restart")
	}
	c = api.NewClient(srv.API, "tester")
	ds, err := c.ListDeployments(ctx, "forum", "testnew", 1, 0)
	if err != nil || len(ds) != 1 || ds[0].State != gantry.DeploymentRecovered || !strings.Contains(ds[0].Error, "database copy") {
		t.Errorf("the interrupted clone's record: %+v (%v)", ds, err)
	}
	mustCLI(t, srv.API, "env", "clone", "prod", "testnew", "--with-data")
	wantVersion(t, srv.Router, "testnew.forum.localhost", "1.0.0")
	if out := mustCLI(t, srv.API, "env", "delete", "testnew", "--force"); !strings.Contains(out, "database Gantry created for it is dropped") {
		t.Errorf("env delete does not say it dropped the clone's database: %q", out)
	}
	if dbExists(t, prodURL, testnewURL) {
		t.Error("env delete left the database the clone created")
	}
}

// dbExists says the database of url is on the server (asked through via).
func dbExists(t *testing.T, via, url string) bool {
	t.Helper()
	name := url[strings.LastIndex(url, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	db, err := sql.Open("postgres", via)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}
