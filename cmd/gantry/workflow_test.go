package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// git runs git in repo.
func git(t *testing.T, repo string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestW2MigrationThroughTestnew follows seed 000's migration step by step:
// testnew is a copy of prod, updated to the next minor version and tested
// while hotfixes still reach test and prod; then test is renamed testold,
// testnew is renamed test (with its history), and prod is deployed from it.
// Production serves throughout without a failed request.
func TestW2MigrationThroughTestnew(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	// A hotfix line for 1.0: releases/1.0 from v1.0.0 with 1.0.1.
	git(t, repo, "checkout", "-q", "-b", "releases/1.0", "v1.0.0")
	commitChange(t, repo, "VERSION", "1.0.1\n", "hotfix 1.0.1")
	git(t, repo, "checkout", "-q", "main")

	cli := func(args ...string) string { t.Helper(); return mustCLI(t, s.APIURL, args...) }
	cli("app", "add", "hello", "--repo", repo)
	cli("deploy", "test", "--ref", "v1.0.0")
	cli("promote", "test", "prod")
	prodLoad := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "hello.localhost", Workers: 2, MaxDuration: 10 * time.Minute})
	testLoad := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "test.hello.localhost", Workers: 2, MaxDuration: 10 * time.Minute})

	// 1. Create testnew, a copy of production.
	cli("env", "clone", "prod", "testnew")
	wantVersion(t, s.RouterURL, "testnew.hello.localhost", "1.0.0")
	// 2. Update testnew to the next minor version: a migration.
	out := cli("deploy", "testnew", "--ref", "v1.1.0")
	wantVersion(t, s.RouterURL, "testnew.hello.localhost", "1.1.0")
	d := lastDeployment(t, s, "testnew")
	if !journalHas(d, "classify", "migration: 1.0.0 → 1.1.0") {
		t.Errorf("deploy of 1.1.0 over 1.0.0 not classified as a migration:\n%s", out)
	}
	// 3. While testnew is tested, a hotfix reaches test and prod.
	cli("deploy", "test", "--ref", "releases/1.0")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.0.1")
	cli("promote", "test", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.0.1")
	if d := lastDeployment(t, s, "test"); !journalHas(d, "classify", "deployment: 1.0.0 → 1.0.1") {
		t.Errorf("hotfix not classified as a deployment: %+v", d.Steps)
	}
	testnewHistory := deploymentIDs(t, s, "testnew")

	// 4. testnew becomes test; the old test is kept as testold.
	cli("env", "rename", "testnew", "test", "--displace-to", "testold")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	wantVersion(t, s.RouterURL, "testold.hello.localhost", "1.0.1")
	if _, err := getVersion(s.RouterURL, "testnew.hello.localhost"); err == nil {
		t.Error("testnew's host still answers after the rename")
	}
	// test now has testnew's history.
	got := deploymentIDs(t, s, "test")
	for _, id := range testnewHistory {
		if !containsID(got, id) {
			t.Errorf("deployment #%d of testnew is not in test's history %v", id, got)
		}
	}
	env, err := s.Store.FindEnvironment(context.Background(), "hello", "test")
	if err != nil || env.ClonedFrom != "prod" {
		t.Errorf("test after the rename: cloned from %q, %v; want prod", env.ClonedFrom, err)
	}

	// 5. Production is deployed from the new test.
	cli("promote", "test", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.1.0")

	prodLoad.Stop()
	testLoad.Stop()
	for name, l := range map[string]*loadtest.Load{"prod": prodLoad, "test": testLoad} {
		if n := l.Failed.Load(); n != 0 {
			t.Errorf("%d requests to %s failed during the migration:\n%s", n, name, strings.Join(l.Failures(), "\n"))
		}
		if l.OK.Load() == 0 {
			t.Errorf("no request to %s succeeded: the load did not run", name)
		}
	}
	// The old test can go; its history stays.
	if _, _, code := runCLI(t, s.APIURL, "env", "delete", "testold"); code != 4 {
		t.Errorf("delete of a serving environment: exit %d, want 4 (refused)", code)
	}
	cli("env", "delete", "testold", "--force")
	if ids := deploymentIDs(t, s, "testold"); len(ids) == 0 {
		t.Error("testold's history went with it")
	}
}

func lastDeployment(t *testing.T, s *Server, env string) *gantry.Deployment {
	t.Helper()
	return lastDeploymentOf(t, s, "hello", env)
}

func lastDeploymentOf(t *testing.T, s *Server, app, env string) *gantry.Deployment {
	t.Helper()
	ds, err := s.Store.ListDeployments(context.Background(), gantry.DeploymentFilter{App: app, Env: env, Limit: 1})
	if err != nil || len(ds) == 0 {
		t.Fatalf("no deployment of %s: %v", env, err)
	}
	d, err := s.Store.FindDeployment(context.Background(), ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func journalHas(d *gantry.Deployment, step, detail string) bool {
	for _, s := range d.Steps {
		if s.Name == step && strings.Contains(s.Detail, detail) {
			return true
		}
	}
	return false
}

func deploymentIDs(t *testing.T, s *Server, env string) []int64 {
	t.Helper()
	ds, err := s.Store.ListDeployments(context.Background(), gantry.DeploymentFilter{App: "hello", Env: env, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
