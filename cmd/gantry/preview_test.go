package main

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/forgetest"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// openTriggerServer runs a server in-process with its secrets key in a
// temporary directory and the preview reaper at reap.
func openTriggerServer(t *testing.T, reap time.Duration) *Server {
	t.Helper()
	s := &Server{DataDir: t.TempDir(), Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", ReapInterval: reap,
		SecretsKey: filepath.Join(t.TempDir(), "secrets.key"), Logger: newLogger(testWriter{t}, "text")}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
	t.Cleanup(func() { s.Orchestrator.StopAll(context.Background()); s.Close() })
	return s
}

// branchCommit commits VERSION=version on branch (made from main when new)
// and returns the commit; the repository is left on main.
func branchCommit(t *testing.T, repo, branch, version string) string {
	t.Helper()
	from := "main"
	if exec.Command("git", "-C", repo, "rev-parse", "--verify", "-q", "refs/heads/"+branch).Run() == nil {
		from = branch
	}
	git(t, repo, "checkout", "-q", "-B", branch, from)
	commitChange(t, repo, "VERSION", version+"\n", version)
	sha := headOf(t, repo, "HEAD")
	git(t, repo, "checkout", "-q", "main")
	return sha
}

// TestPreviewMergeRequest: a merge request gets its own environment,
// cloned from test through the engine with a copy of test's database,
// served through the router on its own host, announced to the forge with
// its URL, updated by a new commit, and deleted with its database when
// the merge request is merged. A second one beyond previews.max is
// refused by the previews gate and leaves nothing behind.
func TestPreviewMergeRequest(t *testing.T) {
	needTools(t)
	pg := pgtest.Start(t)
	s := openTriggerServer(t, time.Minute)
	ctx := context.Background()
	repo := helloRepo(t)
	os.MkdirAll(filepath.Join(repo, "db", "migrations"), 0o755)
	writeFile(t, filepath.Join(repo, "db", "migrations"), "01_users.yaml",
		"operations:\n  - create_table:\n      name: users\n      columns:\n        - {name: id, type: bigserial, pk: true}\n        - {name: name, type: text}\n")
	git(t, repo, "add", "-A")
	editManifest(t, repo, "previews", func(m string) string {
		m = strings.Replace(m, "    keep_warm: 10m\n", "    keep_warm: 10m\n    secrets: [DATABASE_URL]\n", 1)
		return m + "database:\n  engine: postgres\n  migrations: {engine: pgroll, dir: db/migrations}\n" +
			"triggers:\n  - {on: merge_request, branch: main, do: preview}\n" +
			"previews: {from: test, host: \"{branch}.preview.{app}.localhost\", ttl: 72h, max: 1, data: copy, post_copy: \"UPDATE public.users SET name = 'user-' || id\"}\n"
	})
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	testURL := pg.CreateDB(t, "hello_test")
	if err := s.Client.SetSecret(ctx, "hello", "test", "DATABASE_URL", testURL); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	testDB := openDB(t, testURL)
	if _, err := testDB.Exec(`INSERT INTO public.users (name) VALUES ('ada')`); err != nil {
		t.Fatal(err)
	}
	forge := forgetest.StartFakeForge(t)
	hook := addHook(t, s, "github", gantry.RoleAdmin, nil, forge.URL)
	pr := func(id, action string, number int, branch, commit string, merged bool) forgetest.Delivery {
		return forgetest.Delivery{Forge: "github", Event: "pull_request", ID: id, Secret: hook.Secret,
			Body: forgetest.Payload(t, "github_pull_request", forgetest.Params{Action: action, Number: number, Branch: branch, Target: "main", Commit: commit, Merged: merged})}
	}

	login := branchCommit(t, repo, "feature/login", "1.2.0")
	deliverOK(t, s, pr("d-1", "opened", 7, "feature/login", login, false), "preview it as mr-7")
	host := "feature-login.preview.hello.localhost"
	wantVersion(t, s.RouterURL, host, "1.2.0")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	env, err := s.Store.FindEnvironment(ctx, "hello", "mr-7")
	if err != nil || env.Preview == nil || env.ClonedFrom != "test" || env.Preview.MergeRequest != 7 || !env.Preview.Database {
		t.Fatalf("mr-7: %+v, %v", env, err)
	}
	if d := lastDeployment(t, s, "mr-7"); d.Kind != gantry.KindClone || d.Actor != "hook-github-hello" || !journalHas(d, "copy-data", "copied hello/test by dump") || !journalHas(d, "copy-data", "post-copy script: true") {
		t.Errorf("mr-7's clone: kind %s actor %s steps %+v", d.Kind, d.Actor, d.Steps)
	}
	previewURL := pg.URLFor("hello_test_mr_7")
	var name string
	if err := openDB(t, previewURL).QueryRow(`SELECT name FROM public.users`).Scan(&name); err != nil || name != "user-1" {
		t.Errorf("mr-7's database: %q, %v; want the copy of test's row, anonymised by post_copy", name, err)
	}
	st := forge.Wait(t, 10*time.Second, func(s forgetest.Status) bool {
		return s.Fields["context"] == "gantry/preview" && s.Fields["state"] == "success"
	})
	if st.Path != "/repos/octo-org/hello/statuses/"+login || !strings.HasPrefix(st.Fields["target_url"], "http://"+host+":") {
		t.Errorf("preview status: %+v", st)
	}

	// One more than previews.max is refused by the gate, and the forge
	// hears why; nothing of it is left.
	other := branchCommit(t, repo, "feature/other", "1.3.0")
	deliverOK(t, s, pr("d-2", "opened", 8, "feature/other", other, false), "preview it as mr-8")
	fail := forge.Wait(t, 10*time.Second, func(s forgetest.Status) bool {
		return strings.HasSuffix(s.Path, other) && s.Fields["state"] == "failure"
	})
	if !strings.Contains(fail.Fields["description"], "previews: app hello has 1 preview environments (mr-7)") {
		t.Errorf("refused preview's status: %+v", fail)
	}
	if _, err := s.Store.FindEnvironment(ctx, "hello", "mr-8"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("the refused preview left mr-8 behind: %v", err)
	}
	if names, _ := s.Client.ListSecrets(ctx, "hello", "mr-8"); len(names) != 0 {
		t.Errorf("the refused preview left secrets behind: %v", names)
	}

	// A new commit on the merge request updates its preview in place.
	login2 := branchCommit(t, repo, "feature/login", "1.2.1")
	deliverOK(t, s, pr("d-3", "synchronize", 7, "feature/login", login2, false), "preview it as mr-7")
	wantVersion(t, s.RouterURL, host, "1.2.1")
	if env, _ := s.Store.FindEnvironment(ctx, "hello", "mr-7"); env == nil || env.Preview.Commit != login2 {
		t.Errorf("mr-7 after the update: %+v", env)
	}

	// Merged: the preview goes, with its database and its secrets.
	deliverOK(t, s, pr("d-4", "closed", 7, "feature/login", login2, true), "delete preview mr-7")
	if _, err := s.Store.FindEnvironment(ctx, "hello", "mr-7"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("mr-7 after the merge: %v, want it deleted", err)
	}
	if _, err := getVersion(s.RouterURL, host); err == nil {
		t.Errorf("%s is still served after the merge", host)
	}
	var n int
	if err := openDB(t, pg.URL).QueryRow(`SELECT count(*) FROM pg_database WHERE datname = 'hello_test_mr_7'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("mr-7's database after the merge: %d, %v; want it dropped", n, err)
	}
	if names, _ := s.Client.ListSecrets(ctx, "hello", "mr-7"); len(names) != 0 {
		t.Errorf("mr-7's secrets after the merge: %v", names)
	}
	if err := testDB.QueryRow(`SELECT name FROM public.users`).Scan(&name); err != nil || name != "ada" {
		t.Errorf("test's data after the preview went: %q, %v", name, err)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
}

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestBranchPreviewDeletedAndExpired: a pushed branch gets a preview, which
// goes when the branch is deleted (Gitea's delete event); another one goes
// when its TTL passes.
func TestBranchPreviewDeletedAndExpired(t *testing.T) {
	needTools(t)
	s := openTriggerServer(t, 200*time.Millisecond)
	ctx := context.Background()
	repo := helloRepo(t)
	editManifest(t, repo, "previews", func(m string) string {
		return m + "triggers:\n  - {on: push, branch: \"feature/*\", do: preview}\n" +
			"previews: {from: test, host: \"{name}.preview.localhost\", ttl: 3s}\n"
	})
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	gt := addHook(t, s, "gitea", gantry.RoleAdmin, nil, "")
	push := func(id, branch, commit string) forgetest.Delivery {
		return forgetest.Delivery{Forge: "gitea", Event: "push", ID: id, Secret: gt.Secret,
			Body: forgetest.Payload(t, "gitea_push", forgetest.Params{Branch: branch, Commit: commit})}
	}

	// A hook whose token is a deployer may not make environments, as a
	// deployer may not clone one.
	gh := addHook(t, s, "github", gantry.RoleDeployer, nil, "")
	c := branchCommit(t, repo, "feature/c", "3.0.0")
	deliverRefused(t, s, forgetest.Delivery{Forge: "github", Event: "push", ID: "gh-1", Secret: gh.Secret,
		Body: forgetest.Payload(t, "github_push", forgetest.Params{Branch: "feature/c", Commit: c})},
		http.StatusForbidden, "hook-github-hello (deployer) lacks admin on environment br-feature-c")

	a := branchCommit(t, repo, "feature/a", "2.0.0")
	deliverOK(t, s, push("g-1", "feature/a", a), "preview it as br-feature-a")
	wantVersion(t, s.RouterURL, "br-feature-a.preview.localhost", "2.0.0")
	del := forgetest.Delivery{Forge: "gitea", Event: "delete", ID: "g-2", Secret: gt.Secret,
		Body: forgetest.Payload(t, "gitea_delete", forgetest.Params{Branch: "feature/a"})}
	deliverOK(t, s, del, "delete preview br-feature-a")
	if _, err := s.Store.FindEnvironment(ctx, "hello", "br-feature-a"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("br-feature-a after its branch was deleted: %v", err)
	}

	// Two pushes in quick succession: whichever build ends first, the
	// preview ends up serving the later commit.
	b1 := branchCommit(t, repo, "feature/b", "2.1.0")
	b2 := branchCommit(t, repo, "feature/b", "2.2.0")
	if code, body := push("g-3", "feature/b", b1).Send(t, s.APIURL+"/v1/hooks/hello/gitea"); code != http.StatusAccepted {
		t.Fatalf("first push: %d %s", code, body)
	}
	deliverOK(t, s, push("g-4", "feature/b", b2), "preview it as br-feature-b")
	wantVersion(t, s.RouterURL, "br-feature-b.preview.localhost", "2.2.0")
	waitUntil(t, time.Minute, func() bool {
		_, err := s.Store.FindEnvironment(ctx, "hello", "br-feature-b")
		return gantry.ErrorCode(err) == gantry.ENOTFOUND
	})
	if _, err := getVersion(s.RouterURL, "br-feature-b.preview.localhost"); err == nil {
		t.Error("br-feature-b is still served after its TTL")
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
}
