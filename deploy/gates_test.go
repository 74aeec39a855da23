package deploy_test

// Gate tests: every operation that changes what an environment serves
// passes the same gates; a refusal is EPOLICY with a message "<gate>: …"
// naming the command that would be allowed, and changes nothing.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func dreq(env string, rel *gantry.Release) gantry.DeployRequest {
	return gantry.DeployRequest{App: "shop", Env: env, Release: rel.ID, Actor: "dev"}
}

func TestGatePromoteFromDeploy(t *testing.T) {
	h := NewHarness(t, Options{})
	app := pipeline(func(*Env) {})
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	// v1 is active and verified on test: prod may take it by deploy.
	_, err := h.O.Deploy(h.Ctx, dreq("prod", v1), nil)
	mustAllow(t, "deploy to prod of the release active on test", err)
	// v2 never ran on test.
	before := h.state(t, "shop")
	_, err = h.O.Deploy(h.Ctx, dreq("prod", v2), nil)
	h.mustRefuse(t, "shop", before, err, "promote_from", "gantry promote test prod")
}

func TestGatePromoteFromRollbackTo(t *testing.T) {
	h := NewHarness(t, Options{})
	app := pipeline(func(*Env) {})
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	v3 := h.MustRelease(t, app, Rel{Version: "1.0.2"})
	h.MustDeploy(t, "shop", "test", v1)
	_, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil)
	mustAllow(t, "promote v1", err)
	h.MustDeploy(t, "shop", "test", v2)
	_, err = h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil)
	mustAllow(t, "promote v2", err)
	// v3 never ran anywhere: rollback --to cannot bring it to prod.
	before := h.state(t, "shop")
	_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "prod", To: v3.ID, Actor: "dev"}, nil)
	h.mustRefuse(t, "shop", before, err, "promote_from", "gantry promote test prod")
	// v1 served prod before: a rollback to it is allowed.
	_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "prod", To: v1.ID, Actor: "dev"}, nil)
	mustAllow(t, "rollback --to a release prod served before", err)
}

func TestGatePromoteFromRename(t *testing.T) {
	h := NewHarness(t, Options{})
	app := pipeline(func(*Env) {})
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	_, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil)
	mustAllow(t, "promote v1", err)
	_, err = h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "prod", Dst: "prodnew", Actor: "dev"}, nil)
	mustAllow(t, "clone prod", err)
	h.MustDeploy(t, "shop", "prodnew", v2) // prodnew has no promote_from
	before := h.state(t, "shop")
	_, err = h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "prodnew", New: "prod", DisplaceTo: "prodold", Actor: "dev"}, nil)
	h.mustRefuse(t, "shop", before, err, "promote_from", "gantry promote test prod")
}

func TestGateApprovalsApplyToDeploy(t *testing.T) {
	h := NewHarness(t, Options{})
	app := pipeline(func(p *Env) { p.Approvals = 1 })
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	before := h.state(t, "shop")
	_, err := h.O.Deploy(h.Ctx, dreq("prod", v1), nil)
	h.mustRefuse(t, "shop", before, err, "approvals", "gantry approve prod")
	if _, err := h.O.Approve(h.Ctx, gantry.ApproveRequest{App: "shop", Env: "prod", Release: v1.ID, Actor: "qa"}); err != nil {
		t.Fatal(err)
	}
	_, err = h.O.Deploy(h.Ctx, dreq("prod", v1), nil)
	mustAllow(t, "approved deploy to prod", err)
}

func TestGateApprovalsNotForAReleaseServedBefore(t *testing.T) {
	h := NewHarness(t, Options{})
	app := pipeline(func(p *Env) { p.Approvals = 1 })
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	for _, v := range []*gantry.Release{v1, v2} {
		h.MustDeploy(t, "shop", "test", v)
		if _, err := h.O.Approve(h.Ctx, gantry.ApproveRequest{App: "shop", Env: "prod", Release: v.ID, Actor: "qa"}); err != nil {
			t.Fatal(err)
		}
		_, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil)
		mustAllow(t, "approved promotion of "+v.Version, err)
	}
	// v1 served prod before: a redeploy of it (a rollback) needs no new approval.
	_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "prod", To: v1.ID, Actor: "dev"}, nil)
	mustAllow(t, "rollback to a release prod served before", err)
}

