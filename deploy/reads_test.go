package deploy_test

// What tests read and assert of a harness: records, routes, journals.

import (
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
	"github.com/gantry-dev/gantry/manifest"
)

// MustDeploy deploys and fails the test on an error.
func (h *Harness) MustDeploy(tb testing.TB, app, env string, rel *gantry.Release) *gantry.Deployment {
	tb.Helper()
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: app, Env: env, Release: rel.ID, Actor: "dev"}, nil)
	if err != nil {
		tb.Fatalf("deploy %s to %s: %v", rel.Version, env, err)
	}
	return d
}

// MustEnv returns an environment's record.
func (h *Harness) MustEnv(tb testing.TB, app, env string) *gantry.Environment {
	tb.Helper()
	e, err := h.Store.FindEnvironment(h.Ctx, app, env)
	if err != nil {
		tb.Fatalf("find environment %s: %v", env, err)
	}
	return e
}

// ActiveRelease returns the release active on an environment ("" when none).
func (h *Harness) ActiveRelease(tb testing.TB, app, env string) string {
	tb.Helper()
	e, err := h.Store.FindEnvironment(h.Ctx, app, env)
	if gantry.ErrorCode(err) == gantry.ENOTFOUND {
		return ""
	} else if err != nil {
		tb.Fatal(err)
	}
	if a := e.ActiveSlot(); a != nil {
		return a.ReleaseID
	}
	return ""
}

// Serving returns the sorted targets the router serves for an
// environment: those of its routes, one per http service.
func (h *Harness) Serving(tb testing.TB, app, env string) []string {
	tb.Helper()
	sts, err := h.Router.Status(h.Ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, st := range sts {
		if gantry.IsEnvironmentRoute(st.Route.Name, app, env) {
			for _, t := range st.Active {
				out = append(out, t.Addr)
			}
		}
	}
	sort.Strings(out)
	return out
}

// WebAddrs returns the sorted addresses of a slot's web instances.
func WebAddrs(s *gantry.Slot, workers ...string) []string {
	var out []string
	if s == nil {
		return nil
	}
	for _, inst := range s.Instances {
		if inst.Addr != "" && !contains(workers, inst.Service) {
			out = append(out, inst.Addr)
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Body GETs url and returns the body ("" on an error).
func (h *Harness) Body(url string) string {
	resp, err := h.HTTP.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Steps returns the names of a deployment's journal steps, in order.
func (h *Harness) Steps(tb testing.TB, id int64) []string {
	tb.Helper()
	d, err := h.Store.FindDeployment(h.Ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, s := range d.Steps {
		out = append(out, s.Name)
	}
	return out
}

// MustNoLock fails when the environment's lock is held.
func (h *Harness) MustNoLock(tb testing.TB, app, env string) {
	tb.Helper()
	if l, err := h.Store.FindLock(h.Ctx, app, env); err == nil {
		tb.Errorf("lock of %s is held by %s (%s, deployment #%d), want free", env, l.Holder, l.Operation, l.DeploymentID)
	} else if gantry.ErrorCode(err) != gantry.ENOTFOUND {
		tb.Fatal(err)
	}
}

// Running returns the deployments of an app left running or paused.
func (h *Harness) Running(tb testing.TB, app string) []*gantry.Deployment {
	tb.Helper()
	var out []*gantry.Deployment
	for _, st := range []string{gantry.DeploymentRunning, gantry.DeploymentPaused} {
		ds, err := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: app, State: st, Limit: 100})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, ds...)
	}
	return out
}

// MustConsistent checks that what the environment's record says is active
// is what the router serves, and that the record's instances run.
func (h *Harness) MustConsistent(tb testing.TB, app, env string) {
	tb.Helper()
	e := h.MustEnv(tb, app, env)
	a := e.ActiveSlot()
	if a == nil {
		return
	}
	want := h.webTargets(tb, app, a)
	if got := h.Serving(tb, app, env); strings.Join(got, ",") != strings.Join(want, ",") {
		tb.Errorf("%s: router serves %v, the record's active slot %s (%s) has web instances %v", env, got, a.Name, a.Version, want)
	}
	running := map[string]bool{}
	for _, r := range h.Driver.Running() {
		running[r.Handle] = true
	}
	for _, s := range e.Slots {
		for _, inst := range s.Instances {
			if !running[inst.Handle] {
				tb.Errorf("%s: slot %s lists instance %s-%d (%s) which does not run", env, s.Name, inst.Service, inst.Index, inst.Handle)
			}
		}
	}
}

// webTargets returns the addresses of a slot's http instances, by the
// manifest of the release it runs.
func (h *Harness) webTargets(tb testing.TB, app string, s *gantry.Slot) []string {
	tb.Helper()
	h.mu.Lock()
	m := h.mans[s.ReleaseID]
	h.mu.Unlock()
	if m == nil {
		rel, err := h.Store.FindRelease(h.Ctx, app, s.ReleaseID)
		if err != nil {
			tb.Fatal(err)
		}
		if m, err = manifest.Decode("gantry.yml", rel.Manifest); err != nil {
			tb.Fatal(err)
		}
		h.mu.Lock()
		if h.mans == nil {
			h.mans = map[string]*gantry.Manifest{}
		}
		h.mans[s.ReleaseID] = m
		h.mu.Unlock()
	}
	var workers []string
	for n, svc := range m.Services {
		if !svc.HTTP {
			workers = append(workers, n)
		}
	}
	return WebAddrs(s, workers...)
}

var (
	noKnobs        = memdriver.Knobs{}
	memKnobFailWeb = memdriver.Knobs{FailStart: true}
)
