package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// TestEnvDeleteDropsTheClonesDatabase: env delete drops the database a
// clone --with-data created for the environment (Miniflux: after env
// delete testnew the copy stayed, and a retry refused to copy over it),
// so the same clone runs again; --keep-data keeps it; a database the
// copy found (Gantry did not create it) or another environment is bound
// to is never dropped.
func TestEnvDeleteDropsTheClonesDatabase(t *testing.T) {
	h := NewHarness(t, Options{})
	clone := cloneWithData(t, h)
	del := gantry.DeleteEnvironmentRequest{App: "shop", Env: "testnew", Force: true, Actor: "dev"}
	prod, url := h.DBURL("shop", "prod"), h.DBURL("shop", "testnew")
	mustClone := func(wantCreated bool) {
		t.Helper()
		if _, err := h.O.Clone(h.Ctx, clone, nil); err != nil {
			t.Fatalf("clone: %v", err)
		}
		if c := h.MustEnv(t, "shop", "testnew").DatabaseCopy; c == nil || c.Created != wantCreated || c.FromEnv != "prod" {
			t.Fatalf("testnew's recorded copy: %+v, want one from prod, created %t", c, wantCreated)
		}
	}

	mustClone(true)
	if err := h.O.DeleteEnvironment(h.Ctx, del); err != nil {
		t.Fatal(err)
	}
	if h.DB.Exists(url) {
		t.Error("env delete left the database the clone created")
	}
	if !h.DB.Exists(prod) {
		t.Error("env delete dropped the source's database")
	}

	mustClone(true) // the same clone again, into a new database
	keep := del
	keep.KeepData = true
	if err := h.O.DeleteEnvironment(h.Ctx, keep); err != nil {
		t.Fatal(err)
	}
	if !h.DB.Exists(url) {
		t.Error("env delete --keep-data dropped the database")
	}
	if err := h.DB.DiscardCopy(h.Ctx, &gantry.CopyRecord{}, gantry.DatabaseBinding{URL: url}); err != nil {
		t.Fatal(err) // empty again: a database that was there, not Gantry's
	}

	mustClone(false)
	if err := h.O.DeleteEnvironment(h.Ctx, del); err != nil {
		t.Fatal(err)
	}
	if !h.DB.Exists(url) {
		t.Error("env delete dropped a database the copy found, which Gantry did not create")
	}
	if err := h.DB.DiscardCopy(h.Ctx, &gantry.CopyRecord{Created: true}, gantry.DatabaseBinding{URL: url}); err != nil {
		t.Fatal(err)
	}

	mustClone(true)
	if err := h.Store.PutSecret(h.Ctx, "shop", "prod", "DATABASE_URL", []byte(url)); err != nil {
		t.Fatal(err)
	}
	err := h.O.DeleteEnvironment(h.Ctx, del)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "also prod's") {
		t.Errorf("delete of an environment whose database prod is bound to: %v; want it refused", err)
	}
	if !h.DB.Exists(url) {
		t.Error("env delete dropped a database prod is bound to")
	}
	if a := h.MustEnv(t, "shop", "testnew").ActiveSlot(); a == nil || len(a.Instances) == 0 {
		t.Error("the refused delete stopped testnew first")
	}
}

// cloneWithData serves prod (cloneSource), sets testnew's secrets and
// returns the clone of prod into testnew with its data.
func cloneWithData(t *testing.T, h *Harness) gantry.CloneRequest {
	t.Helper()
	cloneSource(t, h)
	for _, name := range []string{"API_KEY", "MAIL_PASSWORD"} {
		h.mustSecret(t, "shop", "testnew", name)
	}
	return gantry.CloneRequest{App: "shop", Src: "prod", Dst: "testnew", Actor: "dev", WithData: true}
}

