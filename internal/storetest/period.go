package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

var periodTests = []test{
	{"Bounds", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		at := func(d time.Duration, app, env string) *gantry.Deployment {
			dep := &gantry.Deployment{App: app, Env: env, Kind: gantry.KindDeploy, ReleaseID: "r1", Actor: "ci",
				State: gantry.DeploymentSucceeded, CreatedAt: T0.Add(d)}
			mustOK(t, "CreateDeployment", f.s.CreateDeployment(f.ctx, dep))
			return dep
		}
		// Created out of time order: the period comes back oldest first.
		late := at(3*time.Hour, "shop", "prod")
		at(-time.Nanosecond, "shop", "prod") // before From
		first := at(0, "shop", "prod")
		test := at(time.Hour, "shop", "test")
		at(time.Hour, "api", "prod")
		at(4*time.Hour, "shop", "prod") // To is not in the period
		mid := at(2*time.Hour, "shop", "prod")

		from, to := T0, T0.Add(4*time.Hour)
		got, err := f.s.ListDeploymentsIn(f.ctx, gantry.PeriodFilter{App: "shop", From: from, To: to})
		mustOK(t, "ListDeploymentsIn", err)
		if want := []int64{first.ID, test.ID, mid.ID, late.ID}; !slices.Equal(ids(got), want) {
			t.Errorf("app shop in [T0, T0+4h): got %v, want %v", ids(got), want)
		}
		got, err = f.s.ListDeploymentsIn(f.ctx, gantry.PeriodFilter{App: "shop", Env: "prod", From: from, To: to})
		mustOK(t, "ListDeploymentsIn", err)
		if want := []int64{first.ID, mid.ID, late.ID}; !slices.Equal(ids(got), want) {
			t.Errorf("shop/prod in [T0, T0+4h): got %v, want %v", ids(got), want)
		}
		if len(got) > 0 && len(got[0].Steps) != 0 {
			t.Errorf("no steps asked: got %d steps", len(got[0].Steps))
		}
		got, err = f.s.ListDeploymentsIn(f.ctx, gantry.PeriodFilter{App: "nope", From: from, To: to})
		mustOK(t, "ListDeploymentsIn of an app without deployments", err)
		if len(got) != 0 {
			t.Errorf("app nope: got %v, want none", ids(got))
		}
		for _, bad := range []gantry.PeriodFilter{{From: from, To: to}, {App: "shop", From: to, To: from}, {App: "shop", From: from, To: from}} {
			_, err := f.s.ListDeploymentsIn(f.ctx, bad)
			wantCode(t, "ListDeploymentsIn of a bad period", err, gantry.EINVALID)
		}
	}},
	{"Steps", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		a := f.mustCreateDeployment("shop", "prod", gantry.DeploymentSucceeded)
		b := f.mustCreateDeployment("shop", "prod", gantry.DeploymentFailed)
		journal := func(id int64, names ...string) {
			for i, n := range names {
				s := &gantry.Step{Name: n, State: gantry.StepDone, Detail: n + " detail", StartedAt: T0.Add(time.Duration(i) * time.Second),
					EndedAt: T0.Add(time.Duration(i)*time.Second + 500*time.Millisecond)}
				mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, id, s))
			}
		}
		journal(a.ID, "plan", "switch", "watch", "switch")
		journal(b.ID, "plan", "switch", "auto-rollback")
		got, err := f.s.ListDeploymentsIn(f.ctx, gantry.PeriodFilter{App: "shop", From: T0, To: T0.Add(time.Hour),
			Steps: []string{"switch", "auto-rollback"}})
		mustOK(t, "ListDeploymentsIn", err)
		if len(got) != 2 {
			t.Fatalf("got %d deployments, want 2", len(got))
		}
		names := func(d *gantry.Deployment) (out []string) {
			for _, s := range d.Steps {
				out = append(out, s.Name)
			}
			return out
		}
		if g, w := names(got[0]), []string{"switch", "switch"}; !slices.Equal(g, w) {
			t.Errorf("steps of #%d: got %v, want %v", got[0].ID, g, w)
		}
		if g, w := names(got[1]), []string{"switch", "auto-rollback"}; !slices.Equal(g, w) {
			t.Errorf("steps of #%d: got %v, want %v", got[1].ID, g, w)
		}
		want := gantry.Step{Seq: 2, Name: "switch", State: gantry.StepDone, Detail: "switch detail",
			StartedAt: T0.Add(time.Second), EndedAt: T0.Add(1500 * time.Millisecond)}
		sameJSON(t, "a step of the period", got[1].Steps[0], want)
	}},
}
