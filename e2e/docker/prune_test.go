package docker_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// TestPruneKeepsEveryEnvironmentsImages: two environments on one engine.
// A prune with a retention of one release removes only the image nobody
// needs, and keeps what prod runs, test runs, and test's warm standby
// (another tool's staging prune once destroyed production's rollback image).
func TestPruneKeepsEveryEnvironmentsImages(t *testing.T) {
	denv := dockertest.Get(t)
	st := startStack(t, denv)
	reg := denv.Registries[0].Addr
	repo := filepath.Join(t.TempDir(), "shop")
	if _, err := drivertest.BuildTestApp(repo); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(repo, "gantry.yml"), []byte(`app: shop
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
`), 0o644)
	gitEnv := []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost"}
	run(t, repo, gitEnv, "git", "init", "-q", "-b", "main")
	st.cli(t, 0, "app", "add", "shop", "--repo", filepath.Dir(repo)+"/shop")
	digests := map[string]string{}
	for i, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
		// Each version is a different image: its Dockerfile says which.
		os.WriteFile(filepath.Join(repo, "Dockerfile"), []byte("FROM scratch\nCOPY bin/testapp /testapp\nENV BUILD="+v+"\n"), 0o644)
		os.WriteFile(filepath.Join(repo, "VERSION"), []byte(v+"\n"), 0o644)
		run(t, repo, gitEnv, "git", "add", "-A")
		run(t, repo, gitEnv, "git", "commit", "-q", "-m", v)
		var rel gantry.Release
		out := st.cli(t, 0, "release", "build", "--ref", "main", "--json")
		json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rel)
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
