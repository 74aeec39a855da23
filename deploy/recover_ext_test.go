package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func TestRecoverAfterCrashBeforeSwitch(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	blue := h.Serving(t, "shop", "test")
	h.CrashAt(t, "switch", gantry.StepStarted, func() {
		h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	})
	if e := h.MustEnv(t, "shop", "test"); e.Slots[gantry.SlotGreen].State != gantry.SlotStarting || len(e.Slots[gantry.SlotGreen].Instances) != 1 {
		t.Fatalf("at the crash green is %s with %d instances, want starting with 1", e.Slots[gantry.SlotGreen].State, len(e.Slots[gantry.SlotGreen].Instances))
	}
	o := h.NewOrchestrator()
	if err := o.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	e := h.MustEnv(t, "shop", "test")
	if e.Active != gantry.SlotBlue || e.Slots[gantry.SlotGreen].State != gantry.SlotStopped || len(e.Slots[gantry.SlotGreen].Instances) != 0 {
		t.Errorf("after recovery: active %s, green %s with %d instances; want blue, green stopped and empty", e.Active, e.Slots[gantry.SlotGreen].State, len(e.Slots[gantry.SlotGreen].Instances))
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(blue, ",") {
		t.Errorf("after recovery the router serves %v, want blue %v", got, blue)
	}
	ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "test", Limit: 1})
	if ds[0].State != gantry.DeploymentRecovered || !strings.Contains(ds[0].Error, "serving from slot blue") {
		t.Errorf("interrupted deployment: %s %q, want recovered, saying blue serves", ds[0].State, ds[0].Error)
	}
	h.MustNoLock(t, "shop", "test")
	h.MustConsistent(t, "shop", "test")
	// The recovered environment takes a deploy again.
	h.O = o
	h.MustDeploy(t, "shop", "test", v2)
	h.MustConsistent(t, "shop", "test")
}

func TestRecoverAfterCrashAfterSwitch(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.CrashAt(t, "switch", gantry.StepDone, func() {
		h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	})
	if e := h.MustEnv(t, "shop", "test"); e.Active != gantry.SlotBlue {
		t.Fatalf("at the crash the record says %s is active, want blue (the switch was not recorded yet)", e.Active)
	}
	if err := h.NewOrchestrator().Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	e := h.MustEnv(t, "shop", "test")
	if e.Active != gantry.SlotGreen || e.Slots[gantry.SlotBlue].State != gantry.SlotStandby {
		t.Errorf("after recovery: active %s, blue %s; want green (as routed), blue standby", e.Active, e.Slots[gantry.SlotBlue].State)
	}
	h.MustNoLock(t, "shop", "test")
	h.MustConsistent(t, "shop", "test")
}

func TestRecoverReattachesAndReroutes(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2)
	// The active instance dies while the server is down; the warm one lives.
	for _, inst := range h.MustEnv(t, "shop", "test").ActiveSlot().Instances {
		h.Driver.Kill(inst.Handle)
	}
	h.Driver.ResetCalls()
	if err := h.NewOrchestrator().Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Driver.Calls("attach")); n != 2 {
		t.Errorf("recovery attached %d instances, want 2", n)
	}
	if n := len(h.Driver.Calls("start")); n != 0 {
		t.Errorf("recovery started %d instances, want none (it re-attaches)", n)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("after recovery %s is active, want the live %s", got, v1.ID)
	}
	h.MustConsistent(t, "shop", "test")
}

func TestReapStandby(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2)
	if err := h.O.ReapStandby(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.MustEnv(t, "shop", "test").Slots[gantry.SlotBlue].Instances); n != 1 {
		t.Fatalf("reaped while warm: blue has %d instances, want 1", n)
	}
	h.Clock.Advance(gantry.DefaultKeepWarm + time.Second)
	if err := h.Store.AcquireLock(h.Ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "manual", Since: T0}); err != nil {
		t.Fatal(err)
	}
	if err := h.O.ReapStandby(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.MustEnv(t, "shop", "test").Slots[gantry.SlotBlue].Instances); n != 1 {
		t.Errorf("reaped a locked environment: blue has %d instances, want 1", n)
	}
	if err := h.Store.ReleaseLock(h.Ctx, "shop", "test", "alice", false); err != nil {
		t.Fatal(err)
	}
	h.Driver.ResetCalls()
	if err := h.O.ReapStandby(h.Ctx); err != nil {
		t.Fatal(err)
	}
	e := h.MustEnv(t, "shop", "test")
	if b := e.Slots[gantry.SlotBlue]; b.State != gantry.SlotStopped || len(b.Instances) != 0 {
		t.Errorf("after keep-warm: blue %s with %d instances, want stopped and empty", b.State, len(b.Instances))
	}
	if n := len(h.Driver.Calls("stop")); n != 1 {
		t.Errorf("reaper stopped %d instances, want 1", n)
	}
	h.MustNoLock(t, "shop", "test")
	h.MustConsistent(t, "shop", "test")
	// With nothing warm a rollback is cold.
	d, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
	if err != nil || d.Strategy == "flip" || d.ReleaseID != v1.ID {
		t.Errorf("rollback after the reap: %+v %v, want a cold redeploy of v1", d, err)
	}
}

// watched is an app whose test environment watches a switch; verify runs
// first, so the router knows the new targets' counters before the switch.
func watched() App {
	app := Simple("shop")
	app.Verify = true
	app.Envs[0].Watch = "{window: 2s, max_error_rate: 0.05, min_requests: 10}"
	return app
}

func TestWatchRollsBackAutomatically(t *testing.T) {
	h := NewHarness(t, Options{})
	app := watched()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	blue := h.Serving(t, "shop", "test")
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "watch" && s.State == gantry.StepStarted {
			for _, a := range h.Mem.Serving("shop/test") {
				h.Mem.AddTraffic(a, 100, 40, 100*time.Millisecond)
			}
		}
	})
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	h.SetOnStep(nil)
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(gantry.ErrorMessage(err), "rolled back automatically") {
		t.Fatalf("deploy of a release failing 40%%: got %v, want EFAILED rolled back automatically", err)
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(blue, ",") {
		t.Errorf("after the automatic rollback the router serves %v, want blue %v", got, blue)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("active %s, want %s", got, v1.ID)
	}
	if !strings.Contains(strings.Join(h.Steps(t, d.ID), ","), "watch,auto-rollback") {
		t.Errorf("journal %v lacks watch, auto-rollback", h.Steps(t, d.ID))
	}
	h.MustConsistent(t, "shop", "test")
	h.MustNoLock(t, "shop", "test")
}

func TestWatchPasses(t *testing.T) {
	h := NewHarness(t, Options{})
	app := watched()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "watch" {
			if s.State == gantry.StepStarted {
				h.Clock.SetTick(time.Second) // the window passes in two readings
			} else {
				h.Clock.SetTick(0)
			}
		}
	})
	d := h.MustDeploy(t, "shop", "test", v2)
	h.SetOnStep(nil)
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("active %s, want %s", got, v2.ID)
	}
	if !strings.Contains(strings.Join(h.Steps(t, d.ID), ","), "switch,watch") {
		t.Errorf("journal %v lacks the watch", h.Steps(t, d.ID))
	}
	h.MustConsistent(t, "shop", "test")
}
