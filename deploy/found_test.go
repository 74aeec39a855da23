package deploy_test

// Failures TestModel found in the engine, each pinned by a test of its own
// so that it stays fixed.

import (
	"testing"

	"github.com/gantry-dev/gantry"
)

// A crash during the first deploy to an environment, before its record was
// first saved (here: once the database was expanded), leaves a deployment
// that Recover never closes, and its lock held for good: Recover only looks
// at the deployments of environments that have a record.
func TestFoundRecoverClosesTheFirstDeployOfAnEnvironment(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01"}})
	h.CrashAt(t, "db-expand", gantry.StepDone, func() {
		h.O.Deploy(h.Ctx, dreq("test", v1), nil)
	})
	h.O = h.NewOrchestrator()
	if err := h.O.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range h.Running(t, "shop") {
		t.Errorf("after recovery deployment #%d (%s) is still %s", d.ID, d.Kind, d.State)
	}
	h.MustNoLock(t, "shop", "test")
	// And the environment takes a deploy again.
	if _, err := h.O.Deploy(h.Ctx, dreq("test", v1), nil); err != nil {
		t.Errorf("deploy after recovery: %v", err)
	}
}

// On a restart-strategy environment, a deploy that the database plan
// refuses stopped the running instances first: the environment then served
// nothing (the router kept addresses nobody listens on). Also pinned, with
// the new contract's gate name, by TestGateSchemaRestartRefusalChangesNothing.
func TestFoundRestartRefusedByTheDatabaseKeepsServing(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	app.Envs[0].Strategy = gantry.StrategyRestart
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01", "02"}})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2)
	if _, err := h.O.Deploy(h.Ctx, dreq("test", v1), nil); err == nil {
		t.Fatal("a release that predates a completed migration was deployed")
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("active %s, want %s", got, v2.ID)
	}
	h.MustConsistent(t, "shop", "test")
	if n := len(h.Driver.RunningIn("shop", "test")); n == 0 {
		t.Error("nothing runs on test any more")
	}
}

// A crash during a maintenance-strategy deploy, once every migration was
// applied completely but before the switch: Recover keeps the old release
// serving, on a schema that is gone (invariant (d) of TestModel; the
// schema gate of the new contract). It must also not leave the route
// holding writes.
func TestFoundRecoverAfterAMaintenanceApply(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01", "02", "03"}})
	h.MustDeploy(t, "shop", "test", v1)
	h.CrashAt(t, "switch", gantry.StepStarted, func() {
		h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Strategy: gantry.StrategyMaintenance, Actor: "dev"}, nil)
	})
	h.O = h.NewOrchestrator()
	if err := h.O.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	e := h.MustEnv(t, "shop", "test")
	if a := e.ActiveSlot(); a == nil {
		t.Fatal("nothing is active after recovery")
	} else if err := h.DB.Compatible(h.DBURL("shop", "test"), map[string][]string{v1.ID: {"01"}, v2.ID: {"01", "02", "03"}}[a.ReleaseID]); err != nil {
		t.Errorf("after recovery %s serves on a schema it cannot use: %v", a.Version, err)
	}
	if st, _ := h.Mem.Route("shop/test"); st.Paused {
		t.Error("after recovery the route still holds writes")
	}
	h.MustConsistent(t, "shop", "test")
	h.MustNoLock(t, "shop", "test")
}
