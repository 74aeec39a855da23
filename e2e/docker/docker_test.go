package docker_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/clitest"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

func TestMain(m *testing.M) { os.Exit(dockertest.Main(m, 2, nil)) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// stack is a gantry server (the real binary) on the throwaway engine.
type stack struct {
	bin, sock, router string
	work, data, api   string
	denv              *dockertest.Env
	server            *exec.Cmd
	apps              []string // added with `gantry app add`: their containers go at cleanup
}

func startStack(t *testing.T, denv *dockertest.Env) *stack {
	t.Helper()
	work := t.TempDir()
	st := &stack{work: work, bin: filepath.Join(work, "gantry"), data: filepath.Join(work, "state"), api: freeAddr(t), router: freeAddr(t), denv: denv}
	run(t, "../..", nil, "go", "build", "-o", st.bin, "./cmd/gantry")
	st.sock = "unix://" + filepath.Join(st.data, "gantry.sock")
	st.start(t)
	t.Cleanup(func() {
		st.server.Process.Signal(os.Interrupt)
		st.server.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(work, "server.log"))
			t.Logf("server log:\n%s", b)
		}
		st.removeContainers(t)
	})
	return st
}

// start runs the server on the stack's state and waits for its socket.
func (st *stack) start(t *testing.T) {
	t.Helper()
	os.Remove(strings.TrimPrefix(st.sock, "unix://"))
	st.server = exec.Command(st.bin, "server", "--data", st.data, "--listen", st.api, "--router", st.router,
		"--docker-host", st.denv.Engine.Host, "--secrets-key", filepath.Join(st.work, "secrets.key"), "--log-format", "text")
	logf, _ := os.OpenFile(filepath.Join(st.work, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	st.server.Stdout, st.server.Stderr = logf, logf
	if err := st.server.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(strings.TrimPrefix(st.sock, "unix://")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("server socket did not appear")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cli runs the gantry CLI against the stack; wantCode is its exit code.
func (st *stack) cli(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	if len(args) >= 3 && args[0] == "app" && args[1] == "add" {
		st.apps = append(st.apps, args[2])
	}
	cmd := exec.Command(st.bin, args...)
	cmd.Env = append(os.Environ(), "GANTRY_SERVER="+st.sock)
	out, err := cmd.CombinedOutput()
	if code := clitest.ExitCode(t, err); code != wantCode {
		t.Fatalf("gantry %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	return string(out)
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestImageReleasePromotedByDigest: W1 and W5 with images. The release is
// built once from the commit and pushed to test's registry; promotion to
// prod copies it by digest into prod's registry; prod runs the digest that
// ran on test; a rollback flips back; no request to prod fails.
func TestImageReleasePromotedByDigest(t *testing.T) {
	denv := dockertest.Get(t)
	if len(denv.Registries) < 2 {
		t.Fatal("want two registries")
	}
	st := startStack(t, denv)
	reg0, reg1 := denv.Registries[0].Addr, denv.Registries[1].Addr
	repo := newImageRepo(t, "app", "main", fmt.Sprintf(`app: shop
services:
  web:
    docker: {dockerfile: Dockerfile, context: .}
    run: /testapp
    instances: 2
    health: {path: /up, interval: 100ms}
    stop: {timeout: 5s}
environments:
  test:
    hosts: [test.shop.localhost]
    runtime: {driver: docker, registry: %s/shop}
  prod:
    hosts: [shop.localhost]
    runtime: {driver: docker, registry: %s/shop}
    promote_from: test
`, reg0, reg1))
	repo.commit("1.0.0", nil)
	cli := func(args ...string) string { t.Helper(); return st.cli(t, 0, args...) }
	cli("app", "add", "shop", "--repo", repo.Dir)
	rel := releaseJSON(t, cli("release", "build", "--ref", "main", "--json"))
	web := rel.Artifacts["web"]
	if web.Kind != gantry.ArtifactImage || !strings.HasPrefix(web.Image, reg0+"/shop/web@sha256:") {
		t.Fatalf("web artifact %+v: want an image in test's registry %s by digest", web, reg0)
	}
	cli("deploy", "test", "--release", rel.ID)
	cli("promote", "test", "prod")
	// prod's registry now holds the very same digest.
	resp, err := http.Head("http://" + reg1 + "/v2/shop/web/manifests/" + web.Digest)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("prod's registry does not serve %s: %v %v", web.Digest, resp, err)
	}
	var diff struct {
		Same bool `json:"same_release"`
	}
	json.Unmarshal([]byte(cli("diff", "test", "prod", "--json")), &diff)
	if !diff.Same {
		t.Error("test and prod do not run the same release")
	}

	// A new version reaches prod and is rolled back, under load: no request fails.
	repo.commit("1.1.0", nil)
	load := loadtest.Start(loadtest.Options{URL: "http://" + st.router + "/", Host: "shop.localhost", Workers: 4, MaxDuration: 5 * time.Minute, CountBodies: true})
	cli("deploy", "test", "--ref", "main")
	cli("promote", "test", "prod")
	cli("rollback", "prod")
	load.Stop()
	if n := load.Failed.Load(); n != 0 || load.OK.Load() == 0 {
		t.Fatalf("prod under load: %d failed, %d ok:\n%s", n, load.OK.Load(), strings.Join(load.Failures(), "\n"))
	}
	bodies := load.Bodies()
	var saw11 bool
	for b := range bodies {
		saw11 = saw11 || strings.Contains(b, "release=1.1.0")
	}
	if !saw11 {
		t.Errorf("prod never answered from 1.1.0 during the load: %v", bodies)
	}
	// A release built by an outside CI: the image already in the registry
	// is registered by digest, checked there, and deployed like any other.
	head := strings.TrimSpace(run(t, repo.Dir, nil, "git", "rev-parse", "HEAD"))
	imported := releaseJSON(t, cli("release", "import", "--service", "web="+web.Image, "--version", "1.5.0-ci", "--commit", head, "--json"))
	if imported.Artifacts["web"].Digest != web.Digest || imported.Commit != head {
		t.Fatalf("imported release %+v, want digest %s at %s", imported, web.Digest, head)
	}
	cli("deploy", "test", "--release", "1.5.0-ci")
	// An image the registry does not serve is refused.
	bogus := reg0 + "/shop/web@sha256:" + strings.Repeat("0", 64)
	cmd := exec.Command(st.bin, "release", "import", "--service", "web="+bogus, "--version", "1.6.0", "--commit", head)
	cmd.Env = append(os.Environ(), "GANTRY_SERVER="+st.sock)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("import of an image the registry lacks succeeded:\n%s", out)
	}
	cli("env", "delete", "prod", "--force")
	cli("env", "delete", "test", "--force")
}

// removeContainers removes the containers of the stack's apps, whatever a
// test left running (the server keeps instances across its stops), so that
// the next test on the engine starts from none.
func (st *stack) removeContainers(t *testing.T) {
	for _, app := range st.apps {
		ps := exec.Command("docker", "ps", "-aq", "--filter", "label=gantry.app="+app)
		ps.Env = append(os.Environ(), "DOCKER_HOST="+st.denv.Engine.Host)
		out, err := ps.Output()
		if err != nil {
			t.Logf("docker ps: %v", err)
			continue
		}
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			rm := exec.Command("docker", append([]string{"rm", "-f"}, ids...)...)
			rm.Env = ps.Env
			if out, err := rm.CombinedOutput(); err != nil {
				t.Logf("docker rm: %v\n%s", err, out)
			}
		}
	}
}
