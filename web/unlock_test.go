package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestUnlockKeepsARunningDeploymentsLock: the dashboard's Unlock goes
// through the API, which refuses the lock of a running deployment even
// though the dashboard forces it; the overview offers to cancel it instead.
func TestUnlockKeepsARunningDeploymentsLock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, Version: "1.1.0", Actor: "ci", State: gantry.DeploymentRunning}
	if err := f.db.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := f.db.AcquireLock(ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "ci", Operation: "deploy 1.1.0", DeploymentID: d.ID}); err != nil {
		t.Fatal(err)
	}
	ops := newBrowser(t, f.url)
	csrf := ops.signIn(f.token(t, "ops", gantry.RoleDeployer))
	if _, page, _ := ops.get("/"); !strings.Contains(page, "/apps/shop/actions/cancel?env=test") {
		t.Errorf("overview offers no Cancel for test's running deployment:\n%.2000s", page)
	}
	status, body, _ := ops.post("/apps/shop/actions/unlock", url.Values{"csrf": {csrf}, "env": {"test"}})
	if body = html.UnescapeString(body); status != http.StatusConflict || !strings.Contains(body, "gantry cancel test") {
		t.Errorf("unlock test while #%d runs: %d, want 409 saying how to cancel it\n%.1200s", d.ID, status, body)
	}
	if l, err := f.db.FindLock(ctx, "shop", "test"); err != nil || l.DeploymentID != d.ID {
		t.Errorf("lock after the dashboard's unlock: %+v %v, want it held for #%d", l, err, d.ID)
	}
}
