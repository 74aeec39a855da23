package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// commitFiles writes files into repo (scripts executable), adds and commits
// them.
func commitFiles(t *testing.T, repo, msg string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", msg}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// smokeRepo is the hello app with a committed, executable
// scripts/smoke.sh as its verify command and command hooks around the
// build and the deploy; each writes where it ran and what it saw into out.
func smokeRepo(t *testing.T, out string, deployHooks bool) string {
	t.Helper()
	repo := helloRepo(t)
	manifest, err := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	if err != nil {
		t.Fatal(err)
	}
	smoke := `#!/bin/sh
set -e
test -f gantry.yml
test -x scripts/smoke.sh
test ! -e uncommitted.txt
test -n "$GANTRY_URL"
{
  echo "pwd=$(pwd)"
  echo "url=$GANTRY_URL"
  echo "router=$GANTRY_ROUTER_URL"
  echo "marker=${RELEASE_FILES_MARKER-unset}"
  echo "home=$HOME"
  echo "path=$PATH"
  echo "version=$(cat VERSION)"
} > ` + out + `/verify.txt
echo smoke test passed against $GANTRY_URL
`
	hooks := `verify:
  - command: ./scripts/smoke.sh
hooks:
  before_build:
    - command: test -f gantry.yml && test ! -e uncommitted.txt && pwd > ` + out + `/before_build.txt && echo "$HOME" > ` + out + `/before_build_home.txt
  after_build:
    - command: test -x scripts/smoke.sh && pwd > ` + out + `/after_build.txt
`
	if deployHooks {
		hooks += `  before_deploy:
    - command: test -x scripts/smoke.sh && pwd > ` + out + `/before_deploy.txt && env > ` + out + `/before_deploy.env
`
	}
	commitFiles(t, repo, "smoke test", map[string]string{"scripts/smoke.sh": smoke, "gantry.yml": string(manifest) + hooks})
	return repo
}

// readKV reads the key=value lines a script wrote.
func readKV(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the command did not write %s: %v", filepath.Base(file), err)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		kv[k] = v
	}
	return kv
}

func readLine(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the command did not write %s: %v", filepath.Base(file), err)
	}
	return strings.TrimSpace(string(b))
}

