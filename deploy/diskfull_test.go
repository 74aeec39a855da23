package deploy_test

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/deploy"
)

// fakeFullStore is a fake: a gantry.Store whose writes fail as a full
// disk's do (the coded disk-full error around ENOSPC) while full is set.
// Reads go on, as they do on a full disk.
type fakeFullStore struct {
	gantry.Store
	full atomic.Bool
}

func (s *fakeFullStore) refuse(what string) error {
	if s.full.Load() {
		return gantry.DiskFullError("the state database ("+what+")", syscall.ENOSPC)
	}
	return nil
}

func (s *fakeFullStore) PutEnvironment(ctx context.Context, env *gantry.Environment) error {
	if err := s.refuse("environment"); err != nil {
		return err
	}
	return s.Store.PutEnvironment(ctx, env)
}

func (s *fakeFullStore) CreateDeployment(ctx context.Context, d *gantry.Deployment) error {
	if err := s.refuse("deployment"); err != nil {
		return err
	}
	return s.Store.CreateDeployment(ctx, d)
}

func (s *fakeFullStore) StartDeployment(ctx context.Context, d *gantry.Deployment) error {
	if err := s.refuse("deployment"); err != nil {
		return err
	}
	return s.Store.StartDeployment(ctx, d)
}

func (s *fakeFullStore) UpdateDeployment(ctx context.Context, d *gantry.Deployment) error {
	if err := s.refuse("deployment"); err != nil {
		return err
	}
	return s.Store.UpdateDeployment(ctx, d)
}

func (s *fakeFullStore) AppendStep(ctx context.Context, id int64, st *gantry.Step) error {
	if err := s.refuse("step"); err != nil {
		return err
	}
	return s.Store.AppendStep(ctx, id, st)
}

func (s *fakeFullStore) UpdateStep(ctx context.Context, id int64, st *gantry.Step) error {
	if err := s.refuse("step"); err != nil {
		return err
	}
	return s.Store.UpdateStep(ctx, id, st)
}

func (s *fakeFullStore) AcquireLock(ctx context.Context, l *gantry.Lock) error {
	if err := s.refuse("lock"); err != nil {
		return err
	}
	return s.Store.AcquireLock(ctx, l)
}

func (s *fakeFullStore) ReleaseLock(ctx context.Context, app, env, holder string, force bool) error {
	if err := s.refuse("lock"); err != nil {
		return err
	}
	return s.Store.ReleaseLock(ctx, app, env, holder, force)
}

// fullDiskOrchestrator returns an orchestrator of h whose store is the
// fake full disk, retrying refused records only briefly.
func fullDiskOrchestrator(h *Harness) (*deploy.Orchestrator, *fakeFullStore) {
	fs := &fakeFullStore{Store: h.Store}
	o := h.NewOrchestrator()
	o.Store = fs
	o.RecordRetry = 100 * time.Millisecond
	return o, fs
}

// TestDiskFullAfterSwitchKeepsServing fills the disk once the switch step
// is journaled, so that the switch moves the traffic but its result cannot
// be recorded (invariant 12): the candidate that now serves must not be
// stopped as if the switch had failed; the deployment ends saying the disk
// is full and keeps its lock; once space returns, Settle makes the record
// follow the router, records the outcome and frees the lock.
func TestDiskFullAfterSwitchKeepsServing(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	o, fs := fullDiskOrchestrator(h)
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "switch" && s.State == gantry.StepStarted {
			fs.full.Store(true)
		}
	})
	_, err := o.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	h.SetOnStep(nil)
	if gantry.ErrorCode(err) != gantry.EUNAVAILABLE || !strings.Contains(gantry.ErrorMessage(err), "disk of the data directory is full") {
		t.Fatalf("deploy on a disk that filled at the switch: %v; want EUNAVAILABLE saying the disk is full", err)
	}
	green := h.MustEnv(t, "shop", "test").Slots[gantry.SlotGreen]
	served := h.Serving(t, "shop", "test")
	live := map[string]bool{}
	for _, r := range h.Driver.RunningIn("shop", "test") {
		live[r.Addr] = true
	}
	if len(served) == 0 {
		t.Fatal("nothing serves after the switch")
	}
	for _, a := range served {
		if !live[a] {
			t.Fatalf("the router serves %s, which no longer runs: the candidate that took the traffic was stopped (served %v, green %+v)", a, served, green.Instances)
		}
	}
	if l, err := h.Store.FindLock(h.Ctx, "shop", "test"); err != nil {
		t.Fatalf("while the disk is full the lock must stay (the record may not say what serves): %v", err)
	} else if l.Holder != "dev" {
		t.Fatalf("lock held by %s, want dev", l.Holder)
	}
	// A second Settle while the disk is still full changes nothing.
	if n := o.Settle(h.Ctx); n != 1 {
		t.Fatalf("Settle on a full disk: %d unsettled, want 1", n)
	}
	fs.full.Store(false)
	if n := o.Settle(h.Ctx); n != 0 {
		t.Fatalf("Settle once space returned: %d still unsettled, want 0", n)
	}
	h.MustNoLock(t, "shop", "test")
	h.MustConsistent(t, "shop", "test")
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("after settling the record says %s is active, want %s (what the router serves)", got, v2.ID)
	}
	if rs := h.Running(t, "shop"); len(rs) != 0 {
		t.Errorf("deployment #%d left %s after settling", rs[0].ID, rs[0].State)
	}
	ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "test", Limit: 1})
	if steps := h.Steps(t, ds[0].ID); !contains(steps, "settle") {
		t.Errorf("journal %v does not say the deployment was settled", steps)
	}
	h.O = o
	h.MustDeploy(t, "shop", "test", v1)
	h.MustConsistent(t, "shop", "test")
}

