package storetest

import (
	"testing"

	"github.com/gantry-dev/gantry"
)

var workflowTests = []test{
	{"RenameMovesHistory", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		if err := f.s.PutEnvironment(f.ctx, environment("shop", "testnew")); err != nil {
			t.Fatal(err)
		}
		d := f.mustCreateDeployment("shop", "testnew", gantry.DeploymentSucceeded)
		a := &gantry.Approval{App: "shop", Env: "testnew", ReleaseID: "r1", Fingerprint: "fp", Approver: "bob"}
		if err := f.s.CreateApproval(f.ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RenameEnvironment(f.ctx, "shop", "testnew", "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.FindEnvironment(f.ctx, "shop", "testnew"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
			t.Errorf("old name still found: %v", err)
		}
		env, err := f.s.FindEnvironment(f.ctx, "shop", "test")
		if err != nil {
			t.Fatal(err)
		}
		if env.Name != "test" || env.Active != gantry.SlotBlue || env.Slots[gantry.SlotBlue].ReleaseID != "r1" {
			t.Errorf("renamed environment = %+v", env)
		}
		got, err := f.s.FindDeployment(f.ctx, d.ID)
		if err != nil || got.Env != "test" {
			t.Errorf("deployment %d env = %q, %v; want test", d.ID, got.Env, err)
		}
		as, err := f.s.ListApprovals(f.ctx, "shop", "test", "r1")
		if err != nil || len(as) != 1 || as[0].Approver != "bob" {
			t.Errorf("approvals after rename = %+v, %v", as, err)
		}
	}},
	{"RenameConflicts", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		for _, n := range []string{"test", "testnew"} {
			if err := f.s.PutEnvironment(f.ctx, environment("shop", n)); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.s.RenameEnvironment(f.ctx, "shop", "testnew", "test"); gantry.ErrorCode(err) != gantry.ECONFLICT {
			t.Errorf("rename onto an existing name: %v, want conflict", err)
		}
		if err := f.s.RenameEnvironment(f.ctx, "shop", "nope", "other"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
			t.Errorf("rename of a missing environment: %v, want not found", err)
		}
	}},
	{"Approvals", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		for i, who := range []string{"bob", "carol"} {
			a := &gantry.Approval{App: "shop", Env: "prod", ReleaseID: "r1", Fingerprint: "fp", Approver: who, Role: "approver", Comment: "ok"}
			if err := f.s.CreateApproval(f.ctx, a); err != nil {
				t.Fatal(err)
			}
			if a.ID == 0 || a.CreatedAt.IsZero() {
				t.Errorf("approval %d: id %d, created %v", i, a.ID, a.CreatedAt)
			}
		}
		as, err := f.s.ListApprovals(f.ctx, "shop", "prod", "r1")
		if err != nil || len(as) != 2 || as[0].Approver != "bob" || as[1].Approver != "carol" || as[1].Role != "approver" {
			t.Fatalf("approvals = %+v, %v", as, err)
		}
		if as, _ := f.s.ListApprovals(f.ctx, "shop", "prod", "r2"); len(as) != 0 {
			t.Errorf("another release has approvals %+v", as)
		}
		if err := f.s.CreateApproval(f.ctx, &gantry.Approval{App: "shop"}); gantry.ErrorCode(err) != gantry.EINVALID {
			t.Errorf("empty approval: %v, want invalid", err)
		}
	}},
}
