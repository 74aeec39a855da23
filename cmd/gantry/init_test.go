package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleRepo copies a sample repository of manifest/scaffold/testdata into
// a new directory.
func sampleRepo(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "manifest", "scaffold", "testdata", "repos", name))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// gitCommitAll makes dir a git repository holding all its files.
func gitCommitAll(t *testing.T, dir string) {
	t.Helper()
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "first"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// TestInitSampleRepositories runs `gantry init` on six sample repositories:
// each manifest passes `gantry manifest check`, a second init refuses to
// overwrite it (exit 3) and leaves it alone, and --json says what was found.
func TestInitSampleRepositories(t *testing.T) {
	for _, c := range []struct{ repo, kind string }{
		{"goapp", "go"}, {"procfile", "procfile"}, {"nodeapp", "node"}, {"pyapp", "python"}, {"rubyapp", "ruby"}, {"dockerapp", "docker"},
	} {
		t.Run(c.repo, func(t *testing.T) {
			dir := sampleRepo(t, c.repo)
			var res initResult
			mustJSON(t, mustCLI(t, "", "init", dir, "--json"), &res)
			if !res.Written || res.Kind != c.kind || res.App != c.repo || res.File != filepath.Join(dir, "gantry.yml") {
				t.Errorf("init --json: got written %v, kind %s, app %s, file %s", res.Written, res.Kind, res.App, res.File)
			}
			if out := mustCLI(t, "", "manifest", "check", dir); !strings.HasPrefix(out, "ok: "+c.repo) {
				t.Errorf("manifest check: %s", out)
			}
			before, _ := os.ReadFile(res.File)
			out, errs, code := runCLI(t, "", "init", dir)
			after, _ := os.ReadFile(res.File)
			if code != 3 || !strings.Contains(errs, "never overwrites") || string(after) != string(before) {
				t.Errorf("second init: exit %d, stderr %q, file changed %v; want exit 3 and the file as it was\n%s", code, errs, string(after) != string(before), out)
			}
			if printed := mustCLI(t, "", "init", dir, "--print"); printed != string(before) {
				t.Errorf("init --print on an existing manifest: want what init wrote, got\n%s", printed)
			}
		})
	}
	empty := t.TempDir()
	if _, errs, code := runCLI(t, "", "init", empty); code != 2 || !strings.Contains(errs, "nothing here says how to run the app") {
		t.Errorf("init of an empty directory: exit %d, %q; want 2", code, errs)
	}
	if _, err := os.Stat(filepath.Join(empty, "gantry.yml")); err == nil {
		t.Error("init of an empty directory wrote a gantry.yml")
	}
}

// TestInitManifestsDeploy deploys what `gantry init` wrote, for real, on
// the process runtime: the Go app to test and on to prod, the Procfile app
// (a web and a worker) and, when node is installed, the Node.js app. The
// Python (gunicorn), Ruby and Docker samples are checked by
// TestInitSampleRepositories only: their runtimes or packages are not on
// this machine.
func TestInitManifestsDeploy(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	apps := []struct{ repo, host, body, needs string }{
		{"goapp", "goapp.localhost", "goapp says hello", "go"},
		{"procfile", "test.procfile.localhost", "procfile app", "python3"},
		{"nodeapp", "test.nodeapp.localhost", "nodeapp says hello", "node"},
	}
	for _, a := range apps {
		t.Run(a.repo, func(t *testing.T) {
			if _, err := exec.LookPath(a.needs); err != nil {
				if a.repo != "nodeapp" && os.Getenv("GANTRY_INTEGRATION") == "1" {
					t.Fatalf("%s is required (GANTRY_INTEGRATION=1)", a.needs)
				}
				t.Skipf("%s not on PATH", a.needs)
			}
			dir := sampleRepo(t, a.repo)
			mustCLI(t, "", "init", dir)
			gitCommitAll(t, dir)
			mustCLI(t, s.APIURL, "app", "add", a.repo, "--repo", dir)
			mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main", "--app", a.repo)
			if a.repo == "goapp" {
				mustCLI(t, s.APIURL, "promote", "test", "prod", "--app", a.repo)
			}
			body := getThroughRouter(t, s.RouterURL, a.host)
			if !strings.Contains(body, a.body) {
				t.Errorf("%s through the router: got %q, want %q", a.host, body, a.body)
			}
			env, err := s.Store.FindEnvironment(t.Context(), a.repo, "test")
			if err != nil {
				t.Fatal(err)
			}
			services := map[string]int{}
			for _, in := range env.ActiveSlot().Instances {
				services[in.Service]++
			}
			if a.repo == "procfile" && (services["web"] != 1 || services["worker"] != 1) {
				t.Errorf("procfile app: got instances %v, want one web and one worker", services)
			}
		})
	}
}

// getThroughRouter GETs / of host through the router.
func getThroughRouter(t *testing.T, routerURL, host string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, routerURL+"/", nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d %s", host, resp.StatusCode, b)
	}
	return string(b)
}
