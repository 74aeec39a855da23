package docker_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/dockertest"
)

// TestPruneKeepsEveryEnvironmentsImages: two environments on one engine.
// A prune with a retention of one release removes only the image nobody
// needs, and keeps what prod runs, test runs, and test's warm standby
// (another tool's staging prune once destroyed production's rollback image).
func TestPruneKeepsEveryEnvironmentsImages(t *testing.T) {
	denv := dockertest.Get(t)
	st := startStack(t, denv)
	reg := denv.Registries[0].Addr
	repo := newImageRepo(t, "shop", "main", `app: shop
services:
  web:
    docker: {dockerfile: Dockerfile, context: .}
    run: /testapp
    health: {path: /up, interval: 100ms}
    stop: {timeout: 5s}
environments:
  test:
    runtime: {driver: docker, registry: `+reg+`/shop}
  prod:
    runtime: {driver: docker, registry: `+reg+`/shop}
    promote_from: test
`)
	st.cli(t, 0, "app", "add", "shop", "--repo", repo.Dir)
	digests := map[string]string{}
	for i, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
		// Each version is a different image: its Dockerfile says which.
		repo.commit(v, map[string]string{"Dockerfile": scratchDockerfile + "ENV BUILD=" + v + "\n"})
		rel := releaseJSON(t, st.cli(t, 0, "release", "build", "--ref", "main", "--json"))
		digests[v] = rel.Artifacts["web"].Digest
		st.cli(t, 0, "deploy", "test", "--release", v)
		if i == 1 {
			st.cli(t, 0, "promote", "test", "prod") // prod runs 1.1.0
		}
	}
	// test: active 1.3.0, standby 1.2.0; prod: active 1.1.0. Nobody needs 1.0.0.
	out := st.cli(t, 0, "images", "prune", "--keep", "1")
	present := engineDigests(t, denv)
	for _, v := range []string{"1.1.0", "1.2.0", "1.3.0"} {
		if !present[digests[v]] {
			t.Errorf("image of %s (%s) was pruned but is still needed\n%s", v, digests[v], out)
		}
	}
	if present[digests["1.0.0"]] {
		t.Errorf("image of 1.0.0, which nothing needs, was kept\n%s", out)
	}
	st.cli(t, 0, "env", "delete", "prod", "--force")
	st.cli(t, 0, "env", "delete", "test", "--force")
}

// engineDigests lists the image digests the engine holds.
func engineDigests(t *testing.T, denv *dockertest.Env) map[string]bool {
	t.Helper()
	cmd := exec.Command("docker", "images", "--digests", "--format", "{{.Digest}} {{.ID}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+denv.Engine.Host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker images: %v\n%s", err, out)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			got[f[0]] = true
		}
	}
	return got
}
