package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/pgtest"
)

// TestCloneWithData: W2's testnew as a copy of production, database
// included: the copy is made online with dump/restore into the database the
// new environment is bound to, a post-copy script anonymises it, the
// journal records where the data came from, and production's data is
// untouched.
func TestCloneWithData(t *testing.T) {
	s, urls := helloWithDatabase(t, nil)
	ctx := context.Background()
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	mustCLI(t, s.APIURL, "promote", "test", "prod")
	prod, err := sql.Open("postgres", urls["prod"])
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, err := prod.Exec(`INSERT INTO public.users (name) VALUES ('alice@example.com')`); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "anonymise.sql")
	os.WriteFile(script, []byte("UPDATE public.users SET name = 'user-' || id;\n"), 0o644)

	mustCLI(t, s.APIURL, "env", "clone", "prod", "testnew", "--with-data", "--post-copy", script)
	wantVersion(t, s.RouterURL, "testnew.hello.localhost", "1.1.0")
	d := lastDeployment(t, s, "testnew")
	if !journalHas(d, "copy-data", "copied hello/prod by dump") || !journalHas(d, "copy-data", "post-copy script: true") {
		t.Errorf("clone journal lacks the copy's provenance: %+v", d.Steps)
	}
	copyDB, err := sql.Open("postgres", urls["testnew"])
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	var name string
	if err := copyDB.QueryRow(`SELECT name FROM public.users`).Scan(&name); err != nil || !strings.HasPrefix(name, "user-") {
		t.Errorf("testnew's copy: name %q, %v; want the anonymised row", name, err)
	}
	if err := prod.QueryRow(`SELECT name FROM public.users`).Scan(&name); err != nil || name != "alice@example.com" {
		t.Errorf("prod's data changed: %q, %v", name, err)
	}
	// A clone whose database is not bound is refused before anything changes.
	if _, errs, code := runCLI(t, s.APIURL, "env", "clone", "prod", "other", "--with-data"); code == 0 || !strings.Contains(errs, "secret set other DATABASE_URL") {
		t.Errorf("clone without a database binding: exit %d, %q", code, errs)
	}
	if _, err := s.Store.FindEnvironment(ctx, "hello", "other"); err == nil {
		t.Error("a refused clone left an environment behind")
	}
}

// helloWithDatabase opens a server with the hello app, whose releases
// carry one pgroll migration and whose environments (test, prod, testnew)
// are bound each to a database of its own: test's and prod's exist,
// testnew's does not (a clone creates it). edit, when set, changes the
// manifest further. It returns the server and the databases' URLs.
func helloWithDatabase(t *testing.T, edit func(string) string) (*Server, map[string]string) {
	t.Helper()
	needTools(t)
	pg := pgtest.Start(t)
	dir := t.TempDir()
	s := &Server{DataDir: dir, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", SecretsKey: filepath.Join(t.TempDir(), "secrets.key"),
		Logger: newLogger(testWriter{t}, "text")}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Orchestrator.StopAll(context.Background()); s.Close() })
	registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
	urls := map[string]string{"test": pg.CreateDB(t, "hello_test"), "prod": pg.CreateDB(t, "hello_prod"), "testnew": pg.URLFor("hello_testnew")}

	repo := helloRepo(t)
	os.MkdirAll(filepath.Join(repo, "db", "migrations"), 0o755)
	writeFile(t, filepath.Join(repo, "db", "migrations"), "01_users.yaml",
		"operations:\n  - create_table:\n      name: users\n      columns:\n        - {name: id, type: bigserial, pk: true}\n        - {name: name, type: text}\n")
	git(t, repo, "add", "-A")
	editManifest(t, repo, "database", func(m string) string {
		m = strings.ReplaceAll(m, "    keep_warm: 10m\n", "    keep_warm: 10m\n    secrets: [DATABASE_URL]\n")
		m += "database:\n  engine: postgres\n  migrations: {engine: pgroll, dir: db/migrations}\n"
		if edit != nil {
			m = edit(m)
		}
		return m
	})
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	// Secrets are set per app; the app exists now.
	for env, u := range urls {
		if err := s.Client.SetSecret(context.Background(), "hello", env, "DATABASE_URL", u); err != nil {
			t.Fatalf("set secret of %s: %v", env, err)
		}
	}
	return s, urls
}
