package delivery

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/sqlite"
)

// TestServiceReadsTheStore writes a promotion, its rollback and a release
// with its commit time into a real SQLite store and reads the figures
// back through the Service: the lead time comes from the release's commit
// time, the restore from the rollback's switch.
func TestServiceReadsTheStore(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateApp(ctx, &gantry.App{Name: "shop"}))
	must(db.PutEnvironment(ctx, &gantry.Environment{App: "shop", Name: "prod"}))
	must(db.PutEnvironment(ctx, &gantry.Environment{App: "shop", Name: "test"}))
	must(db.CreateRelease(ctx, &gantry.Release{ID: "r1", App: "shop", Version: "1.0.0", CommittedAt: at(1, 8, 0, 0)}))
	must(db.CreateRelease(ctx, &gantry.Release{ID: "r2", App: "shop", Version: "1.1.0", CommittedAt: at(2, 8, 0, 0)}))
	record := func(kind, rel string, created, switched time.Time) {
		d := &gantry.Deployment{App: "shop", Env: "prod", Kind: kind, ReleaseID: rel, Actor: "ci", State: gantry.DeploymentRunning, CreatedAt: created}
		must(db.CreateDeployment(ctx, d))
		must(db.AppendStep(ctx, d.ID, &gantry.Step{Name: "plan", State: gantry.StepDone, StartedAt: created, EndedAt: created}))
		s := &gantry.Step{Name: "switch", State: gantry.StepStarted, StartedAt: switched.Add(-time.Second)}
		must(db.AppendStep(ctx, d.ID, s))
		s.State, s.EndedAt = gantry.StepDone, switched
		must(db.UpdateStep(ctx, d.ID, s))
		d.State, d.FinishedAt = gantry.DeploymentSucceeded, switched.Add(time.Minute)
		must(db.UpdateDeployment(ctx, d))
	}
	record(gantry.KindPromote, "r1", at(1, 9, 0, 0), at(1, 9, 30, 0))     // lead 1 h 30 min
	record(gantry.KindPromote, "r2", at(2, 9, 0, 0), at(2, 10, 0, 0))     // lead 2 h, then rolled back
	record(gantry.KindRollback, "r1", at(2, 10, 20, 0), at(2, 10, 20, 5)) // restored after 20 min 5 s

	svc := &Service{Store: db}
	rep, err := svc.Delivery(ctx, gantry.DeliveryQuery{App: "shop", From: at(1, 0, 0, 0), To: at(3, 0, 0, 0)})
	must(err)
	if len(rep.Environments) != 2 || rep.Production == nil {
		t.Fatalf("got environments %d and production %v, want prod and test, prod as production", len(rep.Environments), rep.Production)
	}
	p := rep.Production
	if p.Deployments != 2 || p.Failures.RolledBack != 1 || p.ChangeFailureRate != 0.5 || p.PerDay != 1 {
		t.Errorf("prod: got %d deployments, %d rolled back, rate %v, %v a day; want 2, 1, 0.5, 1", p.Deployments, p.Failures.RolledBack, p.ChangeFailureRate, p.PerDay)
	}
	if want := (gantry.DurationStats{Count: 2, Median: 6300, Mean: 6300, P90: 7200, Max: 7200}); p.LeadTime != want {
		t.Errorf("lead time: got %+v, want %+v", p.LeadTime, want)
	}
	if want := (gantry.DurationStats{Count: 1, Median: 1205, Mean: 1205, P90: 1205, Max: 1205}); p.TimeToRestore != want {
		t.Errorf("time to restore: got %+v, want %+v", p.TimeToRestore, want)
	}

	_, err = svc.Delivery(ctx, gantry.DeliveryQuery{App: "nope", From: at(1, 0, 0, 0), To: at(3, 0, 0, 0)})
	if gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("unknown app: got %v, want ENOTFOUND", err)
	}
	_, err = svc.Delivery(ctx, gantry.DeliveryQuery{App: "shop", From: at(3, 0, 0, 0), To: at(1, 0, 0, 0)})
	if gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("a period that ends before it starts: got %v, want EINVALID", err)
	}
	// A period longer than ten years is refused: a day is a row of the
	// report, and a viewer's token must not make the server build millions.
	_, err = svc.Delivery(ctx, gantry.DeliveryQuery{App: "shop", From: at(1, 0, 0, 0).AddDate(-11, 0, 0), To: at(3, 0, 0, 0)})
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "3660 days") {
		t.Errorf("a period of eleven years: got %v, want EINVALID naming 3660 days", err)
	}
	// A misspelt environment is not an environment that had no deployments.
	_, err = svc.Delivery(ctx, gantry.DeliveryQuery{App: "shop", Env: "prdo", From: at(1, 0, 0, 0), To: at(3, 0, 0, 0)})
	if gantry.ErrorCode(err) != gantry.ENOTFOUND || !strings.Contains(gantry.ErrorMessage(err), `"prdo"`) {
		t.Errorf("unknown environment: got %v, want ENOTFOUND naming it", err)
	}
	_, err = svc.Delivery(ctx, gantry.DeliveryQuery{App: "shop", Production: []string{"prod", "prdo"}, From: at(1, 0, 0, 0), To: at(3, 0, 0, 0)})
	if gantry.ErrorCode(err) != gantry.ENOTFOUND || !strings.Contains(gantry.ErrorMessage(err), `"prdo"`) {
		t.Errorf("unknown production environment: got %v, want ENOTFOUND naming it", err)
	}
	// One deleted since (a preview) still has its figures for the period.
	gone := &gantry.Deployment{App: "shop", Env: "mr-7", Kind: gantry.KindDeploy, ReleaseID: "r2", Actor: "ci", State: gantry.DeploymentRunning, CreatedAt: at(2, 11, 0, 0)}
	must(db.CreateDeployment(ctx, gone))
	gone.State, gone.FinishedAt = gantry.DeploymentSucceeded, at(2, 11, 1, 0)
	must(db.UpdateDeployment(ctx, gone))
	rep, err = svc.Delivery(ctx, gantry.DeliveryQuery{App: "shop", Env: "mr-7", From: at(1, 0, 0, 0), To: at(3, 0, 0, 0)})
	if err != nil || len(rep.Environments) != 1 || rep.Environments[0].Deployments != 1 {
		t.Errorf("a deleted environment with a deployment in the period: got %+v, %v; want its one deployment", rep, err)
	}
}
