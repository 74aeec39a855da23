package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/deploy"
)

// TestCrashAtEveryStep kills the server (SIGKILL) at every journal step of
// a blue-green deploy, before and after each step acts, restarts it on the
// same state, and checks that the environment is consistent: the old or the
// new release fully serving, never neither; the deployment recorded as
// recovered; the lock released so the next deploy runs.
func TestCrashAtEveryStep(t *testing.T) {
	needTools(t)
	data, router := t.TempDir(), freeAddr(t)
	repo := helloRepo(t)

	srv := startChild(t, data, router, "")
	mustCLI(t, srv.API, "app", "add", "hello", "--repo", repo)
	mustCLI(t, srv.API, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, srv.API, "release", "build", "--ref", "v1.1.0")
	// Deploys of 1.1.0 and then 1.0.0 again fill both slots; the journal of
	// the last one tells which steps a deploy takes (stop-standby included).
	mustCLI(t, srv.API, "deploy", "test", "--release", "1.1.0")
	mustCLI(t, srv.API, "deploy", "test", "--release", "1.0.0")
	d := lastJournal(t, srv.API)
	var steps []string
	for _, s := range d.Steps {
		steps = append(steps, s.Name)
	}
	if len(steps) < 5 {
		t.Fatalf("journal has steps %v, want at least verify-artifacts, stop-standby, start, health, switch", steps)
	}
	srv.stop()
	t.Cleanup(func() { stopInstancesOf(t, data, newLogger(testWriter{t}, "text")) })

	serving := "1.0.0"
	for _, step := range steps {
		for _, state := range []string{gantry.StepStarted, gantry.StepDone} {
			if state == gantry.StepStarted && deploy.RecordOnly(step) {
				continue // journaled once, done, with the deployment's record
			}
			at := fmt.Sprintf("deploy:%s:%s", step, state)
			t.Run(at, func(t *testing.T) {
				next := map[string]string{"1.0.0": "1.1.0", "1.1.0": "1.0.0"}[serving]
				restarted := crashThenRestart(t, data, router, at, "deploy", "test", "--release", next)
				defer restarted.stop()
				got := mustRecovered(t, restarted, at, serving, next, gantry.DeploymentRecovered)
				rc := api.NewClient(restarted.API, "tester")
				serving = got
				// The environment takes the next deploy.
				next = map[string]string{"1.0.0": "1.1.0", "1.1.0": "1.0.0"}[serving]
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if _, err := rc.Deploy(ctx, gantry.DeployRequest{App: "hello", Env: "test", Release: next}, nil); err != nil {
					t.Fatalf("deploy after recovery: %v", err)
				}
				serving = next
				wantVersion(t, restarted.Router, "test.hello.localhost", serving)
			})
		}
	}
}

// mustRecovered checks the environment test of app hello on a server
// restarted after a crash at at: serving was its release before the
// interrupted operation and next the one it was going to; one of them
// serves, fully (the active slot's two instances, as recorded), no lock is
// left, and the last deployment is recorded as want. It returns the
// release that serves.
func mustRecovered(t *testing.T, restarted *childProc, at, serving, next, want string) string {
	t.Helper()
	got, err := getVersion(restarted.Router, "test.hello.localhost")
	if err != nil {
		t.Fatalf("after a crash at %s nothing serves: %v\n%s", at, err, restarted.stderr)
	}
	if got != serving && got != next {
		t.Fatalf("after a crash at %s test serves %s, want %s or %s", at, got, serving, next)
	}
	rc := api.NewClient(restarted.API, "tester")
	env, err := rc.Environment(context.Background(), "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	active := env.ActiveSlot()
	if active == nil || active.Version != got || len(active.Instances) != 2 {
		t.Fatalf("active slot %+v does not match what serves (%s)", active, got)
	}
	if env.Lock != nil {
		t.Fatalf("lock still held after recovery: %+v", env.Lock)
	}
	last, err := rc.ListDeployments(context.Background(), "hello", "test", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last[0].State != want {
		t.Errorf("interrupted deployment is %s, want %s (%s)", last[0].State, want, last[0].Error)
	}
	return got
}

// lastJournal returns the last deployment of app hello to test on the
// server at apiURL, with its journal.
func lastJournal(t *testing.T, apiURL string) *gantry.Deployment {
	t.Helper()
	c := api.NewClient(apiURL, "tester")
	ds, err := c.ListDeployments(context.Background(), "hello", "test", 1, 0)
	if err != nil || len(ds) == 0 {
		t.Fatalf("the last deployment of test: %v", err)
	}
	d, err := c.FindDeployment(context.Background(), "hello", ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// crashThenRestart runs the CLI with args against a server on data that
// kills itself at at (see crashAt), checks that the command failed and the
// server died, and returns a server restarted on the same state.
func crashThenRestart(t *testing.T, data, router, at string, args ...string) *childProc {
	t.Helper()
	crashing := startChild(t, data, router, at)
	_, errs, code := runCLI(t, crashing.API, args...)
	if code == 0 {
		t.Fatalf("%s survived a crash at %s", args[0], at)
	}
	if err := crashing.cmd.Wait(); err == nil {
		t.Fatalf("server exited cleanly instead of crashing at %s: %s", at, errs)
	}
	return startChild(t, data, router, "")
}

// stopInstancesOf stops the app instances that servers on data left
// running (a stopped or killed server leaves them), from the state they
// left.
func stopInstancesOf(tb testing.TB, data string, logger *slog.Logger) {
	tb.Helper()
	stopInstancesWith(tb, &Server{DataDir: data, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: logger})
}

// stopInstancesWith stops the app instances of the state s opens (a
// server not yet opened, configured as the servers that left them were).
func stopInstancesWith(tb testing.TB, s *Server) {
	tb.Helper()
	if err := s.Open(context.Background()); err != nil {
		tb.Errorf("cleanup: open the state to stop the app's instances: %v", err)
		return
	}
	if err := s.Orchestrator.StopAll(context.Background()); err != nil {
		tb.Errorf("cleanup: stop the app's instances: %v", err)
	}
	s.Close()
}
