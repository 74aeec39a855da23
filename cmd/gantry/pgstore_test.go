package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// pgStore returns a --store URL to a new database of pg, its tables in
// schema.
func pgStore(t *testing.T, pg *pgtest.Instance, db, schema string) string {
	t.Helper()
	u, err := url.Parse(pg.CreateDB(t, db))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openServerOn runs a server in-process on free ports with its state in
// store ("" for SQLite in data) and its keys in keys. The caller closes it;
// stopping the app's instances is left to the last server (see keepServer).
func openServerOn(t *testing.T, data, store, keys string) *Server {
	t.Helper()
	s := &Server{DataDir: data, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", StoreURL: store,
		SecretsKey: filepath.Join(keys, "secrets.key"), Logger: newLogger(testWriter{t}, "text")}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
	return s
}

// keepServer makes *cur the server whose app instances are stopped, and
// which is closed, when the test ends: servers restarted on one state share
// the instances, so only the last one stops them.
func keepServer(t *testing.T, cur **Server) {
	t.Cleanup(func() {
		if *cur == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := (*cur).Orchestrator.StopAll(ctx); err != nil {
			t.Errorf("stop instances: %v", err)
		}
		(*cur).Close()
	})
}

// TestTourOnPostgres runs the README's tour through a real server whose
// state is in PostgreSQL: app add, build, deploy test, promote to prod with
// an approval by a second token, rollback, clone, rename, a lock's refusal
// (exit 3); then a restart of the server re-attaches to the running
// instances instead of starting new ones, and the audit chain verifies.
func TestTourOnPostgres(t *testing.T) {
	needTools(t)
	pg := pgtest.Start(t)
	store := pgStore(t, pg, "tour", "tour")
	data, keys := t.TempDir(), filepath.Join(t.TempDir(), "keys")
	var s *Server
	keepServer(t, &s)
	s = openServerOn(t, data, store, keys)
	if s.Store != nil {
		t.Fatal("the server opened SQLite, not the --store it was given")
	}
	repo := helloRepo(t)
	editManifest(t, repo, "prod needs an approval", func(m string) string {
		return strings.Replace(m, "    promote_from: test\n", "    promote_from: test\n    approvals: {required: 1}\n", 1)
	})
	cli := func(args ...string) string { t.Helper(); return mustCLI(t, s.APIURL, args...) }
	ctx := context.Background()
	bob, err := s.Client.CreateToken(ctx, api.CreateTokenRequest{Name: "bob", Role: gantry.RoleApprover})
	if err != nil {
		t.Fatal(err)
	}

	cli("app", "add", "hello", "--repo", repo)
	var rel gantry.Release
	mustJSON(t, cli("release", "build", "--ref", "v1.0.0", "--json"), &rel)
	cli("deploy", "test", "--release", rel.ID)
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.0.0")
	cli("promote", "test", "prod") // 1.0.0's manifest asks for no approval
	wantVersion(t, s.RouterURL, "hello.localhost", "1.0.0")

	cli("deploy", "test", "--ref", "main")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	if _, errs, code := runCLI(t, s.APIURL, "promote", "test", "prod"); code != 4 || !strings.Contains(errs, "needs 1 approval") {
		t.Fatalf("promotion without approval: exit %d, %q; want 4", code, errs)
	}
	if out, errs, code := cliAs(t, s, bob.Secret, "", "approve", "prod", "--release", "1.1.0"); code != 0 {
		t.Fatalf("bob approves: exit %d\n%s%s", code, out, errs)
	}
	cli("promote", "test", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.1.0")
	cli("rollback", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.0.0")

	cli("env", "clone", "prod", "testnew")
	wantVersion(t, s.RouterURL, "testnew.hello.localhost", "1.0.0")
	cli("env", "rename", "testnew", "test", "--displace-to", "testold")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.0.0")
	wantVersion(t, s.RouterURL, "testold.hello.localhost", "1.1.0")

	cli("lock", "prod", "--reason", "release freeze")
	if _, errs, code := runCLI(t, s.APIURL, "promote", "test", "prod"); code != 3 || !strings.Contains(errs, "tester") {
		t.Fatalf("promotion to a locked prod: exit %d, %q; want 3 naming the holder", code, errs)
	}
	cli("unlock", "prod")
	status, history := cli("status", "--json"), cli("history", "prod", "--json")
	before, err := s.Client.Environment(ctx, "hello", "prod")
	if err != nil {
		t.Fatal(err)
	}
	mustIntact(t, s, auditEntries(t, s))

	// A restart re-attaches to prod's running instances: same handles,
	// same addresses, no new deployment, and prod still serves 1.0.0.
	s.Close()
	s = openServerOn(t, data, store, keys)
	after, err := s.Client.Environment(ctx, "hello", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(after.ActiveSlot().Instances), fmt.Sprint(before.ActiveSlot().Instances); got != want {
		t.Errorf("prod's instances after a restart:\n got %s\nwant %s (re-attached, not restarted)", got, want)
	}
	wantVersion(t, s.RouterURL, "hello.localhost", "1.0.0")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.0.0")
	if got := cli("history", "prod", "--json"); got != history {
		t.Errorf("history prod after a restart:\n%s\nwant\n%s", got, history)
	}
	if got := cli("status", "--json"); stripVolatile(t, got) != stripVolatile(t, status) {
		t.Errorf("status after a restart:\n%s\nwant\n%s", got, status)
	}
	mustIntact(t, s, auditEntries(t, s))
}

// auditEntries counts the audit trail's entries through the API.
func auditEntries(t *testing.T, s *Server) int {
	t.Helper()
	es, err := s.Client.ListAudit(context.Background(), gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// stripVolatile keeps of `status --json` what the state holds, leaving out
// the router's counters and health times, which a restart resets by design,
// and the environments' update times, which re-attaching sets.
func stripVolatile(t *testing.T, out string) string {
	t.Helper()
	var envs []api.EnvironmentStatus
	mustJSON(t, out, &envs)
	for i := range envs {
		envs[i].Route = nil
		envs[i].UpdatedAt = time.Time{} // re-attaching saves the environment
	}
	b, err := json.Marshal(envs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
