package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// dbServer starts a server whose hello app declares a pgroll database
// bound to a throwaway PostgreSQL, with release 2.0.0 (migration 01) tagged
// v2.0.0 and 2.1.0 (migration 02, a column rename) tagged v2.1.0.
func dbServer(t *testing.T) (s *Server, repo, dbURL string) {
	t.Helper()
	needTools(t)
	pg := pgtest.Start(t)
	dbURL = pg.CreateDB(t, "hello_test")
	s = openServerWithDatabase(t, t.TempDir(), dbURL)

	repo = helloRepo(t)
	migrations := filepath.Join(repo, "db", "migrations")
	os.MkdirAll(migrations, 0o755)
	writeFile(t, migrations, "01_create_users.yaml", "operations:\n  - create_table:\n      name: users\n      columns:\n        - {name: id, type: bigserial, pk: true}\n        - {name: name, type: text}\n")
	git(t, repo, "add", "-A")
	editManifest(t, repo, "database", func(m string) string {
		m = strings.Replace(m, "    hosts: [test.hello.localhost]\n", "    hosts: [test.hello.localhost]\n    secrets: [DATABASE_URL]\n", 1)
		return m + "database:\n  engine: postgres\n  migrations: {engine: pgroll, dir: db/migrations}\n"
	})
	commitChange(t, repo, "VERSION", "2.0.0\n", "2.0.0")
	git(t, repo, "tag", "v2.0.0")
	writeFile(t, migrations, "02_rename_name.yaml", "operations:\n  - rename_column:\n      table: users\n      from: name\n      to: full_name\n")
	git(t, repo, "add", "-A")
	commitChange(t, repo, "VERSION", "2.1.0\n", "2.1.0")
	git(t, repo, "tag", "v2.1.0")
	return s, repo, dbURL
}

// advised is the command an error message advises, in backquotes, whose
// text starts with prefix; its arguments are returned as printed.
func advised(t *testing.T, msg, prefix string) []string {
	t.Helper()
	m := regexp.MustCompile("`(" + regexp.QuoteMeta(prefix) + "[^`]*)`").FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("the message advises no `%s…` command:\n%s", prefix, msg)
	}
	return strings.Fields(strings.TrimPrefix(m[1], "gantry "))
}

