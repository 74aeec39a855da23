package deploy_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// slotDBApp is the slot-runtime app with a database, test only, with the
// given keep_warm.
func slotDBApp(keepWarm string) App {
	app := k8s()
	app.Database = true
	app.Envs = []Env{{Name: "test", Runtime: "kubernetes", KeepWarm: keepWarm}}
	return app
}

// TestSlotDriverDatabaseOrder: on a runtime that switches whole slots the
// database change keeps the engine's order. Checked at the moment each step
// begins, not only from the journal's order: the expand is in the database
// before the candidate's Deployment starts (and the candidate gets the new
// schema's connection settings); the contract runs only once the old slot
// has no instances; with keep_warm 0 that is in the same deploy.
func TestSlotDriverDatabaseOrder(t *testing.T) {
	h := NewHarness(t, Options{})
	app := slotDBApp("0s")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true, Migrations: []string{"01_init"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Images: true, Migrations: []string{"01_init", "02_add"}})
	h.MustDeploy(t, "shop", "test", v1)
	url := h.DBURL("shop", "test")
	var mu sync.Mutex
	var seen []string
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.State != gantry.StepStarted {
			return
		}
		applied, active := h.DB.Applied(url)
		blue := len(h.Slots.SlotInstances("shop", "test", gantry.SlotBlue))
		mu.Lock()
		defer mu.Unlock()
		switch s.Name {
		case "start":
			seen = append(seen, "start")
			if active != "02_add" || len(applied) != 2 {
				t.Errorf("candidate starts with the database at %v (active %q), want 02_add expanded first", applied, active)
			}
		case "db-contract":
			if active == "" {
				return // nothing to contract (the check before the expand)
			}
			seen = append(seen, "db-contract")
			if blue != 0 {
				t.Errorf("contract begins while the old slot runs %d instances", blue)
			}
		}
	})
	d := h.MustDeploy(t, "shop", "test", v2)
	h.SetOnStep(nil)
	if got := strings.Join(seen, ","); got != "start,db-contract" {
		t.Errorf("steps seen: %s, want start,db-contract", got)
	}
	steps := strings.Join(h.Steps(t, d.ID), ",")
	if !strings.Contains(steps, "db-plan,db-expand,start,switch,stop-previous,db-contract") {
		t.Errorf("journal: %s", steps)
	}
	if _, active := h.DB.Applied(url); active != "" {
		t.Errorf("after keep_warm 0 the migration is still active: %q", active)
	}
	for _, r := range h.Slots.RunningIn("shop", "test") {
		if r.Slot == gantry.SlotGreen && !strings.Contains(r.Vars["DATABASE_URL"], "search_path=") {
			t.Errorf("candidate's DATABASE_URL %q: not the new schema's settings", r.Vars["DATABASE_URL"])
		}
	}
}

// TestSlotDriverDatabaseRollback: with the old slot kept warm the contract
// waits; a flip back rolls back the migration the left release expanded and
// scales its slot down (it cannot serve on the old schema); deployed again,
// the contract follows the end of keep_warm. A failed candidate rolls its
// expand back and the active slot keeps serving.
func TestSlotDriverDatabaseRollback(t *testing.T) {
	h := NewHarness(t, Options{})
	app := slotDBApp("")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true, Migrations: []string{"01_init"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Images: true, Migrations: []string{"01_init", "02_add"}})
	h.MustDeploy(t, "shop", "test", v1)
	url := h.DBURL("shop", "test")
	h.MustDeploy(t, "shop", "test", v2)
	if _, active := h.DB.Applied(url); active != "02_add" {
		t.Fatalf("with blue warm the migration is %q, want 02_add still active (not contracted)", active)
	}
	rb, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied, active := h.DB.Applied(url); active != "" || len(applied) != 1 {
		t.Errorf("after the flip back the database is at %v (active %q), want 02_add rolled back", applied, active)
	}
	if n := len(h.Slots.SlotInstances("shop", "test", gantry.SlotGreen)); n != 0 {
		t.Errorf("green keeps %d instances after its migration was rolled back", n)
	}
	if steps := strings.Join(h.Steps(t, rb.ID), ","); !strings.Contains(steps, "switch,db-rollback,stop-previous") {
		t.Errorf("rollback's journal: %s", steps)
	}
	h.MustDeploy(t, "shop", "test", v2)
	h.Clock.Advance(gantry.DefaultKeepWarm + 1)
	if err := h.O.ReapStandby(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if applied, active := h.DB.Applied(url); active != "" || len(applied) != 2 {
		t.Errorf("after keep_warm ended the database is at %v (active %q), want 02_add contracted", applied, active)
	}

	// A candidate that never becomes ready: its expand is rolled back.
	v3 := h.MustRelease(t, app, Rel{Version: "1.2.0", Images: true, Migrations: []string{"01_init", "02_add", "03_more"}})
	h.Slots.SetRelease(v3.ID, memdriver.Knobs{NeverHealthy: true})
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v3.ID, Actor: "dev"}, nil); err == nil {
		t.Fatal("a candidate that never becomes ready was deployed")
	}
	if applied, active := h.DB.Applied(url); active != "" || len(applied) != 2 {
		t.Errorf("after the failed candidate the database is at %v (active %q), want 03_more rolled back", applied, active)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("serving after the failed candidate: %s, want 1.1.0", got)
	}
}

