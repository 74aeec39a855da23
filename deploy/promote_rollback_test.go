package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func TestPromoteRunsTheSameRelease(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Envs[1].Approvals = 1
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	req := gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}
	_, err := h.O.Promote(h.Ctx, req, nil)
	if gantry.ErrorCode(err) != gantry.EPOLICY || !strings.Contains(gantry.ErrorMessage(err), "gantry approve prod") {
		t.Fatalf("promotion without approval: got %v, want EPOLICY saying how to approve", err)
	}
	if _, err := h.O.Approve(h.Ctx, gantry.ApproveRequest{App: "shop", Env: "prod", Release: v1.ID, Actor: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.O.Promote(h.Ctx, req, nil); gantry.ErrorCode(err) != gantry.EPOLICY {
		t.Errorf("promotion approved by the promoter only: got %v, want EPOLICY", err)
	}
	if _, err := h.O.Approve(h.Ctx, gantry.ApproveRequest{App: "shop", Env: "prod", Release: v1.ID, Actor: "qa"}); err != nil {
		t.Fatal(err)
	}
	d, err := h.O.Promote(h.Ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != gantry.KindPromote || d.FromEnv != "test" || d.ReleaseID != v1.ID {
		t.Errorf("promotion: kind %s from %s release %s, want promote from test of %s", d.Kind, d.FromEnv, d.ReleaseID, v1.ID)
	}
	if got := h.ActiveRelease(t, "shop", "prod"); got != v1.ID {
		t.Errorf("prod runs %s, want %s", got, v1.ID)
	}
	h.MustConsistent(t, "shop", "prod")
	if _, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "prod", To: "test", Actor: "dev"}, nil); gantry.ErrorCode(err) != gantry.EPOLICY {
		t.Errorf("promotion against promote_from: got %v, want EPOLICY", err)
	}
}

func TestRollbackWarmFlips(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	blue := WebAddrs(h.MustEnv(t, "shop", "test").Slots[gantry.SlotBlue])
	h.MustDeploy(t, "shop", "test", v2)
	h.Mem.ResetCalls()
	h.Driver.ResetCalls()
	d, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Strategy != "flip" || d.ReleaseID != v1.ID || d.FromRelease != v2.ID {
		t.Errorf("rollback: strategy %s to %s from %s, want a flip to %s from %s", d.Strategy, d.ReleaseID, d.FromRelease, v1.ID, v2.ID)
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(blue, ",") {
		t.Errorf("router serves %v, want blue %v again", got, blue)
	}
	if got := routerOps(h); got != "rollback" {
		t.Errorf("router calls: got %s, want one rollback", got)
	}
	if n := len(h.Driver.Calls("start")); n != 0 {
		t.Errorf("a warm rollback started %d instances, want none", n)
	}
	e := h.MustEnv(t, "shop", "test")
	if e.Active != gantry.SlotBlue || e.Slots[gantry.SlotGreen].State != gantry.SlotStandby {
		t.Errorf("after the flip: active %s, green %s; want blue active, green standby", e.Active, e.Slots[gantry.SlotGreen].State)
	}
	h.MustConsistent(t, "shop", "test")
	// Rolling back again flips forward to v2.
	if d, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil); err != nil || d.ReleaseID != v2.ID {
		t.Errorf("second rollback: %v %v, want a flip to v2", d, err)
	}
	h.MustNoLock(t, "shop", "test")
}

func TestRollbackColdRedeploys(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Envs[0].KeepWarm = "0s"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	v3 := h.MustRelease(t, app, Rel{Version: "1.0.2"})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2)
	if e := h.MustEnv(t, "shop", "test"); len(e.Slots[gantry.SlotBlue].Instances) != 0 {
		t.Fatalf("keep_warm 0: blue still has %d instances", len(e.Slots[gantry.SlotBlue].Instances))
	}
	h.Driver.ResetCalls()
	d, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != gantry.KindRollback || d.Strategy == "flip" || d.ReleaseID != v1.ID {
		t.Errorf("cold rollback: kind %s strategy %s release %s, want a redeploy of %s", d.Kind, d.Strategy, d.ReleaseID, v1.ID)
	}
	if n := len(h.Driver.Calls("start")); n != 1 {
		t.Errorf("cold rollback started %d instances, want 1", n)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("active %s, want %s", got, v1.ID)
	}
	h.MustConsistent(t, "shop", "test")
	// --to a release never on the environment is a redeploy too.
	if d, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", To: v3.ID, Actor: "dev"}, nil); err != nil || d.ReleaseID != v3.ID {
		t.Errorf("rollback --to: %v %v", d, err)
	}
	if _, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", To: v3.ID, Actor: "dev"}, nil); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("rollback to the active release: got %v, want EINVALID", err)
	}
}

func TestLockConflictNamesTheHolder(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	if err := h.Store.AcquireLock(h.Ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "manual", Since: T0}); err != nil {
		t.Fatal(err)
	}
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Actor: "dev"}, nil)
	if gantry.ErrorCode(err) != gantry.ECONFLICT || !strings.Contains(gantry.ErrorMessage(err), "alice") {
		t.Fatalf("deploy onto a locked environment: got %v, want ECONFLICT naming alice", err)
	}
	if ds := h.Running(t, "shop"); len(ds) != 0 {
		t.Errorf("a refused deploy left %d deployments", len(ds))
	}
	if _, err := h.Store.FindEnvironment(h.Ctx, "shop", "test"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("a refused first deploy created the environment: %v", err)
	}
}

func TestQueueWithWait(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	if err := h.Store.AcquireLock(h.Ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "manual", Since: T0}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var events []gantry.Event
	go func() {
		_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Actor: "dev", Wait: true},
			func(e gantry.Event) { events = append(events, e) })
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for h.O.Queued("shop", "test") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the waiting deploy never queued")
		}
		time.Sleep(time.Millisecond)
	}
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "ops"}, nil)
	if gantry.ErrorCode(err) != gantry.ECONFLICT || !strings.Contains(gantry.ErrorMessage(err), "queued") {
		t.Errorf("deploy without --wait behind a queue: got %v, want ECONFLICT about the queue", err)
	}
	if err := h.Store.ReleaseLock(h.Ctx, "shop", "test", "alice", false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the queued deploy did not run after the lock was freed")
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("active %s, want the queued %s", got, v1.ID)
	}
	if len(events) == 0 || events[0].Step != "queue" {
		t.Errorf("first event: %+v, want a queue event", events)
	}
	if n := h.O.Queued("shop", "test"); n != 0 {
		t.Errorf("queue: %d left, want 0", n)
	}
}

func TestDeleteEnvironment(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	req := gantry.DeleteEnvironmentRequest{App: "shop", Env: "test", Actor: "dev"}
	if err := h.O.DeleteEnvironment(h.Ctx, req); gantry.ErrorCode(err) != gantry.EPOLICY {
		t.Fatalf("delete of a serving environment: got %v, want EPOLICY", err)
	}
	req.Force = true
	if err := h.O.DeleteEnvironment(h.Ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.FindEnvironment(h.Ctx, "shop", "test"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("environment after delete: %v, want ENOTFOUND", err)
	}
	if n := len(h.Driver.RunningIn("shop", "test")); n != 0 {
		t.Errorf("%d instances still run", n)
	}
	if _, ok := h.Mem.Route("shop/test"); ok {
		t.Error("the route is still there")
	}
	ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "test"})
	if len(ds) != 1 {
		t.Errorf("history: %d deployments, want the 1 kept", len(ds))
	}
	h.MustNoLock(t, "shop", "test")
}
