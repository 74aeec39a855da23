package deploy_test

import (
	"strings"
	"testing"

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
	cloneSource(t, h)
	for _, name := range []string{"API_KEY", "MAIL_PASSWORD"} {
		h.mustSecret(t, "shop", "testnew", name)
	}
	clone := gantry.CloneRequest{App: "shop", Src: "prod", Dst: "testnew", Actor: "dev", WithData: true}
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
