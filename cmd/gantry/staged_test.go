package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// TestW3StagedAB follows seed 001. Control: a tag defines exactly what is
// deployed. The new release runs beside the old one and is checked through
// its preview host while the old one still serves. Rollback: the new
// release is set aside (still running, warm), not torn down, and the old
// one serves again at once. (The database half of the seed, writes held or
// the schema change made compatible, is TestHeldWritesDuringMaintenanceDeploy
// and TestW4ExpandSwitchContract.)
func TestW3StagedAB(t *testing.T) {
	needTools(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not on PATH")
	}
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	// The candidate is checked beside the old release: the preview host
	// answers with the new version while the environment's host still
	// answers with the old one.
	editManifest(t, repo, "check the candidate beside the old release", func(m string) string {
		return m + "verify:\n  - command: >-\n      curl -sf -H \"Host: $GANTRY_PREVIEW_HOST\" $GANTRY_ROUTER_URL/ | grep -q 'id=\"version\">1.2.0<' &&\n      curl -sf -H \"Host: test.hello.localhost\" $GANTRY_ROUTER_URL/ | grep -q 'id=\"version\">1.0.0<'\n"
	})
	commitChange(t, repo, "VERSION", "1.2.0\n", "1.2.0")
	git(t, repo, "tag", "v1.2.0")
	cli := func(args ...string) string { t.Helper(); return mustCLI(t, s.APIURL, args...) }
	cli("app", "add", "hello", "--repo", repo)

	// Control: what runs is exactly the tagged commit.
	cli("deploy", "test", "--ref", "v1.0.0")
	out := cli("deploy", "test", "--ref", "v1.2.0", "--json")
	var tagCommit string
	if b, err := exec.Command("git", "-C", repo, "rev-parse", "v1.2.0^{commit}").Output(); err == nil {
		tagCommit = strings.TrimSpace(string(b))
	}
	d := lastDeployment(t, s, "test")
	rel, err := s.Store.FindRelease(context.Background(), "hello", d.ReleaseID)
	if err != nil || rel.Commit != tagCommit || rel.Version != "1.2.0" {
		t.Fatalf("deployed %+v, want commit %s of tag v1.2.0\n%s", rel, tagCommit, out)
	}
	if !journalHas(d, "verify", "passed") {
		t.Fatalf("the candidate was not checked beside the old release: %+v", d.Steps)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.2.0")

	// Rollback sets the new release aside: the old one serves again at
	// once, and the new one keeps running, warm, for another look.
	load := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "test.hello.localhost", Workers: 2, MaxDuration: time.Minute})
	cli("rollback", "test")
	load.Stop()
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.0.0")
	if n := load.Failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the rollback", n)
	}
	env, err := s.Store.FindEnvironment(context.Background(), "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	aside := env.Slots[gantry.OtherSlot(env.Active)]
	if aside == nil || aside.Version != "1.2.0" || aside.State != gantry.SlotStandby || len(aside.Instances) != 2 {
		t.Errorf("the rolled-back release is not set aside and running: %+v", aside)
	}
}
