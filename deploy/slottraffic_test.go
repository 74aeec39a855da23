package deploy_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// previewSlots is the memdriver's slot runtime with a preview: a fake of
// the Kubernetes driver's (which goes through the API server's service
// proxy and is tested against a real one in driver/kubernetes), made of a
// real reverse proxy on 127.0.0.1 to the slot's first instance.
type previewSlots struct {
	*memdriver.Slots
	opened, closed atomic.Int32
}

var _ gantry.SlotPreviewer = (*previewSlots)(nil)

func (p *previewSlots) OpenPreview(ctx context.Context, ref gantry.SlotRef) (*gantry.SlotPreview, error) {
	insts := p.SlotInstances(ref.App, ref.Env, ref.Slot)
	if len(insts) == 0 {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "slot %s runs nothing", ref.Slot)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: insts[0].Addr})}
	go func() { _ = srv.Serve(ln) }()
	p.opened.Add(1)
	return &gantry.SlotPreview{URL: "http://" + ln.Addr().String(), Via: "the test's preview of slot " + ref.Slot, Close: func() error {
		p.closed.Add(1)
		return srv.Close()
	}}, nil
}

// TestSlotDriverBehindRouter is runtime.traffic: router on the slot
// runtime: the verify checks go to the candidate's instances through the
// router (the memdriver's instances answer real HTTP), the router switches
// to the candidate's instances and the runtime's switch follows; a failing
// check stops the rollout before either switch, and the candidate is
// scaled down. The restart strategy, whose rolling update would replace
// the pods the router targets, is refused.
func TestSlotDriverBehindRouter(t *testing.T) {
	h := NewHarness(t, Options{})
	app := k8s()
	app.Verify = true
	app.Envs[0].Runtime = "kubernetes, traffic: router"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	v3 := h.MustRelease(t, app, Rel{Version: "1.0.2", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	d := h.MustDeploy(t, "shop", "test", v2)
	if got, want := slotOps(h), "start-slot blue,switch blue,start-slot green,switch green"; got != want {
		t.Errorf("slot calls: got %s, want %s", got, want)
	}
	deploys := h.Mem.Calls("deploy")
	green := h.MustEnv(t, "shop", "test").Slots[gantry.SlotGreen]
	if len(deploys) != 2 || !sameAddrs(deploys[1].Targets, green.Instances) {
		t.Fatalf("router deploys %+v, want 2, the second to green's instances %+v", deploys, green.Instances)
	}
	if v := strings.Join(stepDetails(t, h, d.ID, "verify"), " | "); !strings.Contains(v, "passed: GET /") {
		t.Errorf("verify step: %q, want passed", v)
	}
	if s := strings.Join(stepDetails(t, h, d.ID, "switch"), " | "); !strings.Contains(s, "Gantry's router") {
		t.Errorf("switch step: %q, want through Gantry's router", s)
	}

	h.Slots.ResetCalls()
	h.Slots.SetRelease(v3.ID, memdriver.Knobs{Answer500: true})
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v3.ID, Actor: "dev"}, nil)
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(gantry.ErrorMessage(err), "verify check 1 failed") {
		t.Fatalf("deploy of a release failing its check: %v, want EFAILED naming the check", err)
	}
	if got, want := slotOps(h), "start-slot blue,stop-slot blue"; got != want {
		t.Errorf("slot calls of the failed deploy: got %s, want %s", got, want)
	}
	if n := len(h.Mem.Calls("deploy")); n != 2 {
		t.Errorf("the router was switched %d times, want 2 (not to the failed candidate)", n)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotGreen {
		t.Errorf("after a failed check the runtime routes to %q, want green", a)
	}
	if e := h.MustEnv(t, "shop", "test"); e.Active != gantry.SlotGreen || e.Slots[gantry.SlotGreen].ReleaseID != v2.ID {
		t.Errorf("record after the failed check: active %s", e.Active)
	}

	_, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Actor: "dev", Strategy: gantry.StrategyRestart}, nil)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "traffic: router") {
		t.Errorf("restart strategy behind the router: %v, want EINVALID", err)
	}
}