// TestDiskFullBeforeSwitchFreesLock fills the disk while the candidate
// starts: the rollout fails, the old slot keeps serving, and once space
// returns the deployment is closed and its lock freed without a restart.
func TestDiskFullBeforeSwitchFreesLock(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	before := h.Serving(t, "shop", "test")
	o, fs := fullDiskOrchestrator(h)
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "start-group" && s.State == gantry.StepStarted {
			fs.full.Store(true)
		}
	})
	_, err := o.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	h.SetOnStep(nil)
	if err == nil || !gantry.IsDiskFull(err) && !strings.Contains(gantry.ErrorMessage(err), "disk") {
		t.Fatalf("deploy on a full disk: %v, want the disk-full error", err)
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("the router serves %v, want the old slot %v", got, before)
	}
	fs.full.Store(false)
	if n := o.Settle(h.Ctx); n != 0 {
		t.Fatalf("Settle once space returned: %d unsettled", n)
	}
	h.MustNoLock(t, "shop", "test")
	h.MustConsistent(t, "shop", "test")
	if rs := h.Running(t, "shop"); len(rs) != 0 {
		t.Errorf("deployment #%d left %s", rs[0].ID, rs[0].State)
	}
}

// TestRecoverReleasesLockOfFinishedDeployment is a server killed after a
// deployment's outcome was recorded and before it released its lock: at
// the next start the lock is released and the deployment's journal says
// so; a paused deployment's lock and a manual lock stay.
func TestRecoverReleasesLockOfFinishedDeployment(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	reached := make(chan int64, 1)
	h.O.OnFinish = func(d *gantry.Deployment) {
		reached <- d.ID
		select {} // the process dies here, its lock still held
	}
	go h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	var id int64
	select {
	case id = <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the deployment never finished")
	}
	d, err := h.Store.FindDeployment(h.Ctx, id)
	if err != nil || d.State != gantry.DeploymentSucceeded {
		t.Fatalf("deployment #%d: %v %v, want succeeded", id, d, err)
	}
	if _, err := h.Store.FindLock(h.Ctx, "shop", "test"); err != nil {
		t.Fatalf("at the crash the lock should still be held: %v", err)
	}
	if err := h.Store.AcquireLock(h.Ctx, &gantry.Lock{App: "shop", Env: "manual", Holder: "ops", Operation: "manual", Since: T0}); err != nil {
		t.Fatal(err)
	}
	o := h.NewOrchestrator()
	if err := o.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	h.MustNoLock(t, "shop", "test")
	if _, err := h.Store.FindLock(h.Ctx, "shop", "manual"); err != nil {
		t.Errorf("a manual lock was released by recovery: %v", err)
	}
	if steps := h.Steps(t, id); !contains(steps, "lock-released") {
		t.Errorf("journal %v does not say the lock was released", steps)
	}
	h.O = o
	h.MustDeploy(t, "shop", "test", v1)
}

// TestRecoverOnFullDiskSettlesLater: a server restarted after a crash on a
// disk that is still full cannot close the interrupted deployment; once
// space returns it does, and frees the lock, without another restart.
func TestRecoverOnFullDiskSettlesLater(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.CrashAt(t, "switch", gantry.StepDone, func() {
		h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	})
	o, fs := fullDiskOrchestrator(h)
	fs.full.Store(true)
	if err := o.Recover(h.Ctx); !gantry.IsDiskFull(err) {
		t.Fatalf("Recover on a full disk: %v, want the disk-full error", err)
	}
	if _, err := h.Store.FindLock(h.Ctx, "shop", "test"); err != nil {
		t.Fatalf("the lock went although nothing could be written: %v", err)
	}
	fs.full.Store(false)
	if n := o.Settle(h.Ctx); n != 0 {
		t.Fatalf("Settle once space returned: %d unsettled", n)
	}
	h.MustNoLock(t, "shop", "test")
	h.MustConsistent(t, "shop", "test")
	if rs := h.Running(t, "shop"); len(rs) != 0 {
		t.Errorf("deployment #%d left %s", rs[0].ID, rs[0].State)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("the record says %s is active, want %s (what the router serves)", got, v2.ID)
	}
}
