package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// twoGroups turns the sample app into a stack: a worker in order group 1
// (a process that only runs; it is ready when still running after its
// delay) and the web in group 2.
func twoGroups(t *testing.T, repo, webRun string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	worker := "  worker:\n    build:\n      command: \"true\"\n      artifacts: [VERSION]\n    run: exec sleep 1000\n    http: false\n    order: 1\n    ready_delay: 100ms\n    stop: {signal: SIGTERM, timeout: 5s}\n  web:\n"
	if !strings.Contains(s, "  worker:\n") {
		s = strings.Replace(s, "  web:\n", worker, 1)
		s = strings.Replace(s, "    run: bin/hello\n", "    run: bin/hello\n    order: 2\n", 1)
	}
	if webRun != "" {
		s = strings.Replace(s, "    run: bin/hello\n", "    run: "+webRun+"\n", 1)
	}
	return s
}

// openServerAt runs an in-process server on dataDir, which a test may
// close and open again to check what outlives a restart.
func openServerAt(t *testing.T, dataDir string) *Server {
	t.Helper()
	s := &Server{DataDir: dataDir, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(testWriter{t}, "text")}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
	return s
}

func stepNames(d *gantry.Deployment) []string {
	var out []string
	for _, s := range d.Steps {
		out = append(out, s.Name+"("+s.State+"): "+s.Detail)
	}
	return out
}