// TestSlotDriverSelfMigratingApp: an app that migrates its own schema by a
// compatible command runs on the slot runtime as on the others, minus the
// hold (there is none to make): snapshot and fingerprint before the
// command, the command before the candidate's Deployments start, the schema
// recorded once traffic is on the new release. Not compatible (or migrate_on_start, which
// cannot say compatible), it is refused before anything runs: requests
// cannot be held where the runtime routes its own traffic.
func TestSlotDriverSelfMigratingApp(t *testing.T) {
	h, app, _ := selfMigratingHarness(t, "bin/app migrate", true)
	app.Envs[0].Runtime = "kubernetes"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "2.0.0", Images: true})
	h.MustDeploy(t, "forum", "test", v1)
	d := h.MustDeploy(t, "forum", "test", v2)
	if steps := strings.Join(h.Steps(t, d.ID), ","); !strings.Contains(steps, "db-snapshot,db-migrate,") || !strings.Contains(steps, ",start,switch,db-record") {
		t.Errorf("journal: %s", steps)
	}
	url := h.DBURL("forum", "test")
	if got := h.DB.Schema(url); got != "schema of 2.0.0" {
		t.Errorf("schema after the deploy: %q", got)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "forum", Env: "test"}); a != gantry.SlotGreen {
		t.Errorf("the runtime routes to %q, want green", a)
	}

	for _, tc := range []struct{ name, run string }{{"command, not compatible", "bin/app migrate"}, {"migrate_on_start", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHarness(t, Options{})
			app := selfMigrating(tc.run, false)
			app.Envs[0].Runtime = "kubernetes"
			rel := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
			_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "forum", Env: "test", Release: rel.ID, Actor: "dev"}, nil)
			if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "cannot hold requests") {
				t.Errorf("deploy: %v, want refused saying requests cannot be held", err)
			}
			if n := len(h.Slots.Calls("start-slot")); n != 0 {
				t.Errorf("%d slots started for a refused deploy", n)
			}
		})
	}
}

// TestSlotDriverDatabaseRestart: the restart strategy (the runtime's
// rolling update of the active slot) expands before the update and
// contracts after it, no other slot running the old release.
func TestSlotDriverDatabaseRestart(t *testing.T) {
	h := NewHarness(t, Options{})
	app := slotDBApp("")
	app.Envs[0].Strategy = gantry.StrategyRestart
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true, Migrations: []string{"01_init"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Images: true, Migrations: []string{"01_init", "02_add"}})
	h.MustDeploy(t, "shop", "test", v1)
	url := h.DBURL("shop", "test")
	expandedFirst := false
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "rolling-update" && s.State == gantry.StepStarted {
			_, active := h.DB.Applied(url)
			expandedFirst = active == "02_add"
		}
	})
	d := h.MustDeploy(t, "shop", "test", v2)
	h.SetOnStep(nil)
	if !expandedFirst {
		t.Error("the rolling update began before 02_add was expanded")
	}
	if steps := strings.Join(h.Steps(t, d.ID), ","); !strings.Contains(steps, "db-expand,rolling-update,db-contract") {
		t.Errorf("journal: %s", steps)
	}
	if applied, active := h.DB.Applied(url); active != "" || len(applied) != 2 {
		t.Errorf("after the rolling update the database is at %v (active %q), want 02_add contracted", applied, active)
	}
}

// TestSlotDriverWatchRollbackScalesTheCandidateDown: behind Gantry's
// router (runtime.traffic: router) the watch's automatic rollback undoes
// the candidate's expand, and the candidate, which cannot serve on the old
// schema, is scaled down by the runtime (StopSlot, its objects kept) as
// every other stop of a slot there is. Before, it was stopped instance by
// instance with the router runtime's stop, which on Kubernetes deletes the
// Deployment of the first instance and leaves the slot recorded by the
// runtime as running.
func TestSlotDriverWatchRollbackScalesTheCandidateDown(t *testing.T) {
	h := NewHarness(t, Options{})
	app := slotDBApp("")
	app.Verify = true
	app.Envs[0].Runtime = "kubernetes, traffic: router"
	app.Envs[0].Watch = "{window: 2s, max_error_rate: 0.05, min_requests: 10}"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true, Migrations: []string{"01_init"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Images: true, Migrations: []string{"01_init", "02_add"}})
	h.MustDeploy(t, "shop", "test", v1)
	url := h.DBURL("shop", "test")
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "watch" && s.State == gantry.StepStarted {
			for _, a := range h.Mem.Serving("shop/test") {
				h.Mem.AddTraffic(a, 100, 40, 100*time.Millisecond)
			}
		}
	})
	h.Slots.ResetCalls()
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	h.SetOnStep(nil)
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(gantry.ErrorMessage(err), "rolled back automatically") {
		t.Fatalf("deploy of a release failing 40%%: got %v, want EFAILED rolled back automatically", err)
	}
	if steps := strings.Join(h.Steps(t, d.ID), ","); !strings.Contains(steps, "watch,auto-rollback,db-rollback,stop-candidate") {
		t.Errorf("journal: %s", steps)
	}
	if applied, active := h.DB.Applied(url); active != "" || len(applied) != 1 {
		t.Errorf("after the automatic rollback the database is at %v (active %q), want 02_add rolled back", applied, active)
	}
	if got, want := slotOps(h), "start-slot green,switch green,switch blue,stop-slot green"; got != want {
		t.Errorf("slot calls: got %s, want %s", got, want)
	}
	if n := len(h.Slots.SlotInstances("shop", "test", gantry.SlotGreen)); n != 0 {
		t.Errorf("the runtime keeps %d instances of the rolled-back candidate", n)
	}
	if e := h.MustEnv(t, "shop", "test"); e.Active != gantry.SlotBlue || e.Slots[gantry.SlotGreen].State != gantry.SlotStopped {
		t.Errorf("record after the automatic rollback: active %s, green %s; want blue, green stopped", e.Active, e.Slots[gantry.SlotGreen].State)
	}
}
