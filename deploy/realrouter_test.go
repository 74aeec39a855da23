package deploy_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy"
)

// newRealRouter returns the in-process router of package proxy, closed when
// the test ends. It serves no listener: the tests read its state.
func newRealRouter(tb testing.TB) gantry.Router {
	r := proxy.New(proxy.Config{HealthPath: "/.gantry/up"})
	tb.Cleanup(func() { r.Close() })
	return r
}

// scenario runs the same operations on a harness and describes each
// outcome by what does not depend on addresses: the journal, the versions
// active, and how the router's state maps onto the environment's slots.
func scenario(t *testing.T, h *Harness) []string {
	t.Helper()
	app := Simple("shop")
	app.Verify = true
	app.Services = append(app.Services, Svc{Name: "jobs", Worker: true})
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01", "02"}})
	restart := app
	restart.Envs = append([]Env(nil), app.Envs...)
	restart.Envs[0].Strategy = gantry.StrategyRestart
	v3 := h.MustRelease(t, restart, Rel{Version: "1.1.1", Migrations: []string{"01", "02"}})
	var out []string
	note := func(op string, d *gantry.Deployment, err error) {
		t.Helper()
		line := op + ": " + gantry.ErrorCode(err)
		if d != nil {
			line += " " + d.State + " " + strings.Join(h.Steps(t, d.ID), ",")
		}
		for _, env := range []string{"test", "staging"} {
			e, ferr := h.Store.FindEnvironment(h.Ctx, "shop", env)
			if ferr != nil {
				continue
			}
			h.MustConsistent(t, "shop", env)
			sts, _ := h.Router.Status(h.Ctx)
			for _, st := range sts {
				if st.Route.Name != gantry.RouteName("shop", env) {
					continue
				}
				prev := "none"
				for _, s := range e.Slots {
					if len(st.Previous) > 0 && strings.Join(sorted(st.Previous), ",") == strings.Join(h.webTargets(t, "shop", s), ",") {
						prev = s.Name
					}
				}
				line += " | " + env + " active " + e.Active + " " + e.ActiveSlot().Version + " previous " + prev + " paused " + fmt.Sprint(st.Paused)
			}
		}
		out = append(out, line)
	}
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Actor: "dev"}, nil)
	note("deploy v1", d, err)
	d, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	note("deploy v2", d, err)
	d, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
	note("rollback", d, err)
	d, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	note("deploy v2 again", d, err)
	d, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v3.ID, Actor: "dev"}, nil)
	note("deploy v3 (its manifest makes test a restart environment)", d, err)
	d, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v3.ID, Actor: "dev"}, nil)
	note("redeploy v3 (restart)", d, err)
	d, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v3.ID, Strategy: gantry.StrategyMaintenance, Actor: "dev"}, nil)
	note("redeploy v3 (maintenance)", d, err)
	d, err = h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "test", New: "staging", Actor: "dev"}, nil)
	note("rename", d, err)
	err = h.NewOrchestrator().Recover(h.Ctx)
	note("recover", nil, err)
	return out
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

// TestMemRouterAgreesWithTheRealRouter runs one scenario against memrouter
// and against proxy.Router: the journals and the routers' states, read
// through the environments' records, must be the same.
func TestMemRouterAgreesWithTheRealRouter(t *testing.T) {
	mem := scenario(t, NewHarness(t, Options{}))
	real := scenario(t, NewHarness(t, Options{RealRouter: true}))
	for i := range max(len(mem), len(real)) {
		var m, r string
		if i < len(mem) {
			m = mem[i]
		}
		if i < len(real) {
			r = real[i]
		}
		if m != r {
			t.Errorf("step %d:\n memrouter: %s\n proxy:     %s", i, m, r)
		}
	}
	if testing.Verbose() {
		t.Logf("scenario:\n%s", strings.Join(real, "\n"))
	}
}
