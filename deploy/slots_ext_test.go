package deploy_test

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// k8s is an app on the slot-switching runtime (the memdriver's Slots).
func k8s() App {
	app := Simple("shop")
	app.Services[0].Instances = 2
	app.Envs[0].Runtime = "kubernetes"
	return app
}

func slotOps(h *Harness) string {
	var ops []string
	for _, c := range h.Slots.Calls("start-slot", "switch", "stop-slot") {
		ops = append(ops, c.Op+" "+c.Slot)
	}
	return strings.Join(ops, ",")
}

func TestSlotDriverDeployAndRollback(t *testing.T) {
	h := NewHarness(t, Options{})
	app := k8s()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	d := h.MustDeploy(t, "shop", "test", v2)
	if got, want := slotOps(h), "start-slot blue,switch blue,start-slot green,switch green"; got != want {
		t.Errorf("slot calls: got %s, want %s", got, want)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotGreen {
		t.Errorf("the runtime routes to %q, want green", a)
	}
	if n := len(h.Mem.Calls()); n != 0 {
		t.Errorf("the router was called %d times; the runtime switches itself", n)
	}
	e := h.MustEnv(t, "shop", "test")
	if e.Active != gantry.SlotGreen || len(e.Slots[gantry.SlotGreen].Instances) != 2 || e.Slots[gantry.SlotBlue].State != gantry.SlotStandby {
		t.Errorf("record: active %s, green %d instances, blue %s", e.Active, len(e.Slots[gantry.SlotGreen].Instances), e.Slots[gantry.SlotBlue].State)
	}
	if !strings.Contains(strings.Join(h.Steps(t, d.ID), ","), "verify-artifacts,start,switch") {
		t.Errorf("journal: %v", h.Steps(t, d.ID))
	}
	h.Slots.ResetCalls()
	rb, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Strategy != "flip" || rb.ReleaseID != v1.ID {
		t.Errorf("rollback: %s to %s, want a flip to %s", rb.Strategy, rb.ReleaseID, v1.ID)
	}
	if got := slotOps(h); got != "switch blue" {
		t.Errorf("rollback's slot calls: %s, want switch blue", got)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotBlue {
		t.Errorf("after the rollback the runtime routes to %q, want blue", a)
	}
	// The standby's keep-warm ends: the reaper scales it down.
	h.Clock.Advance(gantry.DefaultKeepWarm + 1)
	if err := h.O.ReapStandby(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Slots.SlotInstances("shop", "test", gantry.SlotGreen)); n != 0 {
		t.Errorf("green after keep-warm: %d instances, want 0", n)
	}
	// A cold rollback to v2 starts green again.
	if d, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil); err != nil || d.Strategy == "flip" {
		t.Fatalf("cold rollback on the slot runtime: %+v %v", d, err)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotGreen {
		t.Errorf("after the cold rollback the runtime routes to %q, want green", a)
	}
}

func TestSlotDriverFailedStartAndRecover(t *testing.T) {
	h := NewHarness(t, Options{})
	app := k8s()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	tar := h.MustRelease(t, app, Rel{Version: "1.0.2"})
	h.MustDeploy(t, "shop", "test", v1)
	h.Slots.SetRelease(v2.ID, memKnobFailWeb)
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil); err == nil {
		t.Fatal("deploy of a release that does not start: got nil error")
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotBlue {
		t.Errorf("after a failed start the runtime routes to %q, want blue", a)
	}
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: tar.ID, Actor: "dev"}, nil); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("a tarball release on the slot runtime: got %v, want EINVALID", err)
	}
	h.Slots.ResetCalls()
	if err := h.NewOrchestrator().Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if c := h.Slots.Calls("active-slot"); len(c) != 1 {
		t.Errorf("recovery asked the runtime %d times for its active slot, want 1", len(c))
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("after recovery %s is active, want %s", got, v1.ID)
	}
	h.MustNoLock(t, "shop", "test")
}

