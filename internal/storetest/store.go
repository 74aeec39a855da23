package storetest

import (
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

var storeTests = []test{
	{"Reopen", func(t *testing.T, f *fixture) {
		// What was written before Close is there after a reopen: the
		// journal in particular, which crash recovery reads.
		app := f.mustCreateApp("shop")
		rel := f.mustCreateRelease(release("shop", "r1", "3.0.1", "c1", T0))
		env := environment("shop", "test")
		mustOK(t, "PutEnvironment", f.s.PutEnvironment(f.ctx, env))
		d := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		s1 := &gantry.Step{Name: "start", State: gantry.StepStarted, StartedAt: T0}
		mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, d.ID, s1))
		s1.State, s1.EndedAt = gantry.StepDone, T0.Add(time.Second)
		mustOK(t, "UpdateStep", f.s.UpdateStep(f.ctx, d.ID, s1))
		s2 := &gantry.Step{Name: "switch", State: gantry.StepStarted, StartedAt: T0.Add(time.Second)}
		mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, d.ID, s2))
		lock := &gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "deploy", DeploymentID: d.ID}
		f.mustAcquire(lock)

		f.reopen()

		gotApp, err := f.s.FindApp(f.ctx, "shop")
		mustOK(t, "FindApp after reopen", err)
		sameJSON(t, "app after reopen", gotApp, app)
		gotRel, err := f.s.FindRelease(f.ctx, "shop", "r1")
		mustOK(t, "FindRelease after reopen", err)
		sameJSON(t, "release after reopen", gotRel, rel)
		gotEnv, err := f.s.FindEnvironment(f.ctx, "shop", "test")
		mustOK(t, "FindEnvironment after reopen", err)
		sameJSON(t, "environment after reopen", gotEnv, env)
		gotD, err := f.s.FindDeployment(f.ctx, d.ID)
		mustOK(t, "FindDeployment after reopen", err)
		d.Steps = []gantry.Step{*s1, *s2}
		sameJSON(t, "deployment after reopen", gotD, d)
		gotLock, err := f.s.FindLock(f.ctx, "shop", "test")
		mustOK(t, "FindLock after reopen", err)
		sameJSON(t, "lock after reopen", gotLock, lock)

		// And the store goes on from where it was.
		s3 := &gantry.Step{Name: "stop blue", State: gantry.StepStarted}
		mustOK(t, "AppendStep after reopen", f.s.AppendStep(f.ctx, d.ID, s3))
		if s3.Seq != 3 {
			t.Errorf("AppendStep after reopen: got seq %d, want 3", s3.Seq)
		}
		d2 := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		if d2.ID <= d.ID {
			t.Errorf("CreateDeployment after reopen: got ID %d, want more than %d", d2.ID, d.ID)
		}
		wantCode(t, "AcquireLock after reopen", f.s.AcquireLock(f.ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "bob", Operation: "deploy"}), gantry.ECONFLICT)
	}},
	{"Fresh", func(t *testing.T, f *fixture) {
		// Every subtest starts empty: the suite relies on it, and so does
		// the check that reopening reaches the same data.
		apps, err := f.s.ListApps(f.ctx)
		mustOK(t, "ListApps", err)
		ds, err := f.s.ListDeployments(f.ctx, gantry.DeploymentFilter{})
		mustOK(t, "ListDeployments", err)
		if len(apps) != 0 || len(ds) != 0 {
			t.Errorf("new store: got %d apps and %d deployments, want none", len(apps), len(ds))
		}
	}},
}
