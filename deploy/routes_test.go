package deploy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// routedApp has three http services, each on its own route, and a worker.
func routedApp() App {
	return App{Name: "shop",
		Services: []Svc{{Name: "web"}, {Name: "api", Route: "{path: /api}"}, {Name: "admin", Route: "{hosts: [admin]}"}, {Name: "jobs", Worker: true}},
		Extra: "verify:\n  - http: {path: /, status: 200, contains: service web}\n" +
			"  - http: {path: /api/orders, status: 200, contains: service api}\n",
		Envs: []Env{{Name: "test"}, {Name: "prod", PromoteFrom: "test"}}}
}

// get asks the router for host and path and returns the answer's body.
func get(t *testing.T, srv *httptest.Server, host, path string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.Status + " " + b.String()
}

// TestServiceRoutes deploys an app whose http services each have their own
// route through the real router: each answers only on its route, the
// verify checks reach each service through the preview host, a switch and
// a rollback move every route together, and a route a release drops goes.
func TestServiceRoutes(t *testing.T) {
	h := NewHarness(t, Options{RealRouter: true})
	srv := httptest.NewServer(h.Router.(http.Handler))
	defer srv.Close()
	h.O.RouterURL = srv.URL
	app := routedApp()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "test", v1)

	wantOn := func(host, path, service, rel string) {
		t.Helper()
		got := get(t, srv, host, path)
		if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, "release "+rel) || !strings.Contains(got, "service "+service+"\n") {
			t.Errorf("GET %s%s = %q, want service %s of release %s", host, path, got, service, rel)
		}
	}
	check := func(rel string) {
		t.Helper()
		wantOn("test.shop.localhost", "/", "web", rel)
		wantOn("test.shop.localhost", "/apix", "web", rel) // whole segments only
		wantOn("test.shop.localhost", "/api", "api", rel)
		wantOn("test.shop.localhost", "/api/orders", "api", rel)
		wantOn("admin.test.shop.localhost", "/", "admin", rel)
		wantOn("admin.test.shop.localhost", "/api/orders", "admin", rel)
		h.MustConsistent(t, "shop", "test")
	}
	check(v1.ID)

	d := h.MustDeploy(t, "shop", "test", v2)
	check(v2.ID)
	steps := strings.Join(h.Steps(t, d.ID), ",")
	if !strings.Contains(steps, "verify") {
		t.Errorf("steps %s: want a verify step", steps)
	}
	if _, err := h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	check(v1.ID)

	// A release without admin: its route goes with the switch.
	slim := app
	slim.Services = []Svc{app.Services[0], app.Services[1], app.Services[3]}
	v3 := h.MustRelease(t, slim, Rel{Version: "1.2.0"})
	h.MustDeploy(t, "shop", "test", v3)
	wantOn("test.shop.localhost", "/api/orders", "api", v3.ID)
	if got := get(t, srv, "admin.test.shop.localhost", "/"); !strings.HasPrefix(got, "404") {
		t.Errorf("GET admin.test.shop.localhost/ after admin left = %q, want 404", got)
	}
	sts, _ := h.Router.Status(h.Ctx)
	var names []string
	for _, st := range sts {
		names = append(names, st.Route.Name)
	}
	if got, want := strings.Join(names, ","), "shop/test,shop/test/api"; got != want {
		t.Errorf("routes = %s, want %s", got, want)
	}
}

// TestServiceRoutesVerifyFails shows that a verify check addressed to one
// service's path reaches that service's candidate: a candidate whose api
// answers 500 is refused and nothing switches.
func TestServiceRoutesVerifyFails(t *testing.T) {
	h := NewHarness(t, Options{RealRouter: true})
	srv := httptest.NewServer(h.Router.(http.Handler))
	defer srv.Close()
	h.O.RouterURL = srv.URL
	app := routedApp()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "test", v1)
	h.Driver.SetService("api", memdriver.Knobs{Answer500: true})
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	if err == nil || !strings.Contains(gantry.ErrorMessage(err), "verify check 2") {
		t.Fatalf("deploy with a failing api = %v, want verify check 2 to fail", err)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("active release = %s, want %s still", got, v1.ID)
	}
}

// TestWatchPerServiceRoute: the post-switch watch judges each service's
// route by its own figures; errors on the api alone roll the whole release
// back, every route included.
func TestWatchPerServiceRoute(t *testing.T) {
	h := NewHarness(t, Options{})
	app := routedApp()
	app.Envs[0].Watch = "{window: 2s, max_error_rate: 0.05, min_requests: 10}"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "test", v1)
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "watch" && s.State == gantry.StepStarted {
			for _, a := range h.Mem.Serving("shop/test/api") {
				h.Mem.AddTraffic(a, 100, 40, 0)
			}
			for _, a := range h.Mem.Serving("shop/test") {
				h.Mem.AddTraffic(a, 100, 0, 0)
			}
		}
	})
	defer h.SetOnStep(nil)
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "rolled back automatically") || !strings.Contains(msg, "error rate 40% (40 of 100)") {
		t.Fatalf("deploy = %v, want an automatic rollback for the api's error rate", err)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("active release = %s, want %s again", got, v1.ID)
	}
	h.MustConsistent(t, "shop", "test")
}

// TestSwitchPutsRoutesBackWhenOneFails: when one service's route cannot
// switch (its candidate never gets healthy through the router), the routes
// switched before it go back, so every service keeps serving one release.
func TestSwitchPutsRoutesBackWhenOneFails(t *testing.T) {
	h := NewHarness(t, Options{})
	h.Mem.Tries = 3
	app := routedApp()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "test", v1)
	before := map[string][]string{}
	for _, n := range []string{"shop/test", "shop/test/api", "shop/test/admin"} {
		before[n] = h.Mem.Serving(n)
	}
	// web (its route switches last: admin, api, web) answers its health checks until the
	// orchestrator has seen it healthy, then stops: the router's round fails.
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "switch" && s.State == gantry.StepStarted {
			for _, r := range h.Driver.RunningIn("shop", "test") {
				if r.Service == "web" && r.ReleaseID == v2.ID {
					h.Driver.Kill(r.Handle)
				}
			}
		}
	})
	defer h.SetOnStep(nil)
	if _, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil); err == nil {
		t.Fatal("deploy succeeded with web dead at the switch")
	}
	for n, want := range before {
		if got := h.Mem.Serving(n); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s serves %v after the failed switch, want %v (v1) again", n, got, want)
		}
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("active release = %s, want %s", got, v1.ID)
	}
}
