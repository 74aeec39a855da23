package deploy_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// handles returns the handles of what runs in app/env, by service.
func handles(h *Harness, env string) map[string]string {
	out := map[string][]string{}
	for _, r := range h.Driver.RunningIn("shop", env) {
		out[r.Service] = append(out[r.Service], r.Handle)
	}
	flat := map[string]string{}
	for s, hs := range out {
		sort.Strings(hs)
		flat[s] = strings.Join(hs, ",")
	}
	return flat
}

func stepMessages(t *testing.T, h *Harness, id int64) string {
	t.Helper()
	d, err := h.Store.FindDeployment(h.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range d.Steps {
		b.WriteString(s.Name + ": " + s.Detail + "\n")
	}
	return b.String()
}

// TestDeployLeavesUnchangedRunning: a deploy that would start every
// service as it runs (same artifact, same version of the service, same
// configuration) starts nothing; with the restart strategy only the
// services whose artifact, own version or configuration changed are
// restarted, and the journal names those left running; a blue-green
// candidate says what changed. A service without a version of its own has
// the release's: a new release version restarts it, since the instance is
// told its version.
func TestDeployLeavesUnchangedRunning(t *testing.T) {
	h := NewHarness(t, Options{})
	app := routedApp()
	all := []string{"web", "api", "admin", "jobs"}
	own := map[string]string{"web": "3.0.0", "api": "2.0.0", "admin": "1.4.0", "jobs": "1.0.0"}
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Same: all, Versions: own})
	v1b := h.MustRelease(t, app, Rel{Version: "1.0.1", Same: all, Versions: own}) // a rebuild: same artifacts and services' versions
	own2 := map[string]string{"web": "3.0.0", "api": "2.1.0", "admin": "1.4.0", "jobs": "1.0.0"}
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Same: []string{"web", "admin", "jobs"}, Versions: own2})
	h.MustDeploy(t, "shop", "test", v1)
	before, started := handles(h, "test"), h.Driver.Started()

	d := h.MustDeploy(t, "shop", "test", v1b)
	if got := h.Driver.Started(); got != started {
		t.Errorf("a deploy of the same artifacts started %d instances", got-started)
	}
	if msgs := stepMessages(t, h, d.ID); !strings.Contains(msgs, "left running admin, api, jobs, web") {
		t.Errorf("journal:\n%s\nwant it to name the services left running", msgs)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1b.ID {
		t.Errorf("active release = %s, want %s", got, v1b.ID)
	}
	h.MustConsistent(t, "shop", "test")

	// One service changed, restarted in place: only it.
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Strategy: gantry.StrategyRestart, Actor: "dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	after := handles(h, "test")
	for _, s := range all {
		if changed := after[s] != before[s]; changed != (s == "api") {
			t.Errorf("%s: restarted = %v, want %v", s, changed, s == "api")
		}
	}
	if got := h.Driver.Started() - started; got != 1 {
		t.Errorf("started %d instances, want 1 (api)", got)
	}
	if msgs := stepMessages(t, h, d.ID); !strings.Contains(msgs, "left running (unchanged): admin, jobs, web") {
		t.Errorf("journal:\n%s\nwant it to name the services left running", msgs)
	}
	h.MustConsistent(t, "shop", "test")

	// A changed variable changes every service.
	vars := app
	vars.Envs = []Env{{Name: "test", Vars: "{LOG_LEVEL: debug}"}, {Name: "prod", PromoteFrom: "test"}}
	v3 := h.MustRelease(t, vars, Rel{Version: "1.1.1", Same: all, Versions: own2})
	started = h.Driver.Started()
	d = h.MustDeploy(t, "shop", "test", v3)
	if got := h.Driver.Started() - started; got != 4 {
		t.Errorf("a changed variable started %d instances, want 4", got)
	}
	_ = d

	// A new release version restarts a service that has no version of its
	// own, even with the same artifact: its instances are told the version.
	v4 := h.MustRelease(t, vars, Rel{Version: "1.2.0", Same: all})
	started = h.Driver.Started()
	h.MustDeploy(t, "shop", "test", v4)
	if got := h.Driver.Started() - started; got != 4 {
		t.Errorf("a new release version started %d instances, want 4", got)
	}
}
