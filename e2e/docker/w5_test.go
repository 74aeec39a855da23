package docker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// TestW5VersionedMicroservice follows seed 003: a microservice with its own
// version; its image is tagged with the version, the git sha and latest;
// staging, then production; integration tests gate production; a rollback
// pins the previous version.
func TestW5VersionedMicroservice(t *testing.T) {
	denv := dockertest.Get(t)
	st := startStack(t, denv)
	reg := denv.Registries[0].Addr
	gate := filepath.Join(t.TempDir(), "integration-tests-fail")
	manifest := `app: mailer
services:
  mailer:
    docker: {dockerfile: Dockerfile, context: .}
    run: /testapp
    instances: 2
    health: {path: /up, interval: 100ms}
    stop: {timeout: 5s}
verify:
  - command: "test ! -e ` + gate + ` && curl -sf -H \"Host: $GANTRY_PREVIEW_HOST\" $GANTRY_ROUTER_URL/up"
environments:
  staging:
    hosts: [staging.mailer.localhost]
    runtime: {driver: docker, registry: ` + reg + `/aegee}
  production:
    hosts: [mailer.localhost]
    runtime: {driver: docker, registry: ` + reg + `/aegee}
    promote_from: staging
`
	repo := newImageRepo(t, "mailer", "master", manifest)
	repo.commit("1.0.0", nil)
	st.cli(t, 0, "app", "add", "mailer", "--repo", repo.Dir)
	st.cli(t, 0, "deploy", "staging", "--ref", "master")
	sha := strings.TrimSpace(run(t, repo.Dir, nil, "git", "rev-parse", "--short=7", "HEAD"))

	// The image is tagged with the version, the git sha and latest.
	resp, err := http.Get("http://" + reg + "/v2/aegee/mailer/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tags struct{ Tags []string }
	json.Unmarshal(body, &tags)
	for _, want := range []string{"1.0.0", "git-" + sha, "latest"} {
		if !strings.Contains(strings.Join(tags.Tags, ","), want) {
			t.Errorf("image tags %v lack %s", tags.Tags, want)
		}
	}
	st.cli(t, 0, "promote", "staging", "production")

	// 1.1.0: bump the version, merge, deploy to staging.
	repo.commit("1.1.0", nil)
	st.cli(t, 0, "deploy", "staging", "--ref", "master")
	// The integration tests fail: production does not get it.
	os.WriteFile(gate, nil, 0o644)
	out := st.cli(t, 1, "promote", "staging", "production")
	if !strings.Contains(out, "verify check 1") {
		t.Errorf("promotion past failing integration tests: %s", out)
	}
	os.Remove(gate)
	load := loadtest.Start(loadtest.Options{URL: "http://" + st.router + "/", Host: "mailer.localhost", Workers: 2, MaxDuration: 5 * time.Minute})
	st.cli(t, 0, "promote", "staging", "production")
	// Something is wrong in production: pin the previous version.
	st.cli(t, 0, "rollback", "production", "--to", "1.0.0")
	load.Stop()
	if n := load.Failed.Load(); n != 0 || load.OK.Load() == 0 {
		t.Errorf("production: %d failed, %d ok", n, load.OK.Load())
	}
	var status []struct {
		Name   string                                     `json:"name"`
		Slots  map[string]struct{ Version, State string } `json:"slots"`
		Active string                                     `json:"active"`
	}
	json.Unmarshal([]byte(st.cli(t, 0, "status", "--json")), &status)
	for _, e := range status {
		if e.Name == "production" && e.Slots[e.Active].Version != "1.0.0" {
			t.Errorf("production runs %s after the rollback, want 1.0.0 pinned", e.Slots[e.Active].Version)
		}
	}
	st.cli(t, 0, "env", "delete", "production", "--force")
	st.cli(t, 0, "env", "delete", "staging", "--force")
}
