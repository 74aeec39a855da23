package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

func TestDeployBlueGreen(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Services[0].Instances = 2
	app.Verify = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})

	d1 := h.MustDeploy(t, "shop", "test", v1)
	if d1.State != gantry.DeploymentSucceeded || d1.Slot != gantry.SlotBlue {
		t.Fatalf("first deploy: state %s slot %s, want succeeded on blue", d1.State, d1.Slot)
	}
	e := h.MustEnv(t, "shop", "test")
	blue := WebAddrs(e.Slots[gantry.SlotBlue])
	if len(blue) != 2 {
		t.Fatalf("blue has %d web instances, want 2", len(blue))
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(blue, ",") {
		t.Errorf("router serves %v, want blue %v", got, blue)
	}
	if body := h.Body("http://" + blue[0] + "/"); !strings.Contains(body, "release "+v1.ID+" slot blue") {
		t.Errorf("blue answers %q, want release %s", body, v1.ID)
	}

	h.Driver.ResetCalls()
	h.Mem.ResetCalls()
	d2 := h.MustDeploy(t, "shop", "test", v2)
	if d2.Slot != gantry.SlotGreen || d2.FromRelease != v1.ID {
		t.Errorf("second deploy: slot %s from %s, want green from %s", d2.Slot, d2.FromRelease, v1.ID)
	}
	e = h.MustEnv(t, "shop", "test")
	if e.Active != gantry.SlotGreen || e.Slots[gantry.SlotBlue].State != gantry.SlotStandby || !e.Slots[gantry.SlotGreen].Verified {
		t.Errorf("after the second deploy: active %s, blue %s, green verified %t; want green active, blue standby, verified",
			e.Active, e.Slots[gantry.SlotBlue].State, e.Slots[gantry.SlotGreen].Verified)
	}
	if !e.Slots[gantry.SlotBlue].WarmUntil.Equal(e.Slots[gantry.SlotBlue].Since.Add(gantry.DefaultKeepWarm)) {
		t.Errorf("blue warm until %s, want since + keep_warm", e.Slots[gantry.SlotBlue].WarmUntil)
	}
	h.MustConsistent(t, "shop", "test")
	// The driver was asked to start two instances on green and to stop nothing.
	var got []string
	for _, c := range h.Driver.Calls("start", "stop") {
		got = append(got, c.Op+" "+c.Slot+" "+c.Service)
	}
	if want := "start green web,start green web"; strings.Join(got, ",") != want {
		t.Errorf("driver calls: got %v, want %s", got, want)
	}
	var rcalls []string
	for _, c := range h.Mem.Calls() {
		rcalls = append(rcalls, c.Op)
	}
	if want := "set-preview,deploy,set-preview"; strings.Join(rcalls, ",") != want {
		t.Errorf("router calls: got %v, want %s", rcalls, want)
	}
	steps := strings.Join(h.Steps(t, d2.ID), ",")
	for _, s := range []string{"classify", "verify-artifacts", "start-group", "verify", "switch"} {
		if !strings.Contains(steps, s) {
			t.Errorf("journal %s lacks %s", steps, s)
		}
	}
	h.MustNoLock(t, "shop", "test")
}

func TestDeployFailingCandidateKeepsOldServing(t *testing.T) {
	for _, k := range []memdriver.Knobs{{FailStart: true}, {NeverHealthy: true, ExitAfter: 20 * time.Millisecond}} {
		h := NewHarness(t, Options{})
		app := Simple("shop")
		v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
		v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
		h.MustDeploy(t, "shop", "test", v1)
		before := h.Serving(t, "shop", "test")
		h.Driver.SetRelease(v2.ID, k)
		d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
		if err == nil || d.State != gantry.DeploymentFailed {
			t.Fatalf("deploy of a failing release: %v, state %v; want failed", err, d)
		}
		if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(before, ",") {
			t.Errorf("after a failed deploy the router serves %v, want %v", got, before)
		}
		e := h.MustEnv(t, "shop", "test")
		if e.Active != gantry.SlotBlue || e.Slots[gantry.SlotGreen].State != gantry.SlotStopped {
			t.Errorf("after a failed deploy: active %s, green %s; want blue, stopped", e.Active, e.Slots[gantry.SlotGreen].State)
		}
		h.MustConsistent(t, "shop", "test")
		h.MustNoLock(t, "shop", "test")
	}
}
