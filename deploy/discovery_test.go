package deploy_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/deploy"
)

// siblings returns, per slot, what each running instance of app/env was
// told about service's address (GANTRY_SERVICE_<NAME>_URL), and where that
// slot's instances of service listen.
func siblings(h *Harness, env, service string) (told map[string][]string, at map[string][]string) {
	told, at = map[string][]string{}, map[string][]string{}
	key := deploy.DiscoveryVar(service) + "_URL"
	for _, r := range h.Driver.RunningIn("shop", env) {
		told[r.Slot] = append(told[r.Slot], r.Service+"→"+r.Vars[key])
		if r.Service == service {
			at[r.Slot] = append(at[r.Slot], "http://"+r.Addr)
		}
	}
	for _, m := range []map[string][]string{told, at} {
		for _, v := range m {
			sort.Strings(v)
		}
	}
	return told, at
}

// mustFind checks that every instance of every slot was told the address
// of the slot's own api instance.
func mustFind(t *testing.T, h *Harness, env string) {
	t.Helper()
	told, at := siblings(h, env, "api")
	if len(told) == 0 {
		t.Fatalf("%s: nothing runs", env)
	}
	for slot, list := range told {
		if len(at[slot]) != 1 {
			t.Fatalf("%s slot %s: api runs at %v, want one instance", env, slot, at[slot])
		}
		for _, x := range list {
			if !strings.HasSuffix(x, "→"+at[slot][0]) {
				t.Errorf("%s slot %s: %s, want every instance told the slot's own api at %s", env, slot, x, at[slot][0])
			}
		}
	}
}

// TestDiscovery: each instance is told where the http services of its own
// slot listen, so a candidate talks to the candidate's siblings while the
// previous release, kept warm, keeps talking to its own; a service
// restarted in place comes back at the address its siblings know.
func TestDiscovery(t *testing.T) {
	h := NewHarness(t, Options{})
	app := routedApp()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Versions: map[string]string{"api": "7.0.0"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "test", v1)
	mustFind(t, h, "test")
	for _, r := range h.Driver.RunningIn("shop", "test") {
		want := map[string]string{"api": "7.0.0"}[r.Service]
		if want == "" {
			want = "1.0.0"
		}
		if got := r.Vars[deploy.ServiceVersionVar]; got != want {
			t.Errorf("%s: %s = %q, want %q", r.Service, deploy.ServiceVersionVar, got, want)
		}
	}
	h.MustDeploy(t, "shop", "test", v2)
	told, _ := siblings(h, "test", "api")
	if len(told) != 2 {
		t.Fatalf("slots running = %v, want both (the previous one warm)", told)
	}
	mustFind(t, h, "test")
	for _, r := range h.Driver.RunningIn("shop", "test") {
		if r.Service == "web" {
			for _, k := range []string{"_URL", "_ADDR", "_ADDRS"} {
				if r.Vars[deploy.DiscoveryVar("admin")+k] == "" {
					t.Errorf("web of slot %s has no %s", r.Slot, deploy.DiscoveryVar("admin")+k)
				}
			}
			if v, ok := r.Vars[deploy.DiscoveryVar("jobs")+"_URL"]; ok {
				t.Errorf("web was told a worker's URL %q; workers take no requests", v)
			}
		}
	}

	// Redeploy api alone in place: it comes back where web looks for it.
	restart := app
	restart.Envs = []Env{{Name: "test", Strategy: gantry.StrategyRestart}, {Name: "prod", PromoteFrom: "test"}}
	v3 := h.MustRelease(t, restart, Rel{Version: "1.1.1"})
	_, at := siblings(h, "test", "api")
	active := h.MustEnv(t, "shop", "test").Active
	before := at[active]
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v3.ID, Only: "api", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	_, at = siblings(h, "test", "api")
	if strings.Join(at[active], ",") != strings.Join(before, ",") {
		t.Errorf("api restarted in place at %v, want its old address %v", at[active], before)
	}
	mustFind(t, h, "test")
}
