package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// TestCancelPutsTheCandidateBack: a deployment whose candidate never gets
// healthy is cancelled; Cancel returns once it has ended, its candidate is
// stopped, the old release serves, the lock is free and a next deploy runs.
func TestCancelPutsTheCandidateBack(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	v3 := h.MustRelease(t, app, Rel{Version: "1.0.2"})
	h.MustDeploy(t, "shop", "test", v1)
	before := h.Serving(t, "shop", "test")
	h.Driver.SetRelease(v2.ID, memdriver.Knobs{NeverHealthy: true})

	started := make(chan struct{})
	var once bool
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "start-group" && s.State == gantry.StepStarted && !once {
			once = true
			close(started)
		}
	})
	type result struct {
		d   *gantry.Deployment
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
		done <- result{d, err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the deploy never started its group")
	}
	h.SetOnStep(nil)

	d, err := h.O.Cancel(h.Ctx, "shop", "test", "ops")
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if d.State != gantry.DeploymentFailed || !strings.HasPrefix(d.Error, "cancelled by ops") {
		t.Errorf("cancelled deployment: %s %q, want failed, cancelled by ops", d.State, d.Error)
	}
	select {
	case r := <-done:
		if r.err == nil {
			t.Errorf("the cancelled deploy returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled deploy did not return")
	}
	h.MustNoLock(t, "shop", "test")
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("after cancel the router serves %v, want %v as before", got, before)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("active release %s, want %s", got, v1.ID)
	}
	for _, r := range h.Driver.Running() {
		if r.ReleaseID == v2.ID {
			t.Errorf("instance %s-%d of the cancelled release still runs", r.Service, r.Index)
		}
	}
	h.MustConsistent(t, "shop", "test")
	if n := len(h.Running(t, "shop")); n != 0 {
		t.Errorf("%d deployments left running", n)
	}
	h.MustDeploy(t, "shop", "test", v3)
	if _, err := h.O.Cancel(h.Ctx, "shop", "test", "ops"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("cancel with nothing running: %v, want not found", err)
	}
}

// TestCancelAbortsAPausedRollout: cancelling a paused rollout aborts it as
// `gantry continue --abort` does.
func TestCancelAbortsAPausedRollout(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	before := h.Serving(t, "shop", "test")
	two := 2
	d, err := h.O.DeployOrdered(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, &two, "", nil)
	if err != nil || d.State != gantry.DeploymentPaused {
		t.Fatalf("deploy --pause-after 2: %v, %+v", err, d)
	}
	if _, err := h.O.Cancel(h.Ctx, "shop", "test", "ops"); err != nil {
		t.Fatalf("cancel a paused rollout: %v", err)
	}
	h.MustNoLock(t, "shop", "test")
	if n := len(h.Running(t, "shop")); n != 0 {
		t.Errorf("%d deployments left running or paused", n)
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("after cancel the router serves %v, want %v as before", got, before)
	}
	h.MustConsistent(t, "shop", "test")
}

// TestRenameNamesItsDeploymentInEveryLock: a rename locks its old name, its
// new name and the name it displaces to; each lock names the deployment, so
// that unlock refuses every one of them while it runs and cancel finds it
// from any.
func TestRenameNamesItsDeploymentInEveryLock(t *testing.T) {
	h := NewHarness(t, Options{})
	app := App{Name: "shop", Services: []Svc{{Name: "web"}}, Envs: []Env{{Name: "test"}, {Name: "testnew"}}}
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "testnew", v1)

	reached, release := make(chan int64), make(chan struct{})
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "rename" && s.State == gantry.StepStarted && d.Kind == gantry.KindRename {
			h.SetOnStep(nil)
			reached <- d.ID
			<-release
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "testnew", New: "test", DisplaceTo: "testold", Actor: "dev"}, nil)
		done <- err
	}()
	var id int64
	select {
	case id = <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the rename never reached its rename step")
	}
	for _, env := range []string{"test", "testnew", "testold"} {
		if l, err := h.Store.FindLock(h.Ctx, "shop", env); err != nil || l.DeploymentID != id {
			t.Errorf("lock of %s during rename #%d: %+v %v, want it naming #%d", env, id, l, err, id)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("rename: %v", err)
	}
	for _, env := range []string{"test", "testnew", "testold"} {
		h.MustNoLock(t, "shop", env)
	}
}