// On the slot-switching runtime the engine is the same program: ordered
// options it cannot honour are refused, not ignored; the restart strategy
// is the runtime's rolling update of the active slot; a clone goes through
// the runtime's slots, not the router; the gates apply as anywhere.
func TestSlotDriverIsTheSameEngine(t *testing.T) {
	h := NewHarness(t, Options{})
	app := k8s()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	zero := 0
	for _, tc := range []struct {
		name string
		req  gantry.DeployRequest
		want string
	}{
		{"only", gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev", Only: "web"}, "--only"},
		{"pause-after", gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev", PauseAfter: &zero}, "--pause-after"},
		{"maintenance", gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev", Strategy: gantry.StrategyMaintenance}, "maintenance"},
	} {
		if _, err := h.O.Deploy(h.Ctx, tc.req, nil); gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), tc.want) {
			t.Errorf("%s on the slot runtime: got %v, want EINVALID naming %s", tc.name, err, tc.want)
		}
	}
	h.Slots.ResetCalls()
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev", Strategy: gantry.StrategyRestart}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := slotOps(h); got != "start-slot blue" {
		t.Errorf("restart's slot calls: %s, want one rolling update of the active slot (start-slot blue)", got)
	}
	if e := h.MustEnv(t, "shop", "test"); e.Active != gantry.SlotBlue || e.Slots[gantry.SlotBlue].ReleaseID != v2.ID {
		t.Errorf("after the restart: active %s running %s, want blue running %s", e.Active, e.Slots[gantry.SlotBlue].ReleaseID, v2.ID)
	}
	if !strings.Contains(strings.Join(h.Steps(t, d.ID), ","), "rolling-update") {
		t.Errorf("restart's journal: %v", h.Steps(t, d.ID))
	}
	h.Slots.ResetCalls()
	if _, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range h.Slots.Calls("start-slot", "switch") {
		if c.Env != "testnew" {
			t.Errorf("clone touched %s/%s", c.Env, c.Slot)
		}
	}
	if got := slotOps(h); got != "start-slot blue,switch blue" {
		t.Errorf("clone's slot calls: %s, want the new environment's slot started and switched", got)
	}
	if n := len(h.Mem.Calls()); n != 0 {
		t.Errorf("the router was called %d times; the runtime switches itself", n)
	}
}

// TestSlotDriverCloneAndRename: on a runtime that serves hosts itself, a
// clone gets a namespace of its own; a rename switches each environment
// under its new name (with its new hosts) before anything is released,
// then releases the old name's hosts and last the displaced environment's
// objects of the name; Gantry's router is not involved. A second clone
// numbers the namespace the renamed environment kept.
func TestSlotDriverCloneAndRename(t *testing.T) {
	h := NewHarness(t, Options{})
	app := k8s()
	app.Envs[1].Runtime = "kubernetes"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	if _, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	if ns := h.MustEnv(t, "shop", "testnew").Spec.Runtime.Namespace; ns != "shop-testnew" {
		t.Fatalf("the clone's namespace is %q, want shop-testnew (test's is shop-test)", ns)
	}
	h.MustDeploy(t, "shop", "testnew", v2)
	h.Slots.ResetCalls()
	if _, err := h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "testnew", New: "test", DisplaceTo: "testold", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range h.Slots.Calls("switch", "release-hosts") {
		got = append(got, strings.TrimSpace(c.Op+" "+c.Env+" "+c.Namespace+" "+c.Hosts))
	}
	want := []string{
		"switch testold shop-test testold.shop.localhost",
		"switch test shop-testnew test.shop.localhost",
		"release-hosts testnew shop-testnew",
		"release-hosts test shop-test",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rename's calls:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(h.Mem.Calls()); n != 0 {
		t.Errorf("the router was called %d times by the rename; the runtime serves the hosts", n)
	}
	if e := h.MustEnv(t, "shop", "test"); e.ActiveSlot() == nil || e.ActiveSlot().ReleaseID != v2.ID {
		t.Errorf("test after the rename does not serve %s: %+v", v2.ID, e.ActiveSlot())
	}
	if _, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	if ns := h.MustEnv(t, "shop", "testnew").Spec.Runtime.Namespace; ns != "shop-testnew-2" {
		t.Errorf("the second clone's namespace is %q, want shop-testnew-2 (test kept shop-testnew)", ns)
	}
}