func TestGateHotfixApprovals(t *testing.T) {
	h := NewHarness(t, Options{})
	app := pipeline(func(p *Env) { p.Approvals = 2; p.Hotfix = 1 })
	fix := h.MustRelease(t, app, Rel{Version: "1.0.1", Ref: "hotfix/login"})
	h.MustDeploy(t, "shop", "test", fix)
	if _, err := h.O.Approve(h.Ctx, gantry.ApproveRequest{App: "shop", Env: "prod", Release: fix.ID, Actor: "qa"}); err != nil {
		t.Fatal(err)
	}
	_, err := h.O.Deploy(h.Ctx, dreq("prod", fix), nil)
	mustAllow(t, "deploy of a hotfix with its one approval", err)
	// An ordinary release with one approval of the two required.
	app2 := pipeline(func(p *Env) { p.Approvals = 2; p.Hotfix = 1 })
	v2 := h.MustRelease(t, app2, Rel{Version: "1.0.2"})
	h.MustDeploy(t, "shop", "test", v2)
	if _, err := h.O.Approve(h.Ctx, gantry.ApproveRequest{App: "shop", Env: "prod", Release: v2.ID, Actor: "qa"}); err != nil {
		t.Fatal(err)
	}
	before := h.state(t, "shop")
	_, err = h.O.Deploy(h.Ctx, dreq("prod", v2), nil)
	h.mustRefuse(t, "shop", before, err, "approvals", "gantry approve prod")
}

func TestGateMigrationsViaClone(t *testing.T) {
	h := NewHarness(t, Options{})
	app := pipeline(func(p *Env) { p.ViaClone = true })
	v30 := h.MustRelease(t, app, Rel{Version: "3.0.0"})
	v31 := h.MustRelease(t, app, Rel{Version: "3.1.0"})
	h.MustDeploy(t, "shop", "test", v30)
	_, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil)
	mustAllow(t, "promote 3.0", err)
	h.MustDeploy(t, "shop", "test", v31)
	before := h.state(t, "shop")
	_, err = h.O.Deploy(h.Ctx, dreq("prod", v31), nil)
	h.mustRefuse(t, "shop", before, err, "migrations_via_clone", "gantry env clone prod")
	_, err = h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil)
	h.mustRefuse(t, "shop", before, err, "migrations_via_clone", "gantry env clone prod")
	// W2: clone prod, update the clone, make it test, promote.
	_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
	mustAllow(t, "test back to 3.0", err)
	_, err = h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "prod", Dst: "testnew", Actor: "dev"}, nil)
	mustAllow(t, "clone prod into testnew", err)
	h.MustDeploy(t, "shop", "testnew", v31)
	_, err = h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "testnew", New: "test", DisplaceTo: "testold", Actor: "dev"}, nil)
	mustAllow(t, "rename testnew to test", err)
	_, err = h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil)
	mustAllow(t, "promote 3.1 from the clone of prod", err)
	if got := h.ActiveRelease(t, "shop", "prod"); got != v31.ID {
		t.Errorf("prod runs %s, want 3.1 %s", got, v31.ID)
	}
}

// frozen is an app whose test and prod are frozen for the day after T0+1h.
func frozen() App {
	w := [][2]time.Time{{T0.Add(time.Hour), T0.Add(25 * time.Hour)}}
	app := Simple("shop")
	app.Envs[0].Freeze = w
	app.Envs[1].Freeze = w
	app.Envs[0].KeepWarm = "48h"
	return app
}

func TestGateFreeze(t *testing.T) {
	type op struct {
		name    string
		allowed string
		run     func(h *Harness, r map[string]*gantry.Release, breakGlass string) error
	}
	deployTo := func(env, v string) func(h *Harness, r map[string]*gantry.Release, bg string) error {
		return func(h *Harness, r map[string]*gantry.Release, bg string) error {
			_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: env, Release: r[v].ID, Actor: "dev", BreakGlass: bg}, nil)
			return err
		}
	}
	ops := []op{
		{"deploy", "--break-glass", deployTo("test", "v3")},
		{"promote", "--break-glass", func(h *Harness, r map[string]*gantry.Release, bg string) error {
			_, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev", BreakGlass: bg}, nil)
			return err
		}},
		{"rollback warm", "--break-glass", func(h *Harness, r map[string]*gantry.Release, bg string) error {
			_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev", BreakGlass: bg}, nil)
			return err
		}},
		{"rollback cold", "--break-glass", func(h *Harness, r map[string]*gantry.Release, bg string) error {
			_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", To: r["v0"].ID, Actor: "dev", BreakGlass: bg}, nil)
			return err
		}},
		{"clone", "--break-glass", func(h *Harness, r map[string]*gantry.Release, bg string) error {
			_, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", Actor: "dev", BreakGlass: bg}, nil)
			return err
		}},
		{"rename", "--break-glass", func(h *Harness, r map[string]*gantry.Release, bg string) error {
			_, err := h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "test", New: "staging", Actor: "dev", BreakGlass: bg}, nil)
			return err
		}},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			h := NewHarness(t, Options{})
			app := frozen()
			r := map[string]*gantry.Release{}
			for i, v := range []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3"} {
				r[fmt.Sprintf("v%d", i)] = h.MustRelease(t, app, Rel{Version: v})
			}
			h.MustDeploy(t, "shop", "test", r["v1"])
			h.MustDeploy(t, "shop", "test", r["v2"])
			h.Clock.Advance(2 * time.Hour) // inside the window
			before := h.state(t, "shop")
			h.mustRefuse(t, "shop", before, o.run(h, r, ""), "freeze", o.allowed)
			mustAllow(t, o.name+" with --break-glass", o.run(h, r, "incident 42"))
		})
	}
}

