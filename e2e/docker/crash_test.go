package docker_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/dockertest"
)

// TestServerKilledMidDeployReattaches: the server is killed (SIGKILL) while
// a deploy's candidate containers run their verify step. The restarted
// server re-attaches to the containers that serve instead of replacing
// them, sets the unswitched candidate aside, and nothing runs twice.
func TestServerKilledMidDeployReattaches(t *testing.T) {
	denv := dockertest.Get(t)
	st := startStack(t, denv)
	reg := denv.Registries[0].Addr
	repo := newImageRepo(t, "shop", "main", `app: shop
services:
  web:
    docker: {dockerfile: Dockerfile, context: .}
    run: /testapp
    instances: 2
    health: {path: /up, interval: 100ms}
    stop: {timeout: 5s}
verify:
  - command: sleep 3
environments:
  test:
    runtime: {driver: docker, registry: `+reg+`/shop}
`)
	repo.commit("1.0.0", nil)
	st.cli(t, 0, "app", "add", "shop", "--repo", repo.Dir)
	st.cli(t, 0, "deploy", "test", "--ref", "main")
	before := containers(t, denv)
	if len(before) != 2 {
		t.Fatalf("%d containers after the first deploy, want 2: %v", len(before), before)
	}
	repo.commit("1.1.0", nil)
	st.cli(t, 0, "release", "build", "--ref", "main")

	// Deploy 1.1.0 and kill the server while its candidate is verified.
	deploy := exec.Command(st.bin, "deploy", "test", "--release", "1.1.0")
	deploy.Env = append(os.Environ(), "GANTRY_SERVER="+st.sock)
	if err := deploy.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(containers(t, denv)) < 4 {
		if time.Now().After(deadline) {
			t.Fatal("the candidate's containers never started")
		}
		time.Sleep(100 * time.Millisecond)
	}
	st.server.Process.Signal(syscall.SIGKILL)
	st.server.Wait()
	deploy.Wait()

	st.start(t)
	out := st.cli(t, 0, "status", "test")
	if !strings.Contains(out, "1.0.0") {
		t.Fatalf("after the restart test does not serve 1.0.0:\n%s", out)
	}
	after := containers(t, denv)
	for _, c := range before {
		if !slices.Contains(after, c) {
			t.Errorf("serving container %s was replaced instead of re-attached (now %v)", c, after)
		}
	}
	if len(after) != 2 {
		t.Errorf("%d containers run after recovery, want the 2 that serve: %v", len(after), after)
	}
	history := st.cli(t, 0, "history", "test")
	if !strings.Contains(history, "recovered") {
		t.Errorf("the interrupted deploy is not recorded as recovered:\n%s", history)
	}
	st.cli(t, 0, "env", "delete", "test", "--force")
}

// containers lists the ids of Gantry's running containers.
func containers(t *testing.T, denv *dockertest.Env) []string {
	t.Helper()
	cmd := exec.Command("docker", "ps", "-q", "--no-trunc", "--filter", "label=gantry.app=shop")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+denv.Engine.Host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}
