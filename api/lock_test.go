package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// fakeCancels records what it was asked to cancel.
type fakeCancels struct{ asked []string }

func (f *fakeCancels) Cancel(ctx context.Context, app, env, actor string) (*gantry.Deployment, error) {
	f.asked = append(f.asked, app+"/"+env+" by "+actor)
	return &gantry.Deployment{ID: 7, App: app, Env: env, State: gantry.DeploymentFailed, ReleaseID: "shop-1.1.0", Error: "cancelled by " + actor}, nil
}

// TestUnlockKeepsALiveDeploymentsLock (invariant 12): a lock whose
// deployment is running cannot be removed, forced or not, nor one whose
// deployment is paused; the refusal is a conflict naming the deployment and
// the command that stops it. A lock whose deployment has ended, and a
// manual lock, are released with force as ever.
func TestUnlockKeepsALiveDeploymentsLock(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	if err := f.db.CreateApp(ctx, &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	ops := f.token(t, "ops", "deployer")
	for _, c := range []struct {
		state string
		want  string // in the refusal; "" when the forced unlock goes through
	}{
		{gantry.DeploymentRunning, "gantry cancel test"},
		{gantry.DeploymentPaused, "gantry continue test --abort"},
		{gantry.DeploymentFailed, ""},
		{gantry.DeploymentRecovered, ""},
	} {
		d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, Version: "1.1.0", Actor: "ci", State: c.state}
		if err := f.db.CreateDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := f.db.AcquireLock(ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "ci", Operation: "deploy 1.1.0", DeploymentID: d.ID}); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/v1/apps/shop/environments/test/lock?force=true", "/v1/apps/shop/environments/test/lock"} {
			if c.want == "" && !strings.Contains(path, "force") {
				continue
			}
			status, eb := f.call(t, http.MethodDelete, path, ops)
			switch {
			case c.want == "" && status != http.StatusOK:
				t.Errorf("DELETE %s, deployment %s: %d %q, want 200", path, c.state, status, eb.Error)
			case c.want != "" && (status != http.StatusConflict || !strings.Contains(eb.Error, "#"+strconv.FormatInt(d.ID, 10)) || !strings.Contains(eb.Error, c.want)):
				t.Errorf("DELETE %s, deployment %s: %d %q, want 409 naming #%d and %q", path, c.state, status, eb.Error, d.ID, c.want)
			}
		}
		if c.want != "" {
			if _, err := f.db.FindLock(ctx, "shop", "test"); err != nil {
				t.Errorf("deployment %s: lock gone after the refused unlocks: %v", c.state, err)
			}
			if err := f.db.ReleaseLock(ctx, "shop", "test", "ci", false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.db.AcquireLock(ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "ann", Operation: "manual lock", Reason: "release freeze"}); err != nil {
		t.Fatal(err)
	}
	if status, eb := f.call(t, http.MethodDelete, "/v1/apps/shop/environments/test/lock", ops); status != http.StatusConflict || !strings.Contains(eb.Error, "locked by ann") {
		t.Errorf("unlock another's manual lock without force: %d %q, want 409 locked by ann", status, eb.Error)
	}
	if status, eb := f.call(t, http.MethodDelete, "/v1/apps/shop/environments/test/lock?force=true", ops); status != http.StatusOK {
		t.Errorf("unlock a manual lock with force: %d %q, want 200", status, eb.Error)
	}
}

// TestCancelRoute: cancel goes to the server's own cancel service with
// the caller as actor, needs deploy on the environment, and is audited.
func TestCancelRoute(t *testing.T) {
	f := newAccessFixture(t)
	if err := f.db.CreateApp(context.Background(), &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	ci := f.token(t, "ci", "deployer", "test")
	if status, eb := f.call(t, http.MethodPost, "/v1/apps/shop/environments/test/cancel", ci); status != http.StatusBadRequest || !strings.Contains(eb.Error, "does not cancel") {
		t.Errorf("cancel without a cancel service: %d %q, want 400", status, eb.Error)
	}
	fc := &fakeCancels{}
	f.srv.Cancels = fc
	if status, eb := f.call(t, http.MethodPost, "/v1/apps/shop/environments/prod/cancel", ci); status != http.StatusForbidden || !strings.Contains(eb.Error, "lacks deploy on environment prod") {
		t.Errorf("cancel prod as ci: %d %q, want 403", status, eb.Error)
	}
	if status, eb := f.call(t, http.MethodPost, "/v1/apps/shop/environments/test/cancel", ci); status != http.StatusOK {
		t.Errorf("cancel test as ci: %d %q, want 200", status, eb.Error)
	}
	if strings.Join(fc.asked, ";") != "shop/test by ci" {
		t.Errorf("cancel service asked %q, want shop/test by ci", fc.asked)
	}
	es, err := f.db.ListAudit(context.Background(), gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Actor+" "+e.Env+" "+e.Release+" "+e.Result)
	}
	if want := "ci test  failed,ci prod  denied,ci test shop-1.1.0 ok"; strings.Join(got, ",") != want {
		t.Errorf("audit: %q, want %q", strings.Join(got, ","), want)
	}
}
