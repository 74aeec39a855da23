package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

var deploymentTests = []test{
	{"CreateFind", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		want := &gantry.Deployment{
			App: "shop", Env: "prod", Kind: gantry.KindPromote, ReleaseID: "r-0a1b", Version: "3.0.1",
			FromRelease: "r-9f8e", FromEnv: "test", Slot: gantry.SlotGreen, Strategy: gantry.StrategyBlueGreen,
			Actor: "alice", State: gantry.DeploymentRunning, CreatedAt: T0.Add(-time.Second),
		}
		mustOK(t, "CreateDeployment", f.s.CreateDeployment(f.ctx, want))
		if want.ID <= 0 {
			t.Fatalf("CreateDeployment: got ID %d, want a positive ID", want.ID)
		}
		got, err := f.s.FindDeployment(f.ctx, want.ID)
		mustOK(t, "FindDeployment", err)
		sameJSON(t, "FindDeployment", got, want)
		if len(got.Steps) != 0 {
			t.Errorf("FindDeployment of a new deployment: got %d steps, want 0", len(got.Steps))
		}
	}},
	{"RolloutState", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		two, zero := 2, 0
		d := &gantry.Deployment{App: "shop", Env: "prod", Kind: gantry.KindDeploy, ReleaseID: "r-1", Version: "1.0.0",
			Actor: "alice", State: gantry.DeploymentRunning, PauseAfter: &two, Only: "web"}
		mustOK(t, "CreateDeployment", f.s.CreateDeployment(f.ctx, d))
		d.GroupDone, d.State = &zero, gantry.DeploymentPaused
		mustOK(t, "UpdateDeployment", f.s.UpdateDeployment(f.ctx, d))
		got, err := f.s.FindDeployment(f.ctx, d.ID)
		mustOK(t, "FindDeployment", err)
		if got.PauseAfter == nil || *got.PauseAfter != 2 || got.Only != "web" || got.GroupDone == nil || *got.GroupDone != 0 {
			t.Errorf("rollout state: got pause_after %v, only %q, group_done %v; want 2, web, 0", got.PauseAfter, got.Only, got.GroupDone)
		}
		plain := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		got, err = f.s.FindDeployment(f.ctx, plain.ID)
		mustOK(t, "FindDeployment", err)
		if got.PauseAfter != nil || got.GroupDone != nil || got.Only != "" {
			t.Errorf("rollout state of a plain deployment: got %v, %v, %q; want none", got.PauseAfter, got.GroupDone, got.Only)
		}
	}},
	{"Start", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		mustOK(t, "AcquireLock", f.s.AcquireLock(f.ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "rollback"}))
		steps := []gantry.Step{
			{Name: "break-glass", State: gantry.StepDone, Detail: "by alice: outage", StartedAt: T0.Add(-time.Second), EndedAt: T0.Add(-time.Second)},
			{Name: "classify", State: gantry.StepDone, Detail: "patch: 1.0.1 → 1.0.0", EndedAt: T0},
		}
		d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindRollback, ReleaseID: "r-1", Version: "1.0.0",
			Actor: "alice", State: gantry.DeploymentRunning, Steps: slices.Clone(steps)}
		mustOK(t, "StartDeployment", f.s.StartDeployment(f.ctx, d))
		if d.ID <= 0 || !d.CreatedAt.Equal(T0) {
			t.Fatalf("StartDeployment: got ID %d, created %v; want a positive ID, the store's clock %v", d.ID, d.CreatedAt, T0)
		}
		// Steps in the order given, numbered from 1; a zero start is the store's clock.
		steps[0].Seq, steps[1].Seq, steps[1].StartedAt = 1, 2, T0
		sameJSON(t, "StartDeployment's steps", d.Steps, steps)
		got, err := f.s.FindDeployment(f.ctx, d.ID)
		mustOK(t, "FindDeployment", err)
		sameJSON(t, "FindDeployment after StartDeployment", got, d)
		l, err := f.s.FindLock(f.ctx, "shop", "test")
		mustOK(t, "FindLock", err)
		if l.DeploymentID != d.ID {
			t.Errorf("lock after StartDeployment names deployment %d, want %d", l.DeploymentID, d.ID)
		}
		next := &gantry.Step{Name: "switch", State: gantry.StepStarted}
		mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, d.ID, next))
		if next.Seq != 3 {
			t.Errorf("AppendStep after StartDeployment's two steps: got seq %d, want 3", next.Seq)
		}
		// Without the lock: refused, and nothing stored.
		for _, holder := range []string{"bob", ""} {
			env := "test"
			if holder == "" {
				holder, env = "alice", "prod"
			}
			refused := &gantry.Deployment{App: "shop", Env: env, Kind: gantry.KindDeploy, Actor: holder, State: gantry.DeploymentRunning,
				Steps: []gantry.Step{{Name: "classify", State: gantry.StepDone}}}
			wantCode(t, "StartDeployment by "+holder+" on "+env, f.s.StartDeployment(f.ctx, refused), gantry.ENOTFOUND)
			if refused.ID != 0 || refused.Steps[0].Seq != 0 {
				t.Errorf("refused StartDeployment: got ID %d, step seq %d; want both left 0", refused.ID, refused.Steps[0].Seq)
			}
		}
		ds, err := f.s.ListDeployments(f.ctx, gantry.DeploymentFilter{App: "shop"})
		mustOK(t, "ListDeployments", err)
		if len(ds) != 1 {
			t.Errorf("after two refused StartDeployments: %d deployments stored, want 1", len(ds))
		}
	}},
	{"IDsIncrease", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		var last int64
		for i, app := range []string{"shop", "api", "shop", "shop"} {
			d := &gantry.Deployment{App: app, Env: "test", Kind: gantry.KindDeploy, State: gantry.DeploymentRunning}
			mustOK(t, "CreateDeployment", f.s.CreateDeployment(f.ctx, d))
			if d.ID <= last {
				t.Errorf("deployment %d: got ID %d after ID %d, want increasing IDs", i, d.ID, last)
			}
			if !d.CreatedAt.Equal(T0) {
				t.Errorf("deployment %d: got CreatedAt %v, want the store's clock %v", i, d.CreatedAt, T0)
			}
			last = d.ID
		}
	}},
	{"Update", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		d := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		want := *d
		want.State, want.Error, want.FinishedAt = gantry.DeploymentFailed, "health check of web/0 failed", T0.Add(time.Minute)
		want.Slot, want.FromRelease = gantry.SlotGreen, "r0"
		// UpdateDeployment writes state, error, finish time, slot and the
		// replaced release; what was asked (actor, kind, release) stays.
		upd := want
		upd.Actor, upd.Kind, upd.ReleaseID = "mallory", gantry.KindRollback, "other"
		mustOK(t, "UpdateDeployment", f.s.UpdateDeployment(f.ctx, &upd))
		got, err := f.s.FindDeployment(f.ctx, d.ID)
		mustOK(t, "FindDeployment", err)
		sameJSON(t, "FindDeployment after UpdateDeployment", got, &want)
	}},
	{"NotFound", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		d := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		_, err := f.s.FindDeployment(f.ctx, d.ID+1)
		wantCode(t, "FindDeployment of a missing ID", err, gantry.ENOTFOUND)
		err = f.s.UpdateDeployment(f.ctx, &gantry.Deployment{ID: d.ID + 1, State: gantry.DeploymentFailed})
		wantCode(t, "UpdateDeployment of a missing ID", err, gantry.ENOTFOUND)
		bad := &gantry.Deployment{App: "nope", Env: "test", Kind: gantry.KindDeploy}
		wantCode(t, "CreateDeployment for an unknown app", f.s.CreateDeployment(f.ctx, bad), gantry.ENOTFOUND)
		if bad.ID != 0 {
			t.Errorf("refused CreateDeployment: got ID %d, want it left 0", bad.ID)
		}
	}},
	{"ListFilter", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		var d [7]*gantry.Deployment
		d[0] = f.mustCreateDeployment("shop", "test", gantry.DeploymentSucceeded)
		d[1] = f.mustCreateDeployment("shop", "prod", gantry.DeploymentFailed)
		d[2] = f.mustCreateDeployment("api", "test", gantry.DeploymentSucceeded)
		d[3] = f.mustCreateDeployment("shop", "test", gantry.DeploymentFailed)
		d[4] = f.mustCreateDeployment("shop", "prod", gantry.DeploymentSucceeded)
		d[5] = f.mustCreateDeployment("api", "test", gantry.DeploymentRunning)
		d[6] = f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		id := func(is ...int) []int64 {
			out := []int64{}
			for _, i := range is {
				out = append(out, d[i].ID)
			}
			return out
		}
		tests := []struct {
			filter gantry.DeploymentFilter
			want   []int64
		}{
			{gantry.DeploymentFilter{}, id(6, 5, 4, 3, 2, 1, 0)},
			{gantry.DeploymentFilter{App: "shop"}, id(6, 4, 3, 1, 0)},
			{gantry.DeploymentFilter{App: "shop", Env: "test"}, id(6, 3, 0)},
			{gantry.DeploymentFilter{Env: "test"}, id(6, 5, 3, 2, 0)},
			{gantry.DeploymentFilter{State: gantry.DeploymentRunning}, id(6, 5)},
			{gantry.DeploymentFilter{App: "shop", State: gantry.DeploymentFailed}, id(3, 1)},
			{gantry.DeploymentFilter{App: "shop", Env: "test", State: gantry.DeploymentSucceeded}, id(0)},
			{gantry.DeploymentFilter{App: "shop", Env: "test", Limit: 2}, id(6, 3)},
			{gantry.DeploymentFilter{App: "shop", BeforeID: d[4].ID}, id(3, 1, 0)},
			{gantry.DeploymentFilter{App: "shop", Env: "staging"}, id()},
			{gantry.DeploymentFilter{App: "nope"}, id()},
		}
		for _, tt := range tests {
			ds, err := f.s.ListDeployments(f.ctx, tt.filter)
			mustOK(t, "ListDeployments", err)
			if got := ids(ds); !slices.Equal(got, tt.want) {
				t.Errorf("ListDeployments(%+v): got %v, want %v", tt.filter, got, tt.want)
			}
		}
		ds, err := f.s.ListDeployments(f.ctx, gantry.DeploymentFilter{App: "shop", Env: "prod", Limit: 1})
		mustOK(t, "ListDeployments", err)
		if len(ds) == 1 {
			sameJSON(t, "listed deployment", ds[0], d[4])
		}
	}},
	{"ListPaging", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		var all []int64
		for i := range 8 {
			env := "test"
			if i%4 == 3 {
				env = "prod" // gaps in the IDs of the test pages
			}
			d := f.mustCreateDeployment("shop", env, gantry.DeploymentSucceeded)
			if env == "test" {
				all = append([]int64{d.ID}, all...)
			}
		}
		var got [][]int64
		filter := gantry.DeploymentFilter{App: "shop", Env: "test", Limit: 4}
		for range 10 {
			ds, err := f.s.ListDeployments(f.ctx, filter)
			mustOK(t, "ListDeployments", err)
			if len(ds) == 0 {
				break
			}
			got = append(got, ids(ds))
			filter.BeforeID = ds[len(ds)-1].ID
		}
		want := [][]int64{all[:4], all[4:]}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pages of 4: got %v, want %v", got, want)
		}
	}},
	{"ListLimits", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		for range 1003 {
			f.mustCreateDeployment("shop", "test", gantry.DeploymentSucceeded)
		}
		for _, tt := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {1000, 1000}, {1001, 1000}, {1 << 30, 1000}} {
			ds, err := f.s.ListDeployments(f.ctx, gantry.DeploymentFilter{App: "shop", Limit: tt.limit})
			mustOK(t, "ListDeployments", err)
			if len(ds) != tt.want {
				t.Errorf("ListDeployments with limit %d: got %d, want %d", tt.limit, len(ds), tt.want)
			}
		}
	}},
	{"ListWithoutSteps", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		d := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, d.ID, &gantry.Step{Name: "start", State: gantry.StepStarted}))
		ds, err := f.s.ListDeployments(f.ctx, gantry.DeploymentFilter{})
		mustOK(t, "ListDeployments", err)
		if len(ds) != 1 {
			t.Fatalf("ListDeployments: got %d deployments, want 1", len(ds))
		}
		if len(ds[0].Steps) != 0 {
			t.Errorf("ListDeployments: got steps %+v, want none", ds[0].Steps)
		}
	}},
}
