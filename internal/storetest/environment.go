package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// environment returns app's environment name with every field set.
func environment(app, name string) *gantry.Environment {
	at := T0.Add(-time.Hour)
	return &gantry.Environment{
		App:  app,
		Name: name,
		Spec: gantry.EnvironmentSpec{
			Hosts:       []string{name + "." + app + ".localhost"},
			Runtime:     gantry.RuntimeSpec{Driver: "process"},
			Strategy:    gantry.StrategyBlueGreen,
			KeepWarm:    10 * time.Minute,
			PromoteFrom: "test",
			Vars:        map[string]string{"LOG_LEVEL": "debug"},
			Secrets:     []string{"DATABASE_URL"},
			Approvals:   &gantry.ApprovalPolicy{Required: 1, Roles: []string{"approver"}},
		},
		Active: gantry.SlotBlue,
		Slots: map[string]*gantry.Slot{
			gantry.SlotBlue: {Name: gantry.SlotBlue, State: gantry.SlotActive, ReleaseID: "r1", Version: "3.0.1",
				Instances: []gantry.Instance{{Service: "web", Index: 0, Addr: "127.0.0.1:41001",
					Handle: `{"pid":4242}`, StartedAt: at}},
				Since: at, Verified: true},
			gantry.SlotGreen: {Name: gantry.SlotGreen, State: gantry.SlotStandby, ReleaseID: "r0",
				WarmUntil: at.Add(10 * time.Minute)},
		},
		ClonedFrom: "prod",
		CreatedAt:  at,
		UpdatedAt:  at.Add(time.Minute),
	}
}

func envNames(envs []*gantry.Environment) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.App + "/" + e.Name
	}
	return out
}

var environmentTests = []test{
	{"PutFind", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		want := environment("shop", "test")
		mustOK(t, "PutEnvironment", f.s.PutEnvironment(f.ctx, want))
		got, err := f.s.FindEnvironment(f.ctx, "shop", "test")
		mustOK(t, "FindEnvironment", err)
		sameJSON(t, "FindEnvironment", got, want)
	}},
	{"Defaults", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		env := &gantry.Environment{App: "shop", Name: "test"}
		mustOK(t, "PutEnvironment", f.s.PutEnvironment(f.ctx, env))
		got, err := f.s.FindEnvironment(f.ctx, "shop", "test")
		mustOK(t, "FindEnvironment", err)
		if !got.CreatedAt.Equal(T0) || !got.UpdatedAt.Equal(T0) {
			t.Errorf("times of a new environment: got created %v updated %v, want the store's clock %v",
				got.CreatedAt, got.UpdatedAt, T0)
		}
		if got.Active != "" || len(got.Slots) != 0 {
			t.Errorf("empty environment: got active %q and %d slots, want none", got.Active, len(got.Slots))
		}
	}},
	{"Replace", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		mustOK(t, "PutEnvironment", f.s.PutEnvironment(f.ctx, environment("shop", "test")))
		want := environment("shop", "test")
		want.Active = gantry.SlotGreen
		want.Slot(gantry.SlotGreen).State = gantry.SlotActive
		want.Slot(gantry.SlotBlue).State = gantry.SlotStandby
		want.Spec.Hosts = nil
		want.UpdatedAt = T0
		mustOK(t, "PutEnvironment again", f.s.PutEnvironment(f.ctx, want))
		got, err := f.s.FindEnvironment(f.ctx, "shop", "test")
		mustOK(t, "FindEnvironment", err)
		sameJSON(t, "FindEnvironment after a replace", got, want)
		envs, err := f.s.ListEnvironments(f.ctx, "shop")
		mustOK(t, "ListEnvironments", err)
		if len(envs) != 1 {
			t.Errorf("ListEnvironments after a replace: got %q, want one", envNames(envs))
		}
	}},
	{"NotFound", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		mustOK(t, "PutEnvironment", f.s.PutEnvironment(f.ctx, environment("shop", "test")))
		_, err := f.s.FindEnvironment(f.ctx, "shop", "prod")
		wantCode(t, "FindEnvironment of a missing name", err, gantry.ENOTFOUND)
		_, err = f.s.FindEnvironment(f.ctx, "api", "test")
		wantCode(t, "FindEnvironment of another app", err, gantry.ENOTFOUND)
		err = f.s.PutEnvironment(f.ctx, environment("nope", "test"))
		wantCode(t, "PutEnvironment for an unknown app", err, gantry.ENOTFOUND)
		err = f.s.PutEnvironment(f.ctx, &gantry.Environment{App: "shop"})
		wantCode(t, "PutEnvironment without a name", err, gantry.EINVALID)
	}},
	{"List", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		for _, e := range []*gantry.Environment{
			environment("shop", "test"), environment("shop", "prod"), environment("api", "staging"),
			environment("shop", "testnew"),
		} {
			mustOK(t, "PutEnvironment", f.s.PutEnvironment(f.ctx, e))
		}
		tests := []struct {
			app  string
			want []string
		}{
			{"shop", []string{"shop/prod", "shop/test", "shop/testnew"}},
			{"api", []string{"api/staging"}},
			{"", []string{"api/staging", "shop/prod", "shop/test", "shop/testnew"}},
			{"nope", []string{}},
		}
		for _, tt := range tests {
			envs, err := f.s.ListEnvironments(f.ctx, tt.app)
			mustOK(t, "ListEnvironments", err)
			if got := envNames(envs); !slices.Equal(got, tt.want) {
				t.Errorf("ListEnvironments(%q): got %q, want %q", tt.app, got, tt.want)
			}
		}
		envs, err := f.s.ListEnvironments(f.ctx, "shop")
		mustOK(t, "ListEnvironments", err)
		sameJSON(t, "listed environment", envs[1], environment("shop", "test"))
	}},
	{"Delete", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		for _, name := range []string{"test", "prod"} {
			mustOK(t, "PutEnvironment", f.s.PutEnvironment(f.ctx, environment("shop", name)))
		}
		d := f.mustCreateDeployment("shop", "test", gantry.DeploymentSucceeded)
		mustOK(t, "DeleteEnvironment", f.s.DeleteEnvironment(f.ctx, "shop", "test"))
		_, err := f.s.FindEnvironment(f.ctx, "shop", "test")
		wantCode(t, "FindEnvironment after delete", err, gantry.ENOTFOUND)
		wantCode(t, "DeleteEnvironment again", f.s.DeleteEnvironment(f.ctx, "shop", "test"), gantry.ENOTFOUND)
		wantCode(t, "DeleteEnvironment of an unknown app", f.s.DeleteEnvironment(f.ctx, "nope", "prod"), gantry.ENOTFOUND)
		_, err = f.s.FindEnvironment(f.ctx, "shop", "prod")
		mustOK(t, "FindEnvironment of the other environment", err)
		// History outlives the environment.
		_, err = f.s.FindDeployment(f.ctx, d.ID)
		mustOK(t, "FindDeployment of a deleted environment", err)
		// The name can be used again (env rename: testnew becomes test).
		mustOK(t, "PutEnvironment after delete", f.s.PutEnvironment(f.ctx, environment("shop", "test")))
	}},
}