func mustDeployment(t *testing.T, s *Server, app, env string) *gantry.Deployment {
	t.Helper()
	ds, err := s.Store.ListDeployments(context.Background(), gantry.DeploymentFilter{App: app, Env: env, Limit: 1})
	if err != nil || len(ds) == 0 {
		t.Fatalf("latest deployment of %s: %v (%d found)", env, err, len(ds))
	}
	d, err := s.Store.FindDeployment(context.Background(), ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// indexOfStep returns the position of the first step whose name and detail
// start as given, from position from on, or -1.
func indexOfStep(d *gantry.Deployment, from int, name, detailPrefix string) int {
	for i := from; i < len(d.Steps); i++ {
		if d.Steps[i].Name == name && strings.HasPrefix(d.Steps[i].Detail, detailPrefix) {
			return i
		}
	}
	return -1
}

// TestOrderedRollout: a stack of a worker (group 1) and the web (group 2)
// rolls out group by group; --pause-after 1 stops with the lock held and
// the old web serving, across a server restart, until `continue`; --only
// web leaves the worker on its release; a failing group 2 puts group 1
// back (blue-green: its candidate instances are stopped, in reverse order;
// restart: the worker is restarted on the previous release).
func TestOrderedRollout(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	data := t.TempDir()
	s := openServerAt(t, data)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Orchestrator.StopAll(cctx); err != nil {
			t.Errorf("stop instances: %v", err)
		}
		s.Close()
	})
	repo := helloRepo(t)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	commitChange(t, repo, "gantry.yml", twoGroups(t, repo, ""), "worker in group 1, web in group 2")
	commitChange(t, repo, "VERSION", "2.0.0\n", "2.0.0")
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.0.0")
	d := mustDeployment(t, s, "hello", "test")
	g1, g2 := indexOfStep(d, 0, "start-group", "group 1: worker"), indexOfStep(d, 0, "start-group", "group 2: web")
	if g1 < 0 || g2 < g1 || indexOfStep(d, g2, "switch", "") < 0 {
		t.Fatalf("journal does not start group 1, then group 2, then switch:\n%s", strings.Join(stepNames(d), "\n"))
	}

	// Pause after the worker group.
	commitChange(t, repo, "VERSION", "2.1.0\n", "2.1.0")
	out := mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main", "--pause-after", "1")
	for _, want := range []string{"paused", "pending: group 2: web", "gantry continue test"} {
		if !strings.Contains(out, want) {
			t.Errorf("paused deploy output lacks %q:\n%s", want, out)
		}
	}
	paused := mustDeployment(t, s, "hello", "test")
	if paused.State != gantry.DeploymentPaused {
		t.Fatalf("deployment state = %s, want paused", paused.State)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.0.0")
	if l, err := s.Store.FindLock(ctx, "hello", "test"); err != nil {
		t.Fatalf("lock of a paused deployment: %v, want held", err)
	} else if !strings.Contains(l.Operation, "2.1.0") {
		t.Errorf("lock operation = %q, want the paused deploy of 2.1.0", l.Operation)
	}
	if _, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--release", "2.0.0"); code != 3 {
		t.Errorf("deploy while paused: exit %d, want 3 (locked)\n%s", code, errs)
	}

	// The pause survives a restart of the server.
	s.Close()
	s = openServerAt(t, data)
	if again := mustDeployment(t, s, "hello", "test"); again.ID != paused.ID || again.State != gantry.DeploymentPaused {
		t.Fatalf("after a restart: deployment #%d %s, want #%d paused", again.ID, again.State, paused.ID)
	}
	env, err := s.Store.FindEnvironment(ctx, "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	var cand *gantry.Slot
	for _, sl := range env.Slots {
		if sl.State == gantry.SlotStarting {
			cand = sl
		}
	}
	if cand == nil || len(cand.Instances) != 1 || cand.Instances[0].Service != "worker" {
		t.Fatalf("paused candidate slot after a restart = %+v, want the new worker only", cand)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.0.0")

	mustCLI(t, s.APIURL, "continue", "test")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.1.0")
	done := mustDeployment(t, s, "hello", "test")
	if done.ID != paused.ID || done.State != gantry.DeploymentSucceeded {
		t.Fatalf("after continue: deployment #%d %s, want #%d succeeded", done.ID, done.State, paused.ID)
	}
	if p, c := indexOfStep(done, 0, "pause-after", ""), indexOfStep(done, 0, "start-group", "group 2: web"); p < 0 || c < p {
		t.Errorf("journal does not start group 2 after the pause:\n%s", strings.Join(stepNames(done), "\n"))
	}
	if _, err := s.Store.FindLock(ctx, "hello", "test"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("lock after continue: %v, want none", err)
	}
	// The slot traffic left stays warm with its web only: two workers
	// would both take jobs.
	if indexOfStep(done, 0, "stop-old-workers", "") < 0 {
		t.Errorf("journal does not stop the old worker:\n%s", strings.Join(stepNames(done), "\n"))
	}
	env, err = s.Store.FindEnvironment(ctx, "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	if old := env.Slots[gantry.OtherSlot(env.Active)]; old == nil || len(old.Instances) != 2 || old.Instances[0].Service != "web" {
		t.Errorf("warm slot after continue = %+v, want its 2 web instances only", old)
	}
	if _, errs, code := runCLI(t, s.APIURL, "continue", "test"); code == 0 {
		t.Errorf("continue with nothing paused succeeded:\n%s", errs)
	}

	// --only web: the worker keeps running 2.1.0.
	rel21 := done.ReleaseID
	commitChange(t, repo, "VERSION", "2.2.0\n", "2.2.0")
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main", "--only", "web")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.2.0")
	only := mustDeployment(t, s, "hello", "test")
	env, err = s.Store.FindEnvironment(ctx, "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range env.ActiveSlot().Instances {
		want := only.ReleaseID
		if inst.Service == "worker" {
			want = rel21
		}
		if inst.ReleaseID != want {
			t.Errorf("after --only web: %s-%d runs release %s, want %s", inst.Service, inst.Index, inst.ReleaseID, want)
		}
	}

	// A rollback to the warm slot starts its worker again before the flip.
	mustCLI(t, s.APIURL, "rollback", "test")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.1.0")
	rb := mustDeployment(t, s, "hello", "test")
	if rb.Strategy != "flip" {
		t.Errorf("rollback strategy = %q, want a flip to the warm slot", rb.Strategy)
	}
	if w, sw := indexOfStep(rb, 0, "start-workers", "group 1: worker"), indexOfStep(rb, 0, "switch", ""); w < 0 || sw < w {
		t.Errorf("rollback journal does not start the worker before the switch:\n%s", strings.Join(stepNames(rb), "\n"))
	}
	env, err = s.Store.FindEnvironment(ctx, "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(env.ActiveSlot().Instances); n != 3 {
		t.Errorf("slot after the rollback runs %d instances, want 3 (worker, 2 web)", n)
	}

	// A paused rollout that is aborted puts its group back and frees the lock.
	mustCLI(t, s.APIURL, "deploy", "test", "--release", "2.2.0", "--pause-after", "1")
	if _, errs, code := runCLI(t, s.APIURL, "continue", "test", "--abort"); code == 0 {
		t.Errorf("continue --abort exit 0, want a failure\n%s", errs)
	}
	aborted := mustDeployment(t, s, "hello", "test")
	if aborted.State != gantry.DeploymentFailed || indexOfStep(aborted, 0, "stop-group", "group 1: worker") < 0 {
		t.Errorf("aborted deployment %s, want failed with group 1 stopped:\n%s", aborted.State, strings.Join(stepNames(aborted), "\n"))
	}
	if _, err := s.Store.FindLock(ctx, "hello", "test"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("lock after abort: %v, want none", err)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.1.0")

	// Group 2 fails: group 1's new worker is stopped after it, and 2.1.0
	// keeps serving.
	commitChange(t, repo, "gantry.yml", twoGroups(t, repo, `echo "cannot bind" >&2; exit 3`), "broken web")
	commitChange(t, repo, "VERSION", "3.0.0\n", "3.0.0")
	if _, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "main"); code != 1 {
		t.Fatalf("broken group 2: exit %d, want 1\n%s", code, errs)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.1.0")
	failed := mustDeployment(t, s, "hello", "test")
	fail2 := indexOfStep(failed, 0, "start-group", "group 2: web")
	stop2 := indexOfStep(failed, fail2+1, "stop-group", "group 2: web")
	stop1 := indexOfStep(failed, stop2+1, "stop-group", "group 1: worker")
	if fail2 < 0 || failed.Steps[fail2].State != gantry.StepFailed || stop2 < 0 || stop1 < 0 || indexOfStep(failed, 0, "stop-candidate", "") < 0 {
		t.Fatalf("journal does not stop group 2 then group 1 after group 2 failed:\n%s", strings.Join(stepNames(failed), "\n"))
	}
	env, err = s.Store.FindEnvironment(ctx, "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	if c := env.Slots[gantry.OtherSlot(env.Active)]; c == nil || len(c.Instances) != 0 {
		t.Errorf("failed candidate still runs instances: %+v", c)
	}

	// The same with the restart strategy: the worker, restarted on 3.0.0
	// first, is restarted again on the release it ran.
	if _, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--release", "3.0.0", "--strategy", "restart"); code != 1 {
		t.Fatalf("broken restart: exit %d, want 1\n%s", code, errs)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.1.0")
	restart := mustDeployment(t, s, "hello", "test")
	r2 := indexOfStep(restart, 0, "restore-group", "group 2: web")
	r1 := indexOfStep(restart, r2+1, "restore-group", "group 1: worker")
	if indexOfStep(restart, 0, "restart-group", "group 1: worker") < 0 || r2 < 0 || r1 < 0 {
		t.Fatalf("journal does not restore group 2 then group 1:\n%s", strings.Join(stepNames(restart), "\n"))
	}
	env, err = s.Store.FindEnvironment(ctx, "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range env.ActiveSlot().Instances {
		if inst.ReleaseID == restart.ReleaseID {
			t.Errorf("after the failed restart %s-%d still runs the broken release", inst.Service, inst.Index)
		}
	}
	if n := len(env.ActiveSlot().Instances); n != 3 {
		t.Errorf("active slot has %d instances after the put-back, want 3 (worker, 2 web)", n)
	}
}