func TestGateFreezeContinue(t *testing.T) {
	h := NewHarness(t, Options{})
	app := frozen()
	app.Services = []Svc{{Name: "api", Order: 1}, {Name: "web", Order: 2}}
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	one := 1
	if _, err := h.O.DeployOrdered(h.Ctx, dreq("test", v2), &one, "", nil); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(2 * time.Hour)
	before := h.state(t, "shop")
	_, err := h.O.Continue(h.Ctx, gantry.ContinueRequest{App: "shop", Env: "test", Actor: "dev", Abort: false}, nil)
	h.mustRefuse(t, "shop", before, err, "freeze", "--break-glass")
}

// migrated deploys v1 (migration 01) then v2 (01, 02) to test; complete
// says how 02 is completed: "maintenance" (applied completely by the
// maintenance strategy) or "contract" (expanded, then contracted by force).
func migrated(t *testing.T, h *Harness, complete string, watch bool) (v1, v2 *gantry.Release) {
	t.Helper()
	app := Simple("shop")
	app.Database = true
	if watch {
		app.Verify = true
		app.Envs[0].Watch = "{window: 2s, max_error_rate: 0.05, min_requests: 10}"
	}
	v1 = h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01"}})
	v2 = h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01", "02"}})
	h.MustDeploy(t, "shop", "test", v1)
	if complete == "maintenance" {
		if watch {
			h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
				if s.Name == "watch" && s.State == gantry.StepStarted {
					for _, a := range h.Mem.Serving("shop/test") {
						h.Mem.AddTraffic(a, 100, 40, 0)
					}
				}
			})
			defer h.SetOnStep(nil)
		}
		h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Strategy: gantry.StrategyMaintenance, Actor: "dev"}, nil)
		return v1, v2
	}
	h.MustDeploy(t, "shop", "test", v2)
	if _, err := h.O.Contract(h.Ctx, "shop", "test", true); err != nil {
		t.Fatal(err)
	}
	return v1, v2
}

func TestGateSchemaWarmRollback(t *testing.T) {
	for _, complete := range []string{"maintenance", "contract"} {
		t.Run(complete, func(t *testing.T) {
			h := NewHarness(t, Options{})
			migrated(t, h, complete, false)
			if _, active := h.DB.Applied(h.DBURL("shop", "test")); active != "" {
				t.Fatalf("02 is still active (%s): the setup did not complete it", active)
			}
			before := h.state(t, "shop")
			_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
			h.mustRefuse(t, "shop", before, err, "schema", "gantry rollback test --force")
		})
	}
}

func TestGateSchemaForcedRollback(t *testing.T) {
	h := NewHarness(t, Options{})
	v1, _ := migrated(t, h, "contract", false)
	req := gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev", Force: true}
	_, err := h.O.Rollback(h.Ctx, req, nil)
	mustAllow(t, "rollback --force across a contract", err)
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("after rollback --force %s is active, want %s", got, v1.ID)
	}
	if applied, active := h.DB.Applied(h.DBURL("shop", "test")); strings.Join(applied, ",") != "01" || active != "" {
		t.Errorf("database after rollback --force: %v active %q, want 01 alone", applied, active)
	}
	forced := false
	for _, c := range h.DB.Calls("rollback") {
		forced = forced || (c.Force && c.Err == "")
	}
	if !forced {
		t.Errorf("the database was not rolled back with Force: %+v", h.DB.Calls("rollback"))
	}
	h.MustConsistent(t, "shop", "test")
}

func TestGateSchemaWatchDoesNotFlipIntoAGoneSchema(t *testing.T) {
	h := NewHarness(t, Options{})
	_, v2 := migrated(t, h, "maintenance", true)
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("after a breach with 02 completed, %s is active; want %s to keep serving (v1's schema is gone)", got, v2.ID)
	}
	h.MustConsistent(t, "shop", "test")
	ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "test", Limit: 1})
	journal := h.Steps(t, ds[0].ID)
	d, _ := h.Store.FindDeployment(h.Ctx, ds[0].ID)
	said := false
	for _, s := range d.Steps {
		said = said || strings.Contains(s.Detail, "schema")
	}
	if !said {
		t.Errorf("the journal (%v) does not say why the watch did not roll back", journal)
	}
}

