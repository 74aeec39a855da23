package fakedb

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gantry-dev/gantry"
)

func migrations(names ...string) fstest.MapFS {
	fs := fstest.MapFS{}
	for _, n := range names {
		fs[n+".json"] = &fstest.MapFile{Data: []byte("{}")}
	}
	return fs
}

func TestPlanRulesAndRollback(t *testing.T) {
	ctx := context.Background()
	c := &Changer{}
	b := gantry.DatabaseBinding{App: "shop", Env: "prod", URL: "mem://shop/prod"}
	rel := func(id string) *gantry.Release { return &gantry.Release{ID: id} }
	step := func(id string, live, maint bool, names ...string) *gantry.MigrationPlan {
		t.Helper()
		p, err := c.Plan(ctx, b, gantry.PlanRequest{Release: rel(id), Migrations: migrations(names...), Live: live, Maintenance: maint})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := step("r1", false, false, "01", "02"); p.Action != gantry.PlanApply {
		t.Fatalf("first deploy: got %s, want apply", p.Action)
	} else if _, err := c.Expand(ctx, b, p); err != nil {
		t.Fatal(err)
	}
	if p := step("r2", true, false, "01", "02", "03", "04"); p.Action != gantry.PlanRefuse {
		t.Errorf("two pending while live: got %s, want refuse", p.Action)
	}
	p := step("r2", true, false, "01", "02", "03")
	if p.Action != gantry.PlanExpand {
		t.Fatalf("one pending while live: got %s, want expand", p.Action)
	}
	if _, err := c.Expand(ctx, b, p); err != nil {
		t.Fatal(err)
	}
	if p := step("r1", true, false, "01", "02"); p.Action != gantry.PlanNone {
		t.Errorf("the release before the active migration: got %s (%s), want none", p.Action, p.Reason)
	}
	if p := step("r3", true, false, "01", "02", "03", "04"); p.Action != gantry.PlanRefuse || !strings.Contains(p.Reason, "still active") {
		t.Errorf("pending with an active migration: got %s %q, want refuse", p.Action, p.Reason)
	}
	if _, err := c.Contract(ctx, b, gantry.ContractGuard{Force: true}); err != nil {
		t.Fatal(err)
	}
	if p := step("r1", true, false, "01", "02"); p.Action != gantry.PlanRefuse || !strings.Contains(p.Reason, "predates") {
		t.Errorf("after the contract: got %s %q, want refuse with predates", p.Action, p.Reason)
	}
	if err := c.Compatible(b.URL, []string{"01", "02"}); err == nil {
		t.Error("Compatible of the old release after the contract: got nil")
	}
	if _, err := c.Rollback(ctx, b, gantry.RollbackOptions{}); gantry.ErrorCode(err) != gantry.EPOLICY {
		t.Errorf("rollback across a contract: got %v, want EPOLICY", err)
	}
	if _, err := c.Rollback(ctx, b, gantry.RollbackOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if applied, active := c.Applied(b.URL); strings.Join(applied, ",") != "01,02" || active != "" {
		t.Errorf("after a forced rollback: %v active %q, want 01,02 and none", applied, active)
	}
	if err := c.Compatible(b.URL, []string{"01", "02"}); err != nil {
		t.Errorf("Compatible after the forced rollback: %v", err)
	}
	vars, err := c.ConnVars(ctx, b, migrations("01", "02"))
	if err != nil || vars["GANTRY_DB_SCHEMA"] != "public_02" {
		t.Errorf("ConnVars: %v %v, want GANTRY_DB_SCHEMA=public_02", vars, err)
	}
	if _, err := c.ConnVars(ctx, b, migrations("01")); err == nil {
		t.Error("ConnVars of a schema that is gone: got nil")
	}
}
