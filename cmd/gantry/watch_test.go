package main

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/loadtest"
)

// TestWatchRollsBackABadRelease: a release that passes its health check but
// answers its users with errors is switched in, the watch after the switch
// sees the error rate cross its bound, and traffic goes back to the
// previous release by itself; the deployment says which figure crossed
// which bound.
func TestWatchRollsBackABadRelease(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	editManifest(t, repo, "watch test after each switch", func(m string) string {
		return strings.Replace(m, "    hosts: [test.hello.localhost]\n",
			"    hosts: [test.hello.localhost]\n    watch: {window: 20s, max_error_rate: 0.05, min_requests: 20}\n", 1)
	})
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	editManifest(t, repo, "a broken release", func(m string) string {
		return strings.Replace(m, "    hosts: [test.hello.localhost]\n", "    hosts: [test.hello.localhost]\n    vars: {HELLO_BROKEN: \"1\"}\n", 1)
	})
	commitChange(t, repo, "VERSION", "1.2.0\n", "1.2.0")

	load := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "test.hello.localhost", Workers: 2, MaxDuration: 2 * time.Minute})
	_, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	load.Stop()
	if code != 1 || !strings.Contains(errs, "rolled back automatically") || !strings.Contains(errs, "error rate") {
		t.Fatalf("deploy of a broken release: exit %d, %q; want an automatic rollback naming the error rate", code, errs)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	d := lastDeployment(t, s, "test")
	if !journalHas(d, "auto-rollback", "error rate") || !journalHas(d, "watch", "> 5%") {
		t.Errorf("journal does not say which figure crossed which bound: %+v", d.Steps)
	}
	if load.OK.Load() == 0 {
		t.Error("no request succeeded")
	}
}
