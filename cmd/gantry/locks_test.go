package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// TestUnlockNeverFreesARunningDeployment (invariant 12): with deploy A of
// test held in its verify step under continuous load, `unlock test
// --force` is refused with exit 3 naming #A and how to stop it; `cancel
// test` ends A, whose candidate is put back while 1.0.0 keeps serving;
// deploy B then succeeds. No request fails, and what status records is
// what the router serves.
func TestUnlockNeverFreesARunningDeployment(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0")
	// The verify step of 1.1.0 waits until the test lets it go on.
	gate := filepath.Join(t.TempDir(), "go-on")
	manifest, err := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	if err != nil {
		t.Fatal(err)
	}
	commitChange(t, repo, "gantry.yml", string(manifest)+"verify:\n  - command: while [ ! -e "+gate+" ]; do sleep 0.1; done\n", "verify waits")
	mustCLI(t, s.APIURL, "release", "build", "--ref", "main")

	const host = "test.hello.localhost"
	load := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: host, Workers: 4, MaxDuration: 5 * time.Minute})
	defer load.Stop()

	type result struct {
		out, errs string
		code      int
	}
	doneA := make(chan result, 1)
	go func() {
		o, e, c := runCLI(t, s.APIURL, "deploy", "test", "--release", "1.1.0")
		doneA <- result{o, e, c}
	}()
	a := waitForStep(t, s, "test", "verify")

	for _, args := range [][]string{{"unlock", "test", "--force"}, {"unlock", "test"}} {
		_, errs, code := runCLI(t, s.APIURL, args...)
		if code != 3 || !strings.Contains(errs, fmt.Sprintf("#%d", a)) || !strings.Contains(errs, "gantry cancel test") {
			t.Errorf("gantry %s while #%d runs: exit %d %q, want 3 naming #%d and `gantry cancel test`", strings.Join(args, " "), a, code, errs, a)
		}
	}
	if l, err := s.Store.FindLock(context.Background(), "hello", "test"); err != nil || l.DeploymentID != a {
		t.Fatalf("after the refused unlocks: lock %+v, %v; want it held for #%d", l, err, a)
	}

	var d gantry.Deployment
	mustJSON(t, mustCLI(t, s.APIURL, "cancel", "test", "--json"), &d)
	if d.ID != a || d.State != gantry.DeploymentFailed || !strings.Contains(d.Error, "cancelled by tester") {
		t.Errorf("cancel test: #%d %s %q, want #%d failed, cancelled by tester", d.ID, d.State, d.Error, a)
	}
	select {
	case r := <-doneA:
		if r.code != 1 {
			t.Errorf("deploy A after cancel: exit %d, want 1\n%s%s", r.code, r.out, r.errs)
		}
	case <-time.After(time.Minute):
		t.Fatal("deploy A did not return within a minute of its cancel")
	}
	wantVersion(t, s.RouterURL, host, "1.0.0")
	wantRecordedIsServed(t, s, "test", "1.0.0")

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, s.APIURL, "deploy", "test", "--release", "1.1.0")
	wantVersion(t, s.RouterURL, host, "1.1.0")
	load.Stop()
	if n := load.Failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed; first failures:\n%s", n, n+load.OK.Load(), strings.Join(load.Failures(), "\n"))
	}
	if load.OK.Load() == 0 {
		t.Fatal("no request succeeded: the load did not run")
	}
	wantRecordedIsServed(t, s, "test", "1.1.0")
	if _, _, code := runCLI(t, s.APIURL, "cancel", "test"); code != 1 {
		t.Errorf("cancel with nothing running: exit %d, want 1 (not found)", code)
	}
	t.Logf("%d requests, 0 failed", load.OK.Load())
}

// waitForStep waits until the running deployment of env has started step
// and returns its ID.
func waitForStep(t *testing.T, s *Server, env, step string) int64 {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ds, err := s.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: "hello", Env: env, State: gantry.DeploymentRunning, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) > 0 {
			d, err := s.Store.FindDeployment(ctx, ds[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range d.Steps {
				if st.Name == step {
					return d.ID
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no deployment of %s reached step %s within 2 minutes", env, step)
	return 0
}

// wantRecordedIsServed checks that status records version on env's active
// slot and that the router's active targets are exactly that slot's web
// instances: the record and the router agree.
func wantRecordedIsServed(t *testing.T, s *Server, env, version string) {
	t.Helper()
	var sts []api.EnvironmentStatus
	mustJSON(t, mustCLI(t, s.APIURL, "status", env, "--json"), &sts)
	if len(sts) != 1 {
		t.Fatalf("status %s lists %d environments, want 1", env, len(sts))
	}
	st := sts[0]
	a := st.ActiveSlot()
	if a == nil || a.Version != version {
		t.Fatalf("status %s: active slot %+v, want %s", env, a, version)
	}
	var recorded, routed []string
	for _, inst := range a.Instances {
		if inst.Addr != "" {
			recorded = append(recorded, inst.Addr)
		}
	}
	if st.Route != nil {
		for _, tg := range st.Route.Active {
			routed = append(routed, tg.Addr)
		}
	}
	slices.Sort(recorded)
	slices.Sort(routed)
	if len(recorded) == 0 || !slices.Equal(recorded, routed) {
		t.Fatalf("status %s records %v on slot %s, the router serves %v", env, recorded, a.Name, routed)
	}
}
