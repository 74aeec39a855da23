package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// writerServer starts a server whose environment test is bound to a fresh
// PostgreSQL database (its URL is returned), and registers the app
// "writer": the database test app with two releases, 1.0.0 creating the
// table and 2.0.0 adding a column, instances of its web service each.
func writerServer(t *testing.T, strategy string, instances int) (*Server, string) {
	t.Helper()
	needTools(t)
	pg := pgtest.Start(t)
	dbURL := pg.CreateDB(t, "schema_gate")
	s := openServerWithDatabase(t, t.TempDir(), dbURL)

	repo := filepath.Join(t.TempDir(), "writer")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(repo, "bin", "app"), "../../internal/dbtestapp").CombinedOutput(); err != nil {
		t.Fatalf("build the test app: %v\n%s", err, out)
	}
	writeFile(t, repo, "gantry.yml", `app: writer
services:
  web:
    build: {command: "true", artifacts: [bin/app]}
    run: bin/app
    instances: `+strconv.Itoa(instances)+`
    health: {path: /up, interval: 100ms}
database:
  engine: postgres
  migrations: {engine: pgroll, dir: db/migrations}
environments:
  test:
    hosts: [test.writer.localhost]
    secrets: [DATABASE_URL]
    strategy: `+strategy+`
`)
	os.MkdirAll(filepath.Join(repo, "db", "migrations"), 0o755)
	writeFile(t, filepath.Join(repo, "db", "migrations"), "01_writes.yaml",
		"operations:\n  - create_table:\n      name: writes\n      columns:\n        - {name: id, type: text, pk: true}\n        - {name: by_version, type: text}\n")
	writeFile(t, repo, "VERSION", "1.0.0\n")
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "1.0.0")
	writeFile(t, filepath.Join(repo, "db", "migrations"), "02_note.yaml",
		"operations:\n  - add_column:\n      table: writes\n      column: {name: note, type: text, nullable: true}\n")
	writeFile(t, repo, "VERSION", "2.0.0\n")
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "2.0.0")
	mustCLI(t, s.APIURL, "app", "add", "writer", "--repo", repo)
	return s, dbURL
}

// wantWriterVersion fails unless the database test app's test
// environment serves version want through the router.
func wantWriterVersion(t *testing.T, s *Server, want string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.RouterURL+"/", nil)
	req.Host = "test.writer.localhost"
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(b)); got != "version="+want {
		t.Fatalf("test.writer.localhost answers %d %q, want version=%s", resp.StatusCode, got, want)
	}
}

// schemaVersion is the database's latest migration as `gantry db status` reports it.
func schemaVersion(t *testing.T, s *Server) string {
	t.Helper()
	var st gantry.DatabaseStatus
	if err := json.Unmarshal([]byte(mustCLI(t, s.APIURL, "db", "status", "test", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st.SchemaVersion
}

// TestWarmRollbackMeetsTheSchema: after a maintenance deploy applied a
// migration whole, the release kept warm predates the schema. A plain
// rollback is refused by the schema gate (exit 4, the forced command
// named) and traffic stays; the forced rollback restores the database's
// snapshot first and then flips.
func TestWarmRollbackMeetsTheSchema(t *testing.T) {
	s, _ := writerServer(t, "maintenance", 1)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "HEAD~1")
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	wantWriterVersion(t, s, "2.0.0")
	if got := schemaVersion(t, s); got != "02_note" {
		t.Fatalf("schema after the maintenance deploy: %q, want 02_note", got)
	}
	_, errs, code := runCLI(t, s.APIURL, "rollback", "test")
	if code != 4 || !strings.Contains(errs, "schema:") || !strings.Contains(errs, "gantry rollback test --force") {
		t.Fatalf("rollback into a schema that is gone: exit %d, %q; want 4 from the schema gate naming --force", code, errs)
	}
	wantWriterVersion(t, s, "2.0.0")
	mustCLI(t, s.APIURL, "rollback", "test", "--force")
	wantWriterVersion(t, s, "1.0.0")
	if got := schemaVersion(t, s); got != "01_writes" {
		t.Errorf("schema after the forced rollback: %q, want 01_writes", got)
	}
	d := lastDeploymentOf(t, s, "writer", "test")
	if !journalHas(d, "db-rollback", "") || !journalHas(d, "switch", "traffic on 1.0.0") {
		t.Errorf("forced rollback's journal lacks the database rollback or the flip: %+v", d.Steps)
	}
}

// TestRollbackAfterForcedContract: a contract forced while the old slot is
// still warm removes the old schema; the warm flip back is then refused by
// the schema gate, and forced it restores the pre-contract snapshot, undoes
// the migration and flips.
func TestRollbackAfterForcedContract(t *testing.T) {
	s, _ := writerServer(t, "bluegreen", 1)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "HEAD~1")
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	mustCLI(t, s.APIURL, "db", "contract", "test", "--force")
	_, errs, code := runCLI(t, s.APIURL, "rollback", "test")
	if code != 4 || !strings.Contains(errs, "schema:") {
		t.Fatalf("rollback across a forced contract: exit %d, %q; want 4 from the schema gate", code, errs)
	}
	wantWriterVersion(t, s, "2.0.0")
	mustCLI(t, s.APIURL, "rollback", "test", "--force")
	wantWriterVersion(t, s, "1.0.0")
	if got := schemaVersion(t, s); got != "01_writes" {
		t.Errorf("schema after the forced rollback: %q, want 01_writes", got)
	}
}

// TestPauseAfterWithDatabase: an app with a database pauses after a group
// (its migration expanded, the candidate up on the new schema version) and
// goes on with `gantry continue`, which finds the schema it started with.
func TestPauseAfterWithDatabase(t *testing.T) {
	s, _ := writerServer(t, "bluegreen", 1)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "HEAD~1")
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main", "--pause-after", "0")
	wantWriterVersion(t, s, "1.0.0")
	mustCLI(t, s.APIURL, "continue", "test")
	wantWriterVersion(t, s, "2.0.0")
	mustCLI(t, s.APIURL, "rollback", "test")
	wantWriterVersion(t, s, "1.0.0")
}

// openServerWithDatabase opens a server on dataDir whose environments'
// DATABASE_URL secret is dbURL, stopped with the test.
func openServerWithDatabase(t *testing.T, dataDir, dbURL string) *Server {
	t.Helper()
	s := &Server{DataDir: dataDir, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(testWriter{t}, "text"),
		Getenv: func(k string) string {
			if k == "GANTRY_SECRET_DATABASE_URL" {
				return dbURL
			}
			return os.Getenv(k)
		}}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Orchestrator.StopAll(context.Background()); s.Close() })
	registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
	return s
}