// TestDBVerbsThroughServer runs every gantry db verb on an environment the
// server manages without a database URL: the server holds it and keeps the
// snapshots, and the CLI finds the snapshots the server took during an
// expand. A database rollback keeps the environment consistent: it is
// refused while the active release needs the migration, and every command
// that a refusal advises works as printed.
func TestDBVerbsThroughServer(t *testing.T) {
	s, repo, dbURL := dbServer(t)
	cli := func(args ...string) string { t.Helper(); return mustCLI(t, s.APIURL, args...) }
	status := func() *gantry.DatabaseStatus {
		t.Helper()
		var st gantry.DatabaseStatus
		if err := json.Unmarshal([]byte(cli("--json", "db", "status", "test")), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	snapshots := func() []*gantry.Snapshot {
		t.Helper()
		var snaps []*gantry.Snapshot
		if err := json.Unmarshal([]byte(cli("--json", "db", "snapshots", "test")), &snaps); err != nil {
			t.Fatal(err)
		}
		return snaps
	}
	cli("app", "add", "hello", "--repo", repo)
	cli("deploy", "test", "--ref", "v2.0.0")
	cli("release", "build", "--ref", "v2.1.0")
	cli("deploy", "test", "--release", "2.1.0")
	if st := status(); st.Active != "02_rename_name" {
		t.Fatalf("after the deploy of 2.1.0: active migration %q, want 02_rename_name", st.Active)
	}

	// The snapshots the server took, where the server keeps them.
	snaps := snapshots()
	var expand *gantry.Snapshot
	for _, sn := range snaps {
		if strings.Contains(sn.Reason, "expand") && strings.Contains(sn.Reason, "02_rename_name") {
			expand = sn
		}
	}
	if expand == nil {
		t.Fatalf("db snapshots lists %d snapshots, none taken before the expand of 02_rename_name: %+v", len(snaps), snaps)
	}
	dir := gantry.SnapshotDir(gantry.SnapshotRoot(s.DataDir), "hello", "test")
	if _, err := os.Stat(filepath.Join(dir, expand.Name+".json")); err != nil {
		t.Errorf("snapshot %s is not in the server's snapshot directory %s: %v", expand.Name, dir, err)
	}
	// Direct mode, given the URL and the server's data directory, sees the
	// very same snapshots.
	var direct []*gantry.Snapshot
	if err := json.Unmarshal([]byte(cli("--json", "--app", "hello", "db", "snapshots", "test", "--url", dbURL, "--data", s.DataDir)), &direct); err != nil {
		t.Fatal(err)
	}
	if len(direct) != len(snaps) || len(direct) == 0 || direct[0].Name != snaps[0].Name {
		t.Errorf("direct mode lists %d snapshots, the server %d: want the same", len(direct), len(snaps))
	}

	// A db verb that changes the database waits for no deployment: a held
	// lock is a conflict that names its holder.
	cli("lock", "test", "--reason", "maintenance window")
	for _, verb := range [][]string{{"snapshot", "test"}, {"contract", "test"}, {"rollback", "test"}, {"rollback", "test", "--force"}, {"restore", "test", "any", "--yes"}} {
		if _, errs, code := runCLI(t, s.APIURL, append([]string{"db"}, verb...)...); code != 3 || !strings.Contains(errs, "tester") {
			t.Errorf("db %s on a locked environment: exit %d (%s), want 3 naming the holder", strings.Join(verb, " "), code, errs)
		}
	}
	cli("unlock", "test")

	// A manual snapshot, then a restore of it (the state 2.1.0 runs on).
	if out := cli("db", "snapshot", "test", "--reason", "by hand"); !strings.HasPrefix(out, "snapshot ") {
		t.Errorf("db snapshot printed %q", out)
	}
	snaps = snapshots()
	if len(snaps) == 0 || snaps[0].Reason != "by hand" {
		t.Fatalf("db snapshots after db snapshot: %+v, want the manual one first", snaps)
	}
	if out := cli("db", "restore", "test", snaps[0].Name, "--yes"); !strings.Contains(out, "restored "+snaps[0].Name) {
		t.Errorf("db restore printed %q", out)
	}
	if st := status(); st.Active != "02_rename_name" || st.Ledger[len(st.Ledger)-1].Phase != gantry.PhaseRestore {
		t.Errorf("after the restore: active %q, last ledger row %+v", st.Active, st.Ledger[len(st.Ledger)-1])
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.1.0")
	audit, err := s.Store.ListAudit(context.Background(), gantry.AuditFilter{App: "hello", Env: "test"})
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	for _, e := range audit {
		audited[e.Operation+" "+e.Actor+" "+e.Result] = true
	}
	for _, op := range []string{"POST /v1/apps/{app}/environments/{env}/db/snapshots", "POST /v1/apps/{app}/environments/{env}/db/snapshots/{name}/restore"} {
		if !audited[op+" tester "+gantry.AuditOK] {
			t.Errorf("the audit trail lacks %s by tester", op)
		}
	}

	// 2.1.0 is active and needs 02: a database rollback is refused, and
	// the advised command flips back, rolling the migration back with it.
	_, errs, code := runCLI(t, s.APIURL, "db", "rollback", "test")
	if code != 4 {
		t.Fatalf("db rollback while 2.1.0 needs the migration: exit %d (%s), want 4", code, errs)
	}
	cli(advised(t, errs, "gantry rollback test")...)
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.0.0")
	if st := status(); st.Active != "" || st.SchemaVersion != "01_create_users" {
		t.Fatalf("after the advised rollback: active %q, schema %q; want none, 01_create_users", st.Active, st.SchemaVersion)
	}

	// Expand again, then contract (the second deploy stops the old slot).
	cli("deploy", "test", "--release", "2.1.0")
	cli("deploy", "test", "--release", "2.1.0")
	if st := status(); st.Active != "" || st.SchemaVersion != "02_rename_name" {
		t.Fatalf("after the contract: active %q, schema %q", st.Active, st.SchemaVersion)
	}
	// Across the contract: refused, with the command that does it.
	_, errs, code = runCLI(t, s.APIURL, "db", "rollback", "test")
	if code != 4 {
		t.Fatalf("db rollback across a contract: exit %d (%s), want 4", code, errs)
	}
	out := cli(advised(t, errs, "gantry db rollback test --force")...)
	// 2.1.0 still serves and needs 02: the contract alone is undone.
	if st := status(); st.Active != "02_rename_name" {
		t.Fatalf("after %q: active %q, want 02_rename_name again", out, st.Active)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.1.0")
	// What it says comes next works as printed: flip back, then roll back.
	cli(advised(t, out, "gantry rollback test")...)
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.0.0")
	out = cli(advised(t, out, "gantry db rollback test")...)
	if !strings.Contains(out, "rolled back 02_rename_name") {
		t.Errorf("db rollback printed %q", out)
	}
	if st := status(); st.Active != "" || st.SchemaVersion != "01_create_users" {
		t.Errorf("after the db rollback: active %q, schema %q; want none, 01_create_users", st.Active, st.SchemaVersion)
	}
	// No slot claims the schema that went: the standby that ran 2.1.0 stopped.
	env, err := s.Store.FindEnvironment(context.Background(), "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range env.Slots {
		if sl.Version == "2.1.0" && len(sl.Instances) > 0 {
			t.Errorf("slot %s still runs 2.1.0 (%s) after its migration was rolled back", sl.Name, sl.State)
		}
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.0.0")
}
