package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/dbchange"
	"github.com/gantry-dev/gantry/internal/loadtest"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

var schemaRE = regexp.MustCompile(`<dd id="schema">([^<]+)</dd>`)

func pageSchema(t *testing.T, routerURL, host string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, routerURL+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := schemaRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no schema on the page: %s", b)
	}
	return string(m[1])
}

// TestW4ExpandSwitchContract follows seed 002 with a real PostgreSQL: the
// schema change is expanded before the new release starts (the rollback
// point), the new release reaches its schema version through its
// connection settings while the old one keeps its own, a rollback flips
// traffic back and undoes the migration, and the contract runs only once
// the old slot has stopped.
func TestW4ExpandSwitchContract(t *testing.T) {
	needTools(t)
	pg := pgtest.Start(t)
	dbURL := pg.CreateDB(t, "hello_test")
	dir := t.TempDir()
	s := openServerWithDatabase(t, dir, dbURL)

	repo := helloRepo(t)
	migration := func(name, body string) {
		writeFile(t, filepath.Join(repo, "db", "migrations"), name, body)
	}
	os.MkdirAll(filepath.Join(repo, "db", "migrations"), 0o755)
	migration("01_create_users.yaml", "operations:\n  - create_table:\n      name: users\n      columns:\n        - {name: id, type: bigserial, pk: true}\n        - {name: name, type: text}\n")
	git(t, repo, "add", "-A")
	editManifest(t, repo, "database", func(m string) string {
		m = strings.Replace(m, "    hosts: [test.hello.localhost]\n", "    hosts: [test.hello.localhost]\n    secrets: [DATABASE_URL]\n", 1)
		m = strings.Replace(m, "    keep_warm: 10m\n", "    keep_warm: 10m\n", 1)
		return m + "database:\n  engine: postgres\n  migrations: {engine: pgroll, dir: db/migrations}\n"
	})
	commitChange(t, repo, "VERSION", "2.0.0\n", "2.0.0")
	git(t, repo, "tag", "v2.0.0")
	migration("02_rename_name.yaml", "operations:\n  - rename_column:\n      table: users\n      from: name\n      to: full_name\n")
	git(t, repo, "add", "-A")
	commitChange(t, repo, "VERSION", "2.1.0\n", "2.1.0")
	git(t, repo, "tag", "v2.1.0")

	cli := func(args ...string) string { t.Helper(); return mustCLI(t, s.APIURL, args...) }
	cli("app", "add", "hello", "--repo", repo)
	cli("deploy", "test", "--ref", "v2.0.0")
	oldSchema := pageSchema(t, s.RouterURL, "test.hello.localhost")
	cli("release", "build", "--ref", "v2.1.0")
	ctx := context.Background()
	changer := &dbchange.Changer{}
	binding := gantry.DatabaseBinding{App: "hello", Env: "test", Engine: "pgroll", URL: dbURL}

	load := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "test.hello.localhost", Workers: 2, MaxDuration: 5 * time.Minute})
	// Expand, then switch: the new release runs on the new schema version.
	cli("deploy", "test", "--release", "2.1.0")
	if d := lastDeployment(t, s, "test"); !journalHas(d, "db-expand", "02_rename_name") {
		t.Fatalf("deploy of 2.1.0 did not expand 02_rename_name before starting: %+v", d.Steps)
	}
	newSchema := pageSchema(t, s.RouterURL, "test.hello.localhost")
	if newSchema == oldSchema || newSchema == "-" {
		t.Errorf("new release's schema %q, old %q: want a new schema version", newSchema, oldSchema)
	}
	st, err := changer.Status(ctx, binding)
	if err != nil || st.Active != "02_rename_name" {
		t.Fatalf("status after the switch: active %q, %v; want 02_rename_name in flight", st.Active, err)
	}
	// The old slot is warm: a contract is refused.
	if _, errs, code := runCLI(t, s.APIURL, "db", "contract", "test"); code != 4 {
		t.Errorf("contract while the old slot is warm: exit %d (%s), want 4 (refused)", code, errs)
	}
	if out := mustCLI(t, s.APIURL, "db", "status", "test"); !strings.Contains(out, "active migration 02_rename_name") {
		t.Errorf("db status through the server:\n%s", out)
	}

	// Rollback: traffic flips back, the migration is undone.
	cli("rollback", "test")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.0.0")
	if d := lastDeployment(t, s, "test"); !journalHas(d, "db-rollback", "") {
		t.Errorf("rollback did not undo the migration: %+v", d.Steps)
	}
	if st, err := changer.Status(ctx, binding); err != nil || st.Active != "" {
		t.Errorf("after rollback: active %q, %v; want none", st.Active, err)
	}

	// Deploy again, then once more: the second deploy stops the old slot
	// and only then contracts.
	cli("deploy", "test", "--release", "2.1.0")
	cli("deploy", "test", "--release", "2.1.0")
	if d := lastDeployment(t, s, "test"); !journalHas(d, "db-contract", "contract 02_rename_name") {
		t.Errorf("contract did not run once the old slot stopped: %+v", d.Steps)
	}
	st, err = changer.Status(ctx, binding)
	if err != nil || st.Active != "" || st.SchemaVersion != "02_rename_name" {
		t.Errorf("final status: %+v, %v", st, err)
	}
	load.Stop()
	if n := load.Failed.Load(); n != 0 {
		t.Errorf("%d requests failed during expand, switch, rollback and contract:\n%s", n, strings.Join(load.Failures(), "\n"))
	}
}
