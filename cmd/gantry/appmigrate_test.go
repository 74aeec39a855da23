package main

import (
	"database/sql"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/loadtest"
	"github.com/gantry-dev/gantry/internal/pgtest"
	_ "github.com/lib/pq"
)

// TestSelfMigratingAppUnderLoad: an app that migrates its own schema with
// its own command (issue 19), version 2 renaming a column version 1 writes
// on every request, is deployed from 1 to 2 under continuous load with no
// failed request: every request is held while the command runs and the new
// release takes over. The plain rollback is refused (exit 4, naming the
// snapshot); rollback --force restores it and flips with every
// request held, and no request fails during or after it.
func TestSelfMigratingAppUnderLoad(t *testing.T) {
	t.Run("command", func(t *testing.T) {
		selfMigratingUnderLoad(t, `  migrations: {engine: command, run: "bin/app migrate"}`, "", "db-migrate", "--force")
	})
	t.Run("at-start", func(t *testing.T) {
		selfMigratingUnderLoad(t, `  migrate_on_start: true`, `    vars: {MIGRATE_ON_START: "1"}
`, "start-group", "--force")
	})
	// A database with no migrations key is the app's own (Miniflux's
	// manifest): deployed as one that migrates at start; rolled back with
	// the name for --force.
	t.Run("owns-schema", func(t *testing.T) {
		selfMigratingUnderLoad(t, ``, `    vars: {MIGRATE_ON_START: "1"}
`, "start-group", "--restore")
	})
}

// selfMigratingUnderLoad runs the scenario with the manifest's database
// lines db, extra lines for the environment, the step that migrates, and
// the rollback's flag that restores the snapshot (--force or --restore).
func selfMigratingUnderLoad(t *testing.T, db, envExtra, migrates, restore string) {
	needTools(t)
	pg := pgtest.Start(t)
	dbURL := pg.CreateDB(t, "forum_test")
	s := openServerWithDatabase(t, t.TempDir(), dbURL)

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
verify:
  - http: {path: /, status: 200, contains: version}
database:
  engine: postgres
`+db+`
environments:
  test:
    hosts: [test.forum.localhost]
    secrets: [DATABASE_URL]
`+envExtra)
	writeFile(t, repo, "VERSION", "1.0.0\n")
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "1.0.0")
	writeFile(t, repo, "VERSION", "2.0.0\n")
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "2.0.0")

	mustCLI(t, s.APIURL, "app", "add", "forum", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "HEAD~1")
	mustCLI(t, s.APIURL, "release", "build", "--ref", "main")
	wantVersion(t, s.RouterURL, "test.forum.localhost", "1.0.0")

	load := func() *loadtest.Load {
		return loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "test.forum.localhost", Workers: 4, MaxDuration: 5 * time.Minute})
	}
	settle := func(l *loadtest.Load, what string) {
		t.Helper()
		time.Sleep(500 * time.Millisecond)
		l.Stop()
		t.Logf("%s: %d requests answered 2xx, %d failed", what, l.OK.Load(), l.Failed.Load())
		if f := l.Failures(); len(f) > 0 || l.OK.Load() == 0 {
			t.Errorf("%s: %d failed requests (of %d): %v", what, len(f), l.OK.Load()+l.Failed.Load(), f[:min(len(f), 10)])
		}
	}

	l := load()
	time.Sleep(300 * time.Millisecond)
	mustCLI(t, s.APIURL, "deploy", "test", "--release", "2.0.0")
	settle(l, "deploy 1.0.0 → 2.0.0")
	wantVersion(t, s.RouterURL, "test.forum.localhost", "2.0.0")
	d := lastDeploymentOf(t, s, "forum", "test")
	for _, step := range []string{"hold-requests", "db-snapshot", migrates, "switch", "release-requests", "db-record"} {
		if !journalHas(d, step, "") {
			t.Errorf("the deploy has no %s step: %+v", step, d.Steps)
		}
	}
	pgdb, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pgdb.Close()
	var paths int
	if err := pgdb.QueryRow(`SELECT count(*) FROM visits WHERE path = '/'`).Scan(&paths); err != nil {
		t.Fatalf("2.0.0's schema: %v", err)
	}

	_, errs, code := runCLI(t, s.APIURL, "rollback", "test")
	if code != 4 || !strings.Contains(errs, "schema:") || !strings.Contains(errs, "snapshot") || !strings.Contains(errs, "--force") {
		t.Fatalf("plain rollback across the app's migration: exit %d, %s; want 4 from the schema gate naming the snapshot", code, errs)
	}
	t.Logf("plain rollback refused: %s", strings.TrimSpace(errs))
	// 2.0.0's page views wrote visits since the snapshot: the refusal
	// counts the rows written, "about" as PostgreSQL's statistics lag by
	// about a second.
	if m := regexp.MustCompile(`about (\d+) rows? written since would be lost`).FindStringSubmatch(errs); m == nil || m[1] == "0" {
		t.Errorf("the refusal does not count the writes since the snapshot: %s", errs)
	} else {
		t.Logf("refusal counts about %s rows written since the snapshot (the visits table holds %d, older ones included)", m[1], paths)
	}
	wantVersion(t, s.RouterURL, "test.forum.localhost", "2.0.0")

	l = load()
	time.Sleep(300 * time.Millisecond)
	mustCLI(t, s.APIURL, "rollback", "test", restore)
	settle(l, "during and after rollback "+restore)
	wantVersion(t, s.RouterURL, "test.forum.localhost", "1.0.0")
	var pages int
	if err := pgdb.QueryRow(`SELECT count(*) FROM visits WHERE page = '/'`).Scan(&pages); err != nil {
		t.Fatalf("1.0.0's schema after the restore: %v", err)
	}
}
