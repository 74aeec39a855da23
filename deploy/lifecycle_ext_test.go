package deploy_test

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

func TestCloneWithData(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "3.0.0", Migrations: []string{"01_init"}})
	h.MustDeploy(t, "shop", "test", v1)
	if _, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "shop", From: "test", To: "prod", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	d, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "prod", Dst: "testnew", WithData: true, Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != gantry.KindClone || d.ReleaseID != v1.ID {
		t.Errorf("clone: kind %s release %s, want clone of %s", d.Kind, d.ReleaseID, v1.ID)
	}
	e := h.MustEnv(t, "shop", "testnew")
	if e.ClonedFrom != "prod" || strings.Join(e.Spec.Hosts, ",") != "testnew.shop.localhost" || e.Spec.PromoteFrom != "" {
		t.Errorf("clone record: from %q hosts %v promote_from %q", e.ClonedFrom, e.Spec.Hosts, e.Spec.PromoteFrom)
	}
	if got := h.ActiveRelease(t, "shop", "testnew"); got != v1.ID {
		t.Errorf("testnew runs %s, want %s", got, v1.ID)
	}
	if applied, _ := h.DB.Applied(h.DBURL("shop", "testnew")); strings.Join(applied, ",") != "01_init" {
		t.Errorf("testnew's database: %v, want a copy of prod's", applied)
	}
	if !strings.Contains(strings.Join(h.Steps(t, d.ID), ","), "create,copy-data") {
		t.Errorf("journal %v lacks create, copy-data", h.Steps(t, d.ID))
	}
	h.MustConsistent(t, "shop", "testnew")
	h.MustConsistent(t, "shop", "prod")
	if _, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "prod", Dst: "testnew", Actor: "dev"}, nil); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("clone onto an existing name: got %v, want ECONFLICT", err)
	}
	if _, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "prod", Dst: "Bad_Name", Actor: "dev"}, nil); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("clone to a bad name: got %v, want EINVALID", err)
	}
}

func TestRenameWithoutDisplacement(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	addrs := h.Serving(t, "shop", "test")
	d, err := h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "test", New: "staging", Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != gantry.KindRename || d.FromEnv != "test" || d.Env != "staging" {
		t.Errorf("rename record: %+v", d)
	}
	if got := h.Serving(t, "shop", "staging"); strings.Join(got, ",") != strings.Join(addrs, ",") {
		t.Errorf("shop/staging serves %v, want the same instances %v", got, addrs)
	}
	if _, ok := h.Mem.Route("shop/test"); ok {
		t.Error("the old route is still there")
	}
	e := h.MustEnv(t, "shop", "staging")
	if strings.Join(e.Spec.Hosts, ",") != "staging.shop.localhost" {
		t.Errorf("hosts after rename: %v", e.Spec.Hosts)
	}
	ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "staging"})
	if len(ds) != 2 {
		t.Errorf("history under the new name: %d deployments, want 2 (the deploy and the rename)", len(ds))
	}
	h.MustConsistent(t, "shop", "staging")
	h.MustNoLock(t, "shop", "test")
	h.MustNoLock(t, "shop", "staging")
}

func TestRenameWithDisplacement(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v30 := h.MustRelease(t, app, Rel{Version: "3.0.0"})
	v31 := h.MustRelease(t, app, Rel{Version: "3.1.0"})
	h.MustDeploy(t, "shop", "test", v30)
	if _, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	h.MustDeploy(t, "shop", "testnew", v31)
	oldTest, newTest := h.Serving(t, "shop", "test"), h.Serving(t, "shop", "testnew")
	req := gantry.RenameRequest{App: "shop", Old: "testnew", New: "test", Actor: "dev"}
	if _, err := h.O.Rename(h.Ctx, req, nil); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Fatalf("rename onto an existing name without --displace-to: got %v, want ECONFLICT", err)
	}
	req.DisplaceTo = "testold"
	d, err := h.O.Rename(h.Ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v31.ID {
		t.Errorf("test runs %s, want 3.1 %s", got, v31.ID)
	}
	if got := h.ActiveRelease(t, "shop", "testold"); got != v30.ID {
		t.Errorf("testold runs %s, want 3.0 %s", got, v30.ID)
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(newTest, ",") {
		t.Errorf("shop/test serves %v, want testnew's instances %v", got, newTest)
	}
	if got := h.Serving(t, "shop", "testold"); strings.Join(got, ",") != strings.Join(oldTest, ",") {
		t.Errorf("shop/testold serves %v, want the old test's %v", got, oldTest)
	}
	if _, ok := h.Mem.Route("shop/testnew"); ok {
		t.Error("shop/testnew is still routed")
	}
	if got := strings.Join(h.Steps(t, d.ID), ","); got != "rename,move-traffic,rename,move-traffic" {
		t.Errorf("journal: %s, want two renames each moving traffic", got)
	}
	for _, env := range []string{"test", "testold", "testnew"} {
		h.MustNoLock(t, "shop", env)
	}
	h.MustConsistent(t, "shop", "test")
	h.MustConsistent(t, "shop", "testold")
}
