package deploy_test

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

func routerOps(h *Harness) string {
	var ops []string
	for _, c := range h.Mem.Calls() {
		ops = append(ops, c.Op)
	}
	return strings.Join(ops, ",")
}

func TestDeployRestartStrategy(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Envs[0].Strategy = gantry.StrategyRestart
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	old := WebAddrs(h.MustEnv(t, "shop", "test").Slots[gantry.SlotBlue])
	h.Mem.ResetCalls()
	h.Driver.ResetCalls()
	d := h.MustDeploy(t, "shop", "test", v2)
	if d.Slot != gantry.SlotBlue || d.Strategy != gantry.StrategyRestart {
		t.Errorf("restart: slot %s strategy %s, want blue restart", d.Slot, d.Strategy)
	}
	e := h.MustEnv(t, "shop", "test")
	if e.Active != gantry.SlotBlue || e.Slots[gantry.SlotBlue].ReleaseID != v2.ID || e.Slots[gantry.SlotGreen] != nil {
		t.Errorf("after restart: active %s runs %s, green %v; want blue running %s and no green", e.Active, e.Slots[gantry.SlotBlue].ReleaseID, e.Slots[gantry.SlotGreen], v2.ID)
	}
	if got, want := routerOps(h), "pause,deploy,resume"; got != want {
		t.Errorf("router calls: got %s, want %s", got, want)
	}
	stops := h.Driver.Calls("stop")
	if len(stops) != 1 || stops[0].Addr != old[0] {
		t.Errorf("stops: got %v, want the old instance %v", stops, old)
	}
	if got := strings.Join(h.Steps(t, d.ID), ","); !strings.Contains(got, "pause,stop-old,start,health,switch,resume") {
		t.Errorf("journal: got %s, want pause,stop-old,start,health,switch,resume", got)
	}
	h.MustConsistent(t, "shop", "test")
	h.MustNoLock(t, "shop", "test")
}

func TestDeployMaintenanceStrategyAppliesEveryMigration(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01_init"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01_init", "02_split", "03_drop"}})
	h.MustDeploy(t, "shop", "test", v1)
	h.Mem.ResetCalls()
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Strategy: gantry.StrategyMaintenance, Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	applied, active := h.DB.Applied(h.DBURL("shop", "test"))
	if strings.Join(applied, ",") != "01_init,02_split,03_drop" || active != "" {
		t.Errorf("database: %v active %q, want every migration applied completely", applied, active)
	}
	if got, want := routerOps(h), "pause,deploy,set-preview,resume"; got != want {
		t.Errorf("router calls: got %s, want %s", got, want)
	}
	if c := h.Mem.Calls("pause"); len(c) != 1 || !c[0].On {
		t.Errorf("pause: got %+v, want writes only", c)
	}
	if st, _ := h.Mem.Route("shop/test"); st.Paused {
		t.Error("route still paused after the deploy")
	}
	steps := strings.Join(h.Steps(t, d.ID), ",")
	for _, s := range []string{"hold-writes", "db-plan", "db-expand", "switch", "release-writes"} {
		if !strings.Contains(steps, s) {
			t.Errorf("journal %s lacks %s", steps, s)
		}
	}
	for _, r := range h.Driver.RunningIn("shop", "test") {
		if r.ReleaseID == v2.ID && r.Vars["GANTRY_DB_SCHEMA"] != "public_03_drop" {
			t.Errorf("instance of v2 has GANTRY_DB_SCHEMA %q, want public_03_drop", r.Vars["GANTRY_DB_SCHEMA"])
		}
	}
	h.MustConsistent(t, "shop", "test")
}

func TestDeployWithDatabaseExpandsThenContracts(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01_init"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01_init", "02_add"}})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2)
	url := h.DBURL("shop", "test")
	if _, active := h.DB.Applied(url); active != "02_add" {
		t.Fatalf("after the deploy of v2: active migration %q, want 02_add (expanded, the old slot is warm)", active)
	}
	if _, err := h.O.Contract(h.Ctx, "shop", "test", false); gantry.ErrorCode(err) != gantry.EPOLICY {
		t.Errorf("contract with the old slot warm: got %v, want EPOLICY", err)
	}
	st, err := h.O.DatabaseStatus(h.Ctx, "shop", "test")
	if err != nil || st.Active != "02_add" || st.ActiveRelease != v2.ID {
		t.Errorf("status: %+v %v, want 02_add active, expanded by v2", st, err)
	}
	// Keep-warm ends: the reaper stops the old slot and contracts.
	h.Clock.Advance(gantry.DefaultKeepWarm + 1)
	if err := h.O.ReapStandby(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if applied, active := h.DB.Applied(url); active != "" || len(applied) != 2 {
		t.Errorf("after keep-warm: %v active %q, want 02_add contracted", applied, active)
	}
	if c := h.DB.Calls("contract"); len(c) == 0 || c[len(c)-1].Err != "" {
		t.Errorf("contract calls: %+v, want a successful last one", c)
	}
}
