package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestCloneWithDataCleansUp: the Miniflux clone, on real processes and
// PostgreSQL. A clone of prod with data names every secret testnew lacks
// before it makes anything; a clone whose release then fails its checks
// on testnew (made to fail there) removes testnew and the database it copied; the same command
// then succeeds, and the copy's journal names the schema version; env
// delete drops the copy, and the clone runs once more.
func TestCloneWithDataCleansUp(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "fail-verify")
	s, urls := helloWithDatabase(t, func(m string) string {
		m = strings.ReplaceAll(m, "    secrets: [DATABASE_URL]\n", "    secrets: [DATABASE_URL, MAIL_PASSWORD, OIDC_SECRET]\n")
		// A verify check that fails while the marker exists.
		return m + "verify:\n  - command: test ! -e " + marker + "\n"
	})
	ctx := context.Background()
	for _, env := range []string{"test", "prod"} {
		for _, name := range []string{"MAIL_PASSWORD", "OIDC_SECRET"} {
			if err := s.Client.SetSecret(ctx, "hello", env, name, "value-of-"+name); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	mustCLI(t, s.APIURL, "promote", "test", "prod")

	_, errs, code := runCLI(t, s.APIURL, "env", "clone", "prod", "testnew", "--with-data")
	if code == 0 || !strings.Contains(errs, "MAIL_PASSWORD, OIDC_SECRET") {
		t.Fatalf("clone without testnew's secrets: exit %d, %q; want both named", code, errs)
	}
	mustGone(t, s, urls["prod"], "after the refused clone")

	for _, name := range []string{"MAIL_PASSWORD", "OIDC_SECRET"} {
		if err := s.Client.SetSecret(ctx, "hello", "testnew", name, "value-of-"+name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCLI(t, s.APIURL, "env", "clone", "prod", "testnew", "--with-data"); code == 0 {
		t.Fatal("the clone succeeded though its verify check fails")
	} else {
		t.Logf("failed clone: exit %d: %s", code, strings.TrimSpace(errs))
	}
	if d := lastDeployment(t, s, "testnew"); !journalHas(d, "remove-clone", "the environment and its database copy") {
		t.Errorf("the failed clone's journal does not say it removed its copy: %+v", d.Steps)
	}
	mustGone(t, s, urls["prod"], "after the failed clone")

	os.Remove(marker)
	mustCLI(t, s.APIURL, "env", "clone", "prod", "testnew", "--with-data")
	wantVersion(t, s.RouterURL, "testnew.hello.localhost", "1.1.0")
	if d := lastDeployment(t, s, "testnew"); !journalHas(d, "copy-data", "at schema version 01_users") {
		t.Errorf("the copy's journal does not name the schema version: %+v", d.Steps)
	}

	// Miniflux: after env delete testnew, the copy stayed and a retry
	// refused to copy over it. Now the delete drops what the clone created.
	mustCLI(t, s.APIURL, "env", "delete", "testnew", "--force")
	mustGone(t, s, urls["prod"], "after env delete")
	mustCLI(t, s.APIURL, "env", "clone", "prod", "testnew", "--with-data")
	wantVersion(t, s.RouterURL, "testnew.hello.localhost", "1.1.0")
}

// mustGone checks that testnew exists neither as an environment nor as a
// database (asked through prod's).
func mustGone(t *testing.T, s *Server, via, when string) {
	t.Helper()
	if _, err := s.Store.FindEnvironment(context.Background(), "hello", "testnew"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("environment testnew %s: %v; want none", when, err)
	}
	db, err := sql.Open("postgres", via)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_database WHERE datname = 'hello_testnew'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database hello_testnew %s: still there", when)
	}
}
