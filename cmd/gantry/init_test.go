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

	"github.com/gantry-dev/gantry/internal/dockertest"
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

// TestInitManifestsDeploy deploys what `gantry init` wrote, for real: on
// the process runtime the Go app (to test and on to prod), the Procfile app
// (a web and a worker), the Python WSGI app under gunicorn and, when node is
// installed, the Node.js app; on the Docker runtime, with a throwaway
// engine and registry, the Dockerfile app (FROM scratch: nothing to pull),
// written with gantry init --registry. The Ruby
// sample is checked by TestInitSampleRepositories only: `bundle install`
// fetches its gems from rubygems.org, which this machine cannot reach.
func TestInitManifestsDeploy(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	onServer := func(tool string) func(*testing.T, string) (*Server, []string) {
		return func(t *testing.T, _ string) (*Server, []string) { needProgram(t, tool); return s, nil }
	}
	apps := []struct {
		repo, host, body string
		// prepare readies this machine and the sample (skipping, or
		// failing under GANTRY_INTEGRATION=1, without what the app needs)
		// and returns the server to deploy on and gantry init's flags.
		prepare func(t *testing.T, dir string) (*Server, []string)
	}{
		{"goapp", "goapp.localhost", "goapp says hello", onServer("go")},
		{"procfile", "test.procfile.localhost", "procfile app", onServer("python3")},
		{"nodeapp", "test.nodeapp.localhost", "nodeapp says hello", func(t *testing.T, _ string) (*Server, []string) {
			if _, err := exec.LookPath("node"); err != nil {
				t.Skip("node not on PATH") // optional even under GANTRY_INTEGRATION=1
			}
			return s, nil
		}},
		{"pyapp", "test.pyapp.localhost", "pyapp says hello", func(t *testing.T, _ string) (*Server, []string) { pythonWithGunicorn(t); return s, nil }},
		{"dockerapp", "test.dockerapp.localhost", "dockerapp says hello", dockerServer},
	}
	for _, a := range apps {
		t.Run(a.repo, func(t *testing.T) {
			dir := sampleRepo(t, a.repo)
			s, flags := a.prepare(t, dir)
			mustCLI(t, "", append([]string{"init", dir}, flags...)...)
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

// needProgram skips the test, or fails it under GANTRY_INTEGRATION=1,
// when tool is not on PATH.
func needProgram(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		missing(t, "%s not on PATH", tool)
	}
}

// missing skips the test, or fails it under GANTRY_INTEGRATION=1, for
// lack of something this machine should have.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("GANTRY_INTEGRATION") == "1" {
		t.Fatalf(format+" (required: GANTRY_INTEGRATION=1)", args...)
	}
	t.Skipf(format, args...)
}

// pythonWithGunicorn makes `python3` on PATH, for the rest of the test, a
// Python that has pip and gunicorn (scripts/test.sh installs Debian's
// python3-pip and gunicorn): the first python3 on PATH may be another one
// (pyenv's), which does not see Debian's packages.
func pythonWithGunicorn(t *testing.T) {
	t.Helper()
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		py, err := exec.LookPath(name)
		if err != nil || exec.Command(py, "-c", "import gunicorn, pip").Run() != nil {
			continue
		}
		if name != "python3" {
			bin := t.TempDir()
			if err := os.Symlink(py, filepath.Join(bin, "python3")); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
		return
	}
	missing(t, "no python3 with pip and gunicorn (Debian: python3-pip gunicorn)")
}

// dockerServer starts a throwaway Docker Engine and registry and a server
// whose docker driver uses them, builds the Dockerfile sample's static
// binary into dir/bin/server, where its Dockerfile (FROM scratch) copies it
// from, and writes the manifest with gantry init --registry, so that it
// deploys as written.
func dockerServer(t *testing.T, dir string) (*Server, []string) {
	t.Helper()
	if err := dockertest.Usable(); err != nil {
		missing(t, "docker: %v", err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join("bin", "server"), "./server/main.go")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the dockerapp server: %v\n%s", err, out)
	}
	env, err := dockertest.Start(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("stop docker: %v", err)
		}
	})
	return openServer(t, t.TempDir(), func(s *Server) { s.DockerHost = env.Engine.Host }),
		[]string{"--registry", env.Registries[0].Addr + "/dockerapp"}
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

// TestInitRegistry: --registry writes runtime.registry into test and prod
// of a Dockerfile app; it is refused (exit 2, nothing written) for an app
// run as processes, and when it is no registry reference.
func TestInitRegistry(t *testing.T) {
	dir := sampleRepo(t, "dockerapp")
	out := mustCLI(t, "", "init", dir, "--print", "--registry", "127.0.0.1:5000/dockerapp/")
	if n := strings.Count(out, `runtime: {driver: docker, registry: "127.0.0.1:5000/dockerapp"}`); n != 2 {
		t.Errorf("--registry: %d environments name the registry, want test and prod\n%s", n, out)
	}
	if out := mustCLI(t, "", "init", dir, "--print"); !strings.Contains(out, "add registry: host:port/dockerapp before the first deploy") {
		t.Errorf("without --registry the manifest does not say a deploy needs one:\n%s", out)
	}
	for _, c := range []struct{ repo, registry, want string }{
		{"goapp", "127.0.0.1:5000/goapp", "--registry is for an app built from its Dockerfile"},
		{"dockerapp", "https://registry.example/x", "without a scheme"},
	} {
		dir := sampleRepo(t, c.repo)
		_, errs, code := runCLI(t, "", "init", dir, "--registry", c.registry)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("init %s --registry %s: exit %d, stderr %q; want exit 2 and %q", c.repo, c.registry, code, errs, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "gantry.yml")); err == nil {
			t.Errorf("init %s --registry %s wrote gantry.yml", c.repo, c.registry)
		}
	}
}
