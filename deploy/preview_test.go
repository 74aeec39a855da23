package deploy_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/deploy"
)

// TestPreviewClone: a preview is a clone of its template through the
// engine, with the branch's release, its own host and a new database of
// its own; the previews gate bounds how many exist; deleting one drops the
// database Gantry made for it and nothing of the template's.
func TestPreviewClone(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Database = true
	app.Extra = "previews: {from: test, max: 1}\n"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01_init"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01_init", "02_more"}})
	h.MustDeploy(t, "shop", "test", v1)
	testDB := h.DBURL("shop", "test")
	previewDB := "mem://shop/mr-1/preview"
	if err := h.Store.PutSecret(h.Ctx, "shop", "mr-1", deploy.DatabaseURLSecret, []byte(previewDB)); err != nil {
		t.Fatal(err)
	}
	p := &gantry.Preview{Forge: "github", Branch: "feature/x", MergeRequest: 1, Database: true}
	d, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "mr-1", Release: v2.ID,
		Hosts: []string{"feature-x.preview.shop.localhost"}, Preview: p, Actor: "hook-github-shop"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if steps := strings.Join(h.Steps(t, d.ID), ","); !strings.Contains(steps, "create,create-database") {
		t.Errorf("journal %s lacks create, create-database", steps)
	}
	e := h.MustEnv(t, "shop", "mr-1")
	if e.Preview == nil || e.Preview.MergeRequest != 1 || e.ClonedFrom != "test" || strings.Join(e.Spec.Hosts, ",") != "feature-x.preview.shop.localhost" {
		t.Errorf("mr-1: preview %+v from %q hosts %v", e.Preview, e.ClonedFrom, e.Spec.Hosts)
	}
	if got := h.ActiveRelease(t, "shop", "mr-1"); got != v2.ID {
		t.Errorf("mr-1 runs %s, want the branch's %s", got, v2.ID)
	}
	if applied, _ := h.DB.Applied(previewDB); strings.Join(applied, ",") != "01_init,02_more" {
		t.Errorf("mr-1's database: %v, want the branch's migrations on a new database", applied)
	}
	if applied, _ := h.DB.Applied(testDB); strings.Join(applied, ",") != "01_init" {
		t.Errorf("test's database: %v, want it untouched", applied)
	}
	h.MustConsistent(t, "shop", "mr-1")

	// One more than previews.max is refused, before anything changes.
	before := h.state(t, "shop")
	_, err = h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "mr-2", Release: v2.ID,
		Preview: &gantry.Preview{MergeRequest: 2}, Actor: "hook-github-shop"}, nil)
	h.mustRefuse(t, "shop", before, err, deploy.GatePreviews, "gantry env delete mr-1 --force")
	// A release whose manifest declares no previews makes none.
	plain := Simple("shop")
	v0 := h.MustRelease(t, plain, Rel{Version: "0.9.0"})
	before = h.state(t, "shop")
	_, err = h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "br-x", Release: v0.ID,
		Preview: &gantry.Preview{Branch: "x"}, Actor: "hook-github-shop"}, nil)
	h.mustRefuse(t, "shop", before, err, deploy.GatePreviews, "")

	// Deleted: the preview's own database goes, the template's stays.
	if err := h.O.DeleteEnvironment(h.Ctx, gantry.DeleteEnvironmentRequest{App: "shop", Env: "mr-1", Force: true, Actor: "hook-github-shop"}); err != nil {
		t.Fatal(err)
	}
	if h.DB.Exists(previewDB) || !h.DB.Exists(testDB) {
		t.Errorf("after the delete: preview database exists %t (want false), test's %t (want true)", h.DB.Exists(previewDB), h.DB.Exists(testDB))
	}
	// A preview bound (by a fallback) to the template's database never
	// drops it.
	if err := h.Store.PutSecret(h.Ctx, "shop", "mr-3", deploy.DatabaseURLSecret, []byte(testDB)); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.PutEnvironment(h.Ctx, &gantry.Environment{App: "shop", Name: "mr-3", ClonedFrom: "test", Preview: &gantry.Preview{MergeRequest: 3, Database: true}}); err != nil {
		t.Fatal(err)
	}
	if err := h.O.DeleteEnvironment(h.Ctx, gantry.DeleteEnvironmentRequest{App: "shop", Env: "mr-3", Force: true, Actor: "dev"}); err == nil || !h.DB.Exists(testDB) {
		t.Errorf("deleting a preview bound to test's database: err %v, test's database exists %t; want a refusal and the database kept", err, h.DB.Exists(testDB))
	}
}

// TestPreviewsMaxUnderConcurrency: previews asked for at the same instant
// (two merge requests opened together) never make more than previews.max:
// the bound is counted and the new environment recorded as one step.
func TestPreviewsMaxUnderConcurrency(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Extra = "previews: {from: test, max: 2}\n"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	const n = 12
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: fmt.Sprintf("mr-%d", i+1), Release: v1.ID,
				Hosts: []string{fmt.Sprintf("mr-%d.preview.shop.localhost", i+1)}, Preview: &gantry.Preview{Forge: "github", MergeRequest: i + 1}, Actor: "hook-github-shop"}, nil)
		}()
	}
	close(start)
	wg.Wait()
	made, refused := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			made++
		case gantry.ErrorCode(err) == gantry.EPOLICY && strings.HasPrefix(gantry.ErrorMessage(err), deploy.GatePreviews+":"):
			refused++
		default:
			t.Errorf("mr-%d: %v", i+1, err)
		}
	}
	envs, err := h.Store.ListEnvironments(h.Ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	var previews []string
	for _, e := range envs {
		if e.Preview != nil {
			previews = append(previews, e.Name)
		}
	}
	if made != 2 || refused != n-2 || len(previews) != 2 {
		t.Errorf("%d previews asked for at once with max 2: %d made, %d refused by the gate, previews now %v; want 2, %d, two", n, made, refused, previews, n-2)
	}
}
