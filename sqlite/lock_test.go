package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestForcedReleaseSparesALiveDeployment (invariant 12): a forced release
// refuses, in its own transaction, the lock of a deployment that is
// running or paused, and takes the lock of one that has ended.
func TestForcedReleaseSparesALiveDeployment(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		state string
		want  string // the error code of the forced release, "" for none
	}{
		{gantry.DeploymentRunning, gantry.ECONFLICT},
		{gantry.DeploymentPaused, gantry.ECONFLICT},
		{gantry.DeploymentFailed, ""},
		{gantry.DeploymentSucceeded, ""},
		{gantry.DeploymentRecovered, ""},
	} {
		d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, Version: "1.1.0", Actor: "ci", State: c.state}
		if err := db.CreateDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := db.AcquireLock(ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "ci", Operation: "deploy 1.1.0", DeploymentID: d.ID}); err != nil {
			t.Fatal(err)
		}
		err := db.ReleaseLock(ctx, "shop", "test", "ops", true)
		if got := gantry.ErrorCode(err); err != nil && got != c.want || err == nil && c.want != "" {
			t.Errorf("forced release of the lock of a %s deployment: %v, want code %q", c.state, err, c.want)
		}
		if c.want != "" {
			if !strings.Contains(gantry.ErrorMessage(err), "gantry cancel test") {
				t.Errorf("refusal %q does not say how to stop the deployment", gantry.ErrorMessage(err))
			}
			// Its holder, the engine, still releases it.
			if err := db.ReleaseLock(ctx, "shop", "test", "ci", false); err != nil {
				t.Errorf("release by the holder: %v", err)
			}
		}
	}
}