// TestVerifyAndHooksRunInReleaseFiles: `verify: [{command:
// ./scripts/smoke.sh}]`, as the docs show it, runs the release's committed
// script in the release's unpacked files, with GANTRY_URL and without the
// server's environment, even when the server runs inside the repository
// whose working tree holds another, uncommitted smoke.sh. Build hooks run
// in the clean export, deploy hooks in the release's files, and the
// unpacked files are removed afterwards.
func TestVerifyAndHooksRunInReleaseFiles(t *testing.T) {
	needTools(t)
	t.Setenv("RELEASE_FILES_MARKER", "server-only")
	out := t.TempDir()
	repo := smokeRepo(t, out, true)
	// The working tree disagrees with the commit: a server that ran the
	// working tree's copy would write "worktree" and see uncommitted.txt.
	if err := os.WriteFile(filepath.Join(repo, "scripts", "smoke.sh"), []byte("#!/bin/sh\necho worktree > "+out+"/verify.txt\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "uncommitted.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(repo) // the server started inside the repository
	data := t.TempDir()
	s := openServer(t, data)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")

	v := readKV(t, filepath.Join(out, "verify.txt"))
	if v["pwd"] == "" || v["pwd"] == repo || strings.HasPrefix(v["pwd"], repo+"/") || !strings.Contains(v["pwd"], "/gantry-release-") {
		t.Errorf("verify command ran in %q, want the release's unpacked files (gantry-release-*), not the repository %s", v["pwd"], repo)
	}
	// The environment's first deploy has no route yet: the checks go to
	// the first candidate instance directly.
	if !strings.HasPrefix(v["url"], "http://127.0.0.1:") || v["router"] != v["url"] {
		t.Errorf("verify command got GANTRY_URL=%q GANTRY_ROUTER_URL=%q, want the candidate's address", v["url"], v["router"])
	}
	if v["marker"] != "unset" {
		t.Errorf("verify command saw the server's RELEASE_FILES_MARKER=%q", v["marker"])
	}
	if filepath.Dir(v["home"]) != filepath.Dir(v["pwd"]) || v["home"] == v["pwd"] || v["path"] != gantry.CommandPath || v["version"] != "1.1.0" {
		t.Errorf("verify command saw HOME=%q PATH=%q VERSION=%q; want HOME beside its files, PATH %s, version 1.1.0", v["home"], v["path"], v["version"], gantry.CommandPath)
	}
	if _, err := os.Stat(filepath.Dir(v["pwd"])); err == nil {
		t.Errorf("the release's unpacked files %s are still there after the deploy", v["pwd"])
	}
	d := lastDeployment(t, s, "test")
	if !journalHas(d, "verify", "smoke test passed against "+v["url"]) {
		t.Errorf("journal does not show the smoke test's output: %+v", d.Steps)
	}

	if bb := readLine(t, filepath.Join(out, "before_build.txt")); !strings.HasPrefix(bb, filepath.Join(data, "build")+"/export-") {
		t.Errorf("before_build hook ran in %q, want the build's export under %s", bb, filepath.Join(data, "build"))
	}
	if home := readLine(t, filepath.Join(out, "before_build_home.txt")); home == "" || strings.HasPrefix(home, data) || strings.HasPrefix(home, repo) {
		t.Errorf("before_build hook had HOME=%q, want a throwaway directory outside the export and the repository", home)
	}
	if ab := readLine(t, filepath.Join(out, "after_build.txt")); !strings.Contains(ab, "/gantry-release-") {
		t.Errorf("after_build hook ran in %q, want the release's unpacked files", ab)
	}
	if bd := readLine(t, filepath.Join(out, "before_deploy.txt")); !strings.Contains(bd, "/gantry-release-") {
		t.Errorf("before_deploy hook ran in %q, want the release's unpacked files", bd)
	}
	env, err := os.ReadFile(filepath.Join(out, "before_deploy.env"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), "RELEASE_FILES_MARKER") || !strings.Contains(string(env), "GANTRY_PHASE=before_deploy") {
		t.Errorf("before_deploy hook environment:\n%s\nwant GANTRY_* and no RELEASE_FILES_MARKER", env)
	}
}

// TestReleaseWithoutKeptFiles: a release built before releases kept their
// commit's files (simulated by dropping @source) can run neither its deploy
// hooks nor its verify commands: the deploy fails with an error saying how
// to rebuild it, and nothing runs in the server's directory.
func TestReleaseWithoutKeptFiles(t *testing.T) {
	needTools(t)
	for _, tc := range []struct {
		name        string
		deployHooks bool
		ran         string // the file the command would have written
	}{
		{"hook", true, "before_deploy.txt"},
		{"verify", false, "verify.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			repo := smokeRepo(t, out, tc.deployHooks)
			t.Chdir(repo) // where the old code found ./scripts/smoke.sh
			s := openServer(t, t.TempDir())
			mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
			mustCLI(t, s.APIURL, "release", "build", "--ref", "main")
			ctx := context.Background()
			rels, err := s.Store.ListReleases(ctx, gantry.ReleaseFilter{App: "hello", Limit: 1})
			if err != nil || len(rels) != 1 {
				t.Fatalf("releases: %v, %v", rels, err)
			}
			old := *rels[0]
			old.ID += "-old"
			old.Artifacts = map[string]gantry.Artifact{}
			for k, a := range rels[0].Artifacts {
				if k != gantry.SourceArtifact {
					old.Artifacts[k] = a
				}
			}
			if err := s.Store.CreateRelease(ctx, &old); err != nil {
				t.Fatal(err)
			}

			_, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--release", old.ID)
			if code == 0 || !strings.Contains(errs, "predates kept files") || !strings.Contains(errs, "gantry release build --ref main --rebuild") {
				t.Fatalf("deploy of a release without @source: exit %d, %q; want a failure saying to rebuild it", code, errs)
			}
			t.Logf("exit %d: %s", code, strings.TrimSpace(errs))
			if _, err := os.Stat(filepath.Join(out, tc.ran)); err == nil {
				t.Errorf("%s was written: the command ran although the release has no files to run it in", tc.ran)
			}
		})
	}
}