func TestGateTypedResumeState(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	two := 2
	d, err := h.O.DeployOrdered(h.Ctx, dreq("test", v2), &two, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := h.Store.FindDeployment(h.Ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.PauseAfter == nil || *rec.PauseAfter != 2 {
		t.Errorf("record's pause_after: %v, want 2", rec.PauseAfter)
	}
	if rec.GroupDone == nil || *rec.GroupDone != 2 {
		t.Errorf("record's group_done: %v, want 2", rec.GroupDone)
	}
	// Continue reads the typed fields, not the journal's text.
	for _, s := range rec.Steps {
		if s.Name == "pause-after" || s.Name == "plan" {
			s.Detail = "(rewritten)"
			if err := h.Store.UpdateStep(h.Ctx, d.ID, &s); err != nil {
				t.Fatal(err)
			}
		}
	}
	d2, err := h.O.Continue(h.Ctx, gantry.ContinueRequest{App: "shop", Env: "test", Actor: "dev", Abort: false}, nil)
	mustAllow(t, "continue from the typed resume state", err)
	if d2 != nil && d2.State != gantry.DeploymentSucceeded {
		t.Errorf("continued deployment: %s, want succeeded", d2.State)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("active %s, want %s", got, v2.ID)
	}
}

func TestGateLockNamesItsDeployment(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	checked := false
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name != "start-group" || s.State != gantry.StepStarted || checked {
			return
		}
		checked = true
		l, err := h.Store.FindLock(h.Ctx, "shop", "test")
		if err != nil || l.DeploymentID != d.ID {
			t.Errorf("lock while #%d runs: %+v %v, want DeploymentID %d", d.ID, l, err, d.ID)
		}
		_, err = h.O.Deploy(h.Ctx, dreq("test", v2), nil)
		if gantry.ErrorCode(err) != gantry.ECONFLICT || !strings.Contains(gantry.ErrorMessage(err), fmt.Sprintf("#%d", d.ID)) {
			t.Errorf("conflicting deploy: %v, want ECONFLICT naming #%d", err, d.ID)
		}
	})
	h.MustDeploy(t, "shop", "test", v1)
	h.SetOnStep(nil)
	if !checked {
		t.Fatal("the deployment never started a group")
	}
}

func TestGatePauseAfterWithDatabase(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01", "02"}})
	h.MustDeploy(t, "shop", "test", v1)
	one := 1
	d, err := h.O.DeployOrdered(h.Ctx, dreq("test", v2), &one, "", nil)
	mustAllow(t, "deploy --pause-after 1 of an app with a database", err)
	if d == nil || d.State != gantry.DeploymentPaused {
		t.Fatalf("deployment: %s, want paused", describe(d))
	}
	_, err = h.O.Continue(h.Ctx, gantry.ContinueRequest{App: "shop", Env: "test", Actor: "dev", Abort: false}, nil)
	mustAllow(t, "continue", err)
	if got := h.ActiveRelease(t, "shop", "test"); got != v2.ID {
		t.Errorf("active %s, want %s", got, v2.ID)
	}
	if _, active := h.DB.Applied(h.DBURL("shop", "test")); active != "02" {
		t.Errorf("active migration %q, want 02 expanded", active)
	}
}

func TestGatePromotePauseAfter(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	one := 1
	req := gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev", PauseAfter: &one}
	d, err := h.O.Promote(h.Ctx, req, nil)
	mustAllow(t, "promote --pause-after 1", err)
	if d == nil || d.State != gantry.DeploymentPaused || d.Kind != gantry.KindPromote {
		t.Fatalf("promotion: %s, want a paused promotion", describe(d))
	}
	d2, err := h.O.Continue(h.Ctx, gantry.ContinueRequest{App: "shop", Env: "prod", Actor: "dev", Abort: false}, nil)
	mustAllow(t, "continue the promotion", err)
	if d2.ID != d.ID || h.ActiveRelease(t, "shop", "prod") != v1.ID {
		t.Errorf("continued #%d, prod runs %s; want #%d and %s", d2.ID, h.ActiveRelease(t, "shop", "prod"), d.ID, v1.ID)
	}
}

func describe(d *gantry.Deployment) string {
	if d == nil {
		return "none"
	}
	return fmt.Sprintf("#%d %s %s of %s", d.ID, d.Kind, d.State, d.Version)
}

// TestGateSchemaRestartRefusalChangesNothing: on a restart environment, a
// release that predates a completed migration must be refused before the
// running instances are stopped (found by TestModel: the engine stopped
// them, then the database plan refused, and the environment served nothing).
func TestGateSchemaRestartRefusalChangesNothing(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	app.Envs[0].Strategy = gantry.StrategyRestart
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01", "02"}})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2) // a restart: nothing live beside it, so 02 is applied completely
	before := h.state(t, "shop")
	_, err := h.O.Deploy(h.Ctx, dreq("test", v1), nil)
	h.mustRefuse(t, "shop", before, err, "schema", "")
	h.MustConsistent(t, "shop", "test")
}
