package deploy_test

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// ordered is an app with three order groups: a worker, an api, a web front.
func ordered(name string) App {
	return App{Name: name, Services: []Svc{{Name: "jobs", Worker: true, Order: 1}, {Name: "api", Order: 2}, {Name: "web", Order: 3}},
		Envs: []Env{{Name: "test"}, {Name: "prod", PromoteFrom: "test"}}}
}

func startOrder(h *Harness) string {
	var s []string
	for _, c := range h.Driver.Calls("start") {
		s = append(s, c.Service)
	}
	return strings.Join(s, ",")
}

func TestDeployOrderedPauseAndContinue(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	if got := startOrder(h); got != "jobs,api,web" {
		t.Errorf("start order: got %s, want jobs,api,web", got)
	}
	before := h.Serving(t, "shop", "test")
	h.Driver.ResetCalls()
	two := 2
	d, err := h.O.DeployOrdered(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, &two, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != gantry.DeploymentPaused {
		t.Fatalf("deploy --pause-after 2: state %s, want paused", d.State)
	}
	if got := startOrder(h); got != "jobs,api" {
		t.Errorf("started before the pause: %s, want jobs,api", got)
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("paused: router serves %v, want the old %v", got, before)
	}
	l, err := h.Store.FindLock(h.Ctx, "shop", "test")
	if err != nil {
		t.Fatalf("a paused deployment keeps the lock: %v", err)
	}
	if st, _ := h.Mem.Route("shop/test"); len(st.Preview) != 1 {
		t.Errorf("preview while paused: %v, want the candidate's api", st.Preview)
	}
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Actor: "ops"}, nil); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("deploy while paused: got %v, want ECONFLICT (lock held by %s)", err, l.Holder)
	}
	h.Driver.ResetCalls()
	d2, err := h.O.Continue(h.Ctx, gantry.ContinueRequest{App: "shop", Env: "test", Actor: "dev", Abort: false}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d2.ID != d.ID || d2.State != gantry.DeploymentSucceeded {
		t.Errorf("continue: #%d %s, want #%d succeeded", d2.ID, d2.State, d.ID)
	}
	if got := startOrder(h); got != "web" {
		t.Errorf("started by continue: %s, want web", got)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("active %s, want %s", got, v2.ID)
	}
	h.MustConsistent(t, "shop", "test")
	h.MustNoLock(t, "shop", "test")
	if _, err := h.O.Continue(h.Ctx, gantry.ContinueRequest{App: "shop", Env: "test", Actor: "dev", Abort: false}, nil); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("continue with nothing paused: got %v, want ENOTFOUND", err)
	}
}

func TestDeployOrderedAbort(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	one := 1
	if _, err := h.O.DeployOrdered(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, &one, "", nil); err != nil {
		t.Fatal(err)
	}
	d, err := h.O.Continue(h.Ctx, gantry.ContinueRequest{App: "shop", Env: "test", Actor: "dev", Abort: true}, nil)
	if gantry.ErrorCode(err) != gantry.EFAILED || d.State != gantry.DeploymentFailed {
		t.Fatalf("continue --abort: %v, state %v; want EFAILED, failed", err, d)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("after abort: active %s, want %s", got, v1.ID)
	}
	if e := h.MustEnv(t, "shop", "test"); len(e.Slots[gantry.SlotGreen].Instances) != 0 {
		t.Errorf("after abort the candidate has %d instances", len(e.Slots[gantry.SlotGreen].Instances))
	}
	if !strings.Contains(strings.Join(h.Steps(t, d.ID), ","), "abort,stop-candidate,stop-group") {
		t.Errorf("journal: %v, want abort then the groups stopped", h.Steps(t, d.ID))
	}
	h.MustConsistent(t, "shop", "test")
	h.MustNoLock(t, "shop", "test")
}

func TestDeployOnlyOneService(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.Driver.ResetCalls()
	if _, err := h.O.DeployOrdered(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil, "api", nil); err != nil {
		t.Fatal(err)
	}
	e := h.MustEnv(t, "shop", "test")
	for _, inst := range e.ActiveSlot().Instances {
		want := v1.ID
		if inst.Service == "api" {
			want = v2.ID
		}
		if inst.ReleaseID != want {
			t.Errorf("--only api: %s runs %s, want %s", inst.Service, inst.ReleaseID, want)
		}
	}
	h.MustConsistent(t, "shop", "test")
	if _, err := h.O.DeployOrdered(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil, "nope", nil); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("--only of an unknown service: got %v, want EINVALID", err)
	}
	seven := 7
	if _, err := h.O.DeployOrdered(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, &seven, "", nil); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("--pause-after of an unknown group: got %v, want EINVALID", err)
	}
}

func TestRestartByGroupsPutsBackOnFailure(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	app.Envs[0].Strategy = gantry.StrategyRestart
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.Driver.SetRelease(v2.ID, memKnobFailWeb)
	h.Driver.SetService("web", memKnobFailWeb)
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	if err == nil {
		t.Fatal("restart with a failing group: got nil error")
	}
	h.Driver.SetService("web", noKnobs)
	h.Driver.SetRelease(v2.ID, noKnobs)
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("after a failed restart: active %s, want %s", got, v1.ID)
	}
	h.MustNoLock(t, "shop", "test")
	// web failed to start with either release: the put-back of web fails too,
	// and the record must still say what runs.
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil); err != nil {
		t.Fatalf("restart once the knob is gone: %v", err)
	}
	h.MustConsistent(t, "shop", "test")
}
