package deploy_test

import (
	"testing"

	"github.com/gantry-dev/gantry"
)

// More failures TestModel found, each pinned so that it stays fixed.

// A restart in place interrupted between stopping the old instances and
// starting the new ones left nothing running and the route holding every
// request: recovery starts the active slot again and lets the route go.
func TestFoundRecoverAfterAnInterruptedRestart(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Envs[0].Strategy = gantry.StrategyRestart
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.CrashAt(t, "start", gantry.StepStarted, func() {
		h.O.Deploy(h.Ctx, dreq("test", v2), nil)
	})
	h.O = h.NewOrchestrator()
	if err := h.O.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Driver.RunningIn("shop", "test")); n == 0 {
		t.Fatal("after recovery nothing runs on test")
	}
	if st, _ := h.Mem.Route("shop/test"); st.Paused {
		t.Error("after recovery the route still holds requests")
	}
	h.MustConsistent(t, "shop", "test")
	h.MustNoLock(t, "shop", "test")
}

// A forced contract while the release serving traffic still needs the old
// schema removed it from under that release: force overrides only a warm
// standby, never what serves.
func TestFoundForcedContractSparesTheServingRelease(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01", "02"}})
	h.MustDeploy(t, "shop", "test", v1)
	// A paused rollout of 1.1.0: 02 is expanded, 1.0.0 still serves.
	zero := 0
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev", PauseAfter: &zero}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := h.O.Contract(h.Ctx, "shop", "test", true)
	if gantry.ErrorCode(err) != gantry.EPOLICY {
		t.Errorf("forced contract under the serving release: got %v, want EPOLICY from the schema gate", err)
	}
	if err := h.DB.Compatible(h.DBURL("shop", "test"), []string{"01"}); err != nil {
		t.Errorf("1.0.0 serves on a schema it cannot use after a forced contract: %v", err)
	}
}
