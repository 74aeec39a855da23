package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/deploy"
)

// TestCrashAtEveryRollbackStep kills the server (SIGKILL) at every journal
// step of a warm rollback (a flip back to the standby slot), before and
// after each step acts, and once its outcome is recorded but its lock not
// yet freed; it restarts the server on the same state each time and checks
// that the environment is consistent: the old or the new release fully
// serving, as recorded; the rollback recorded as recovered (or, crashed
// after its outcome, as succeeded); no lock left; and the next rollback
// runs. A rollback writes its deployment, its classify step (done: it only
// records, so it has no "started" point) and the lock's name in one
// transaction, and the switch's result, the environment's new active slot
// and its outcome only after the traffic moved: a crash between the switch
// and those records is among these.
func TestCrashAtEveryRollbackStep(t *testing.T) {
	needTools(t)
	data, router := t.TempDir(), freeAddr(t)
	repo := helloRepo(t)

	srv := startChild(t, data, router, "")
	mustCLI(t, srv.API, "app", "add", "hello", "--repo", repo)
	mustCLI(t, srv.API, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, srv.API, "deploy", "test", "--ref", "v1.1.0")
	// A first rollback (to 1.0.0) gives the journal of a flip.
	mustCLI(t, srv.API, "rollback", "test")
	d := lastJournal(t, srv.API)
	if d.Kind != gantry.KindRollback || d.Strategy != "flip" {
		t.Fatalf("the first rollback is a %s (%s), want a flip back to the warm slot", d.Kind, d.Strategy)
	}
	var points []string
	for _, s := range d.Steps {
		if !deploy.RecordOnly(s.Name) {
			points = append(points, fmt.Sprintf("rollback:%s:%s", s.Name, gantry.StepStarted))
		}
		points = append(points, fmt.Sprintf("rollback:%s:%s", s.Name, gantry.StepDone))
	}
	if len(points) < 3 {
		t.Fatalf("the rollback's journal has steps %+v, want at least classify and switch", d.Steps)
	}
	points = append(points, "finish")
	srv.stop()
	t.Cleanup(func() { stopInstancesOf(t, data, newLogger(testWriter{t}, "text")) })

	other := map[string]string{"1.0.0": "1.1.0", "1.1.0": "1.0.0"}
	serving := "1.0.0"
	for _, at := range points {
		t.Run(at, func(t *testing.T) {
			restarted := crashThenRestart(t, data, router, at, "rollback", "test")
			defer restarted.stop()
			want := gantry.DeploymentRecovered
			if at == "finish" {
				want = gantry.DeploymentSucceeded
			}
			serving = mustRecovered(t, restarted, at, serving, other[serving], want)
			t.Logf("after a crash at %s: %s serves", at, serving)
			// The environment takes the next rollback.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rc := api.NewClient(restarted.API, "tester")
			if _, err := rc.Rollback(ctx, gantry.RollbackRequest{App: "hello", Env: "test"}, nil); err != nil {
				t.Fatalf("rollback after recovery: %v", err)
			}
			serving = other[serving]
			wantVersion(t, restarted.Router, "test.hello.localhost", serving)
		})
	}
}