// TestSlotDriverVerifyThroughPreview is runtime.traffic: cluster on a slot
// runtime that opens a preview (Kubernetes: the API server's service
// proxy): an http check and a command check (curl of $GANTRY_URL) reach
// the candidate through it before the switch, and the preview is closed
// after; a failing check stops the rollout: no switch, the candidate is
// scaled down, the active slot keeps serving. The watch, which has no
// figures per slot there, is journaled as not run.
func TestSlotDriverVerifyThroughPreview(t *testing.T) {
	h := NewHarness(t, Options{})
	pv := &previewSlots{Slots: h.Slots}
	h.O.Drivers["kubernetes"] = pv
	app := k8s()
	app.Envs[0].Watch = "{window: 1m}"
	app.Extra = "verify:\n  - http: {path: /, status: 200, contains: release}\n  - command: curl -fsS \"$GANTRY_URL/\" | grep release\n"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	d := h.MustDeploy(t, "shop", "test", v1)
	v := strings.Join(stepDetails(t, h, d.ID, "verify"), " | ")
	if !strings.Contains(v, "passed: GET /; curl") || !strings.Contains(v, "via the test's preview of slot blue") {
		t.Errorf("verify step: %q, want both checks passed through the preview of blue", v)
	}
	// Without Gantry's router in front there are no per-slot figures: the
	// journal says the watch did not run, and why.
	if w := strings.Join(stepDetails(t, h, d.ID, "watch"), " | "); !strings.Contains(w, "not run") || !strings.Contains(w, "traffic: router") {
		t.Errorf("watch step: %q, want not run, pointing to runtime.traffic: router", w)
	}
	if pv.opened.Load() != 1 || pv.closed.Load() != 1 {
		t.Errorf("previews opened %d, closed %d; want 1 and 1", pv.opened.Load(), pv.closed.Load())
	}

	h.Slots.ResetCalls()
	h.Slots.SetRelease(v2.ID, memdriver.Knobs{Answer500: true})
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(gantry.ErrorMessage(err), "verify check 1 failed") {
		t.Fatalf("deploy of a release failing its check: %v, want EFAILED naming the check", err)
	}
	if got, want := slotOps(h), "start-slot green,stop-slot green"; got != want {
		t.Errorf("slot calls of the failed deploy: got %s, want %s (no switch)", got, want)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotBlue {
		t.Errorf("after a failed check the runtime routes to %q, want blue", a)
	}
	if pv.closed.Load() != 2 {
		t.Errorf("the failed deploy's preview was not closed (%d closed)", pv.closed.Load())
	}
}

// failSwitch is the memdriver's slot runtime whose own switch fails while
// fail is set.
type failSwitch struct {
	*memdriver.Slots
	fail atomic.Bool
}

func (f *failSwitch) Switch(ctx context.Context, ref gantry.SlotRef) error {
	if f.fail.Load() {
		return gantry.Errorf(gantry.EUNAVAILABLE, "the API server did not answer")
	}
	return f.Slots.Switch(ctx, ref)
}

// routeTargets is what the router sends the environment's route to.
func routeTargets(t *testing.T, h *Harness) []string {
	t.Helper()
	sts, err := h.Router.Status(h.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.Route.Name == gantry.RouteName("shop", "test") {
			var out []string
			for _, ts := range st.Active {
				out = append(out, ts.Addr)
			}
			return out
		}
	}
	return nil
}

// TestSlotDriverBehindRouterKeepsThemAgreed: with Gantry's router in
// front, the router and the runtime never stay apart on which slot serves.
// When the runtime's switch fails after the router's, the router is put
// back; when they disagree after a crash between the two, recovery makes
// the runtime follow the router, which is what serves.
func TestSlotDriverBehindRouterKeepsThemAgreed(t *testing.T) {
	h := NewHarness(t, Options{})
	fs := &failSwitch{Slots: h.Slots}
	h.O.Drivers["kubernetes"] = fs
	app := k8s()
	app.Envs[0].Runtime = "kubernetes, traffic: router"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	blue := h.MustEnv(t, "shop", "test").Slots[gantry.SlotBlue]

	fs.fail.Store(true)
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	if err == nil || !strings.Contains(gantry.ErrorMessage(err), "router was put back") {
		t.Fatalf("deploy whose runtime switch fails: %v, want an error saying the router was put back", err)
	}
	if got := routeTargets(t, h); !sameAddrs(got, blue.Instances) {
		t.Errorf("after the runtime's switch failed the router sends to %v, want blue's %+v", got, blue.Instances)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotBlue {
		t.Errorf("the runtime routes to %q, want blue", a)
	}

	fs.fail.Store(false)
	h.MustDeploy(t, "shop", "test", v2)
	green := h.MustEnv(t, "shop", "test").Slots[gantry.SlotGreen]
	// What a crash between the router's switch and the runtime's leaves.
	rt := h.MustEnv(t, "shop", "test").Spec.Runtime
	if err := h.Slots.Switch(h.Ctx, gantry.SlotRef{App: "shop", Env: "test", Slot: gantry.SlotBlue, Runtime: rt}); err != nil {
		t.Fatal(err)
	}
	o := h.NewOrchestrator()
	o.Drivers["kubernetes"] = fs
	if err := o.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotGreen {
		t.Errorf("after recovery the runtime routes to %q, want green, which the router serves", a)
	}
	if e := h.MustEnv(t, "shop", "test"); e.Active != gantry.SlotGreen {
		t.Errorf("after recovery the record's active slot is %s, want green", e.Active)
	}
	if got := routeTargets(t, h); !sameAddrs(got, green.Instances) {
		t.Errorf("after recovery the router sends to %v, want green's %+v", got, green.Instances)
	}
}

func sameAddrs(targets []string, insts []gantry.Instance) bool {
	if len(targets) != len(insts) || len(insts) == 0 {
		return false
	}
	for i, inst := range insts {
		if targets[i] != inst.Addr {
			return false
		}
	}
	return true
}

// failStop is the slot runtime whose StopSlot fails while fail is set (the
// API server does not answer).
type failStop struct {
	*memdriver.Slots
	fail atomic.Bool
}

func (f *failStop) StopSlot(ctx context.Context, ref gantry.SlotRef, remove bool) error {
	if f.fail.Load() {
		return gantry.Errorf(gantry.EUNAVAILABLE, "the API server did not answer")
	}
	return f.Slots.StopSlot(ctx, ref, remove)
}

// TestSlotDriverFailedCandidateStaysRecordedUntilStopped: a candidate that
// fails its check, and that the runtime then does not scale down, stays
// recorded as starting with its instances, as a failed candidate does
// through the router, so that recovery scales it down. Before, the slot
// runtime recorded it stopped whatever the runtime answered, and its pods
// ran on with nothing left to stop them.
func TestSlotDriverFailedCandidateStaysRecordedUntilStopped(t *testing.T) {
	h := NewHarness(t, Options{})
	fs := &failStop{Slots: h.Slots}
	h.O.Drivers["kubernetes"] = fs
	app := k8s()
	app.Verify = true
	app.Envs[0].Runtime = "kubernetes, traffic: router"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	h.Slots.SetRelease(v2.ID, memdriver.Knobs{Answer500: true})
	fs.fail.Store(true)
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil); gantry.ErrorCode(err) != gantry.EFAILED {
		t.Fatalf("deploy of a release failing its check: %v, want EFAILED", err)
	}
	if g := h.MustEnv(t, "shop", "test").Slots[gantry.SlotGreen]; g.State != gantry.SlotStarting || len(g.Instances) == 0 {
		t.Errorf("green after a stop the runtime refused: %s with %d instances, want still starting with its instances", g.State, len(g.Instances))
	}

	fs.fail.Store(false)
	o := h.NewOrchestrator()
	o.Drivers["kubernetes"] = fs
	if err := o.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Slots.SlotInstances("shop", "test", gantry.SlotGreen)); n != 0 {
		t.Errorf("after recovery the runtime keeps %d instances of the failed candidate", n)
	}
	if e := h.MustEnv(t, "shop", "test"); e.Active != gantry.SlotBlue || e.Slots[gantry.SlotGreen].State != gantry.SlotStopped {
		t.Errorf("record after recovery: active %s, green %s; want blue, green stopped", e.Active, e.Slots[gantry.SlotGreen].State)
	}
}