// TestCloneInterruptedByACrashIsRemovedAtRecovery: a clone --with-data
// the server's crash interrupted after its copy, before the new
// environment served, is removed at recovery as a failed clone is (its
// instances, route, database copy, the environment), so that the same
// clone command runs again.
func TestCloneInterruptedByACrashIsRemovedAtRecovery(t *testing.T) {
	h := NewHarness(t, Options{})
	clone := cloneWithData(t, h)
	h.CrashAt(t, "switch", gantry.StepStarted, func() {
		h.O.Clone(h.Ctx, clone, nil)
	})
	url := h.DBURL("shop", "testnew")
	if !h.DB.Exists(url) {
		t.Fatal("the clone crashed before it copied the database")
	}
	o := h.NewOrchestrator()
	if err := o.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.FindEnvironment(h.Ctx, "shop", "testnew"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("testnew after recovery: %v; want it removed", err)
	}
	if h.DB.Exists(url) {
		t.Error("testnew's database copy is still there after recovery")
	}
	if len(h.Serving(t, "shop", "testnew")) != 0 {
		t.Error("the router still serves testnew")
	}
	ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "testnew", Limit: 1})
	if len(ds) != 1 || ds[0].State != gantry.DeploymentRecovered || !strings.Contains(ds[0].Error, "removed the environment and its database copy") {
		t.Errorf("the interrupted clone's record: %+v", ds)
	}
	h.MustNoLock(t, "shop", "testnew")
	h.O = o
	if _, err := h.O.Clone(h.Ctx, clone, nil); err != nil {
		t.Fatalf("the same clone after recovery: %v", err)
	}
	h.MustConsistent(t, "shop", "testnew")
}

// TestCloneInterruptedDuringItsCopyIsRemovedAtRecovery: a crash as the
// copy step starts (recovery finds no record: the real Copy's unfinished
// database has a name of its own, dbchange TestUnfinishedCopyIsRecognisable;
// stood for here by the fake), inside the copy once it is made (the record
// was kept as the copy began), and right after it: recovery removes the copy
// with the environment, and the same clone then runs (Miniflux: the next
// clone refused to copy over it).
func TestCloneInterruptedDuringItsCopyIsRemovedAtRecovery(t *testing.T) {
	for _, tc := range []struct {
		at, says string
	}{
		{gantry.StepStarted, "unfinished copy of its database"},
		{"made", "the environment and its database copy"},
		{gantry.StepDone, "the environment and its database copy"},
	} {
		t.Run(tc.at, func(t *testing.T) {
			h := NewHarness(t, Options{})
			clone := cloneWithData(t, h)
			url := h.DBURL("shop", "testnew")
			if tc.at == "made" {
				reached := make(chan struct{})
				h.DB.AfterCopy = func() { close(reached); select {} }
				go h.O.Clone(h.Ctx, clone, nil)
				select {
				case <-reached:
				case <-time.After(10 * time.Second):
					t.Fatal("the clone never made its copy")
				}
				h.DB.AfterCopy = nil
			} else {
				h.CrashAt(t, "copy-data", tc.at, func() {
					h.O.Clone(h.Ctx, clone, nil)
				})
			}
			if tc.at == gantry.StepStarted {
				h.DB.LeaveUnfinishedCopy(url)
			} else if !h.DB.Exists(url) {
				t.Fatal("the clone crashed before it copied the database")
			}
			o := h.NewOrchestrator()
			if err := o.Recover(h.Ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Store.FindEnvironment(h.Ctx, "shop", "testnew"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
				t.Errorf("testnew after recovery: %v; want it removed", err)
			}
			if h.DB.HasUnfinishedCopy(url) || h.DB.Exists(url) {
				t.Error("the copy is still there after recovery")
			}
			ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "testnew", Limit: 1})
			if len(ds) != 1 || ds[0].State != gantry.DeploymentRecovered || !strings.Contains(ds[0].Error, tc.says) {
				t.Errorf("the interrupted clone's record: %+v", ds)
			}
			h.MustNoLock(t, "shop", "testnew")
			h.O = o
			if _, err := h.O.Clone(h.Ctx, clone, nil); err != nil {
				t.Fatalf("the same clone after recovery: %v", err)
			}
			h.MustConsistent(t, "shop", "testnew")
		})
	}
}
