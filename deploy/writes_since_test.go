package deploy_test

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// lastDetails returns the details of the latest deployment's steps.
func lastDetails(t *testing.T, h *Harness, app string) string {
	t.Helper()
	ds, err := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: app, Env: "test", Limit: 1})
	if err != nil || len(ds) == 0 {
		t.Fatalf("no deployment: %v", err)
	}
	d, err := h.Store.FindDeployment(h.Ctx, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range d.Steps {
		out = append(out, s.Name+": "+s.Detail)
	}
	return strings.Join(out, "\n")
}

// TestForcedRollbackCountsTheWritesItLoses: the schema gate's refusal and
// the restore of rollback --force say how many rows were written since the
// snapshot they restore (issue 19: "with the writes since then counted and
// shown"), for an app that migrates itself and across a contract; after a
// reset of the statistics they say the number is unknown.
func TestForcedRollbackCountsTheWritesItLoses(t *testing.T) {
	t.Run("app migrates itself", func(t *testing.T) {
		h, app, _ := selfMigratingHarness(t, "bin/app migrate", false)
		v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
		v2 := h.MustRelease(t, app, Rel{Version: "2.0.0"})
		h.MustDeploy(t, "forum", "test", v1)
		h.MustDeploy(t, "forum", "test", v2)
		h.DB.Write(h.DBURL("forum", "test"), 12)
		before := h.state(t, "forum")
		_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "forum", Env: "test", Actor: "dev"}, nil)
		h.mustRefuse(t, "forum", before, err, "schema", "gantry rollback test --force")
		if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "about 12 rows written since would be lost") {
			t.Errorf("the refusal does not count the writes: %s", msg)
		}
		h.DB.Write(h.DBURL("forum", "test"), 1)
		_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "forum", Env: "test", Actor: "dev", Force: true}, nil)
		mustAllow(t, "rollback --force", err)
		if got := lastDetails(t, h, "forum"); !strings.Contains(got, "lost about 13 rows written since") {
			t.Errorf("the restore does not count the writes it lost:\n%s", got)
		}
	})
	t.Run("across a contract", func(t *testing.T) {
		h := NewHarness(t, Options{})
		migrated(t, h, "contract", false)
		url := h.DBURL("shop", "test")
		h.DB.Write(url, 1)
		before := h.state(t, "shop")
		_, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
		h.mustRefuse(t, "shop", before, err, "schema", "gantry rollback test --force")
		if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "about 1 row written since would be lost") {
			t.Errorf("the refusal does not count the writes: %s", msg)
		}
		h.DB.ResetStats(url)
		_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
		if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "an unknown number of rows written since would be lost") {
			t.Errorf("after a statistics reset the refusal does not say the count is unknown: %s", msg)
		}
		_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev", Force: true}, nil)
		mustAllow(t, "rollback --force", err)
		if got := lastDetails(t, h, "shop"); !strings.Contains(got, "lost an unknown number of rows written since snapshot snap-") {
			t.Errorf("the database rollback does not say what it lost:\n%s", got)
		}
	})
}
