package deploy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/manifest"
	"github.com/gantry-dev/gantry/sqlite"
)

const stackManifest = `app: stack
services:
  web:
    build: {command: "true", artifacts: [VERSION]}
    run: web
    order: 2
  api:
    build: {command: "true", artifacts: [VERSION]}
    run: api
    order: 2
    route: {path: /api}
  worker:
    build: {command: "true", artifacts: [VERSION]}
    run: worker
    http: false
    order: 1
  migrate:
    build: {command: "true", artifacts: [VERSION]}
    run: migrate
    http: false
environments:
  test:
    hosts: [test.stack.localhost]
`

// MustOrchestrator returns an orchestrator over a real store holding the
// releases named (each with the stack manifest).
func MustOrchestrator(tb testing.TB, versions ...string) (*Orchestrator, map[string]*gantry.Release) {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "gantry.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.CreateApp(ctx, &gantry.App{Name: "stack", Repo: "/nonexistent"}); err != nil {
		tb.Fatal(err)
	}
	rels := map[string]*gantry.Release{}
	for i, v := range versions {
		r := &gantry.Release{ID: "r" + v, App: "stack", Version: v, Commit: fmt.Sprintf("%040d", i+1), Manifest: []byte(stackManifest), ManifestDigest: fmt.Sprintf("sha256:%064d", i+1),
			Artifacts: map[string]gantry.Artifact{}}
		for _, s := range []string{"web", "api", "worker", "migrate"} {
			r.Artifacts[s] = gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: fmt.Sprintf("sha256:%063d%d", i, len(s))}
		}
		if err := db.CreateRelease(ctx, r); err != nil {
			tb.Fatal(err)
		}
		rels[v] = r
	}
	return &Orchestrator{Store: db, Decode: manifest.Decode}, rels
}

func mustManifest(tb testing.TB) *gantry.Manifest {
	tb.Helper()
	m, err := manifest.Decode("gantry.yml", []byte(stackManifest))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestMakePlanGroupsInOrder(t *testing.T) {
	o, rels := MustOrchestrator(t, "1.0.0")
	p, err := o.makePlan(context.Background(), rels["1.0.0"], mustManifest(t), nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.orders(), "0 (migrate) → 1 (worker) → 2 (api, web)"; got != want {
		t.Errorf("plan = %s, want %s", got, want)
	}
	for _, g := range p.groups {
		for _, pt := range g.parts {
			if pt.rel.ID != rels["1.0.0"].ID {
				t.Errorf("%s runs release %s, want %s", pt.svc.Name, pt.rel.ID, rels["1.0.0"].ID)
			}
		}
	}
}

// TestMakePlanOnly: with --only, every other service keeps the release
// its instances run on the active slot, per instance.
func TestMakePlanOnly(t *testing.T) {
	o, rels := MustOrchestrator(t, "1.0.0", "1.1.0", "1.2.0")
	active := &gantry.Slot{Name: gantry.SlotBlue, State: gantry.SlotActive, ReleaseID: rels["1.1.0"].ID, Instances: []gantry.Instance{
		{Service: "migrate", Index: 1},
		{Service: "worker", Index: 1, ReleaseID: rels["1.0.0"].ID},
		{Service: "api", Index: 1, ReleaseID: rels["1.1.0"].ID},
		{Service: "web", Index: 1, ReleaseID: rels["1.1.0"].ID},
	}}
	p, err := o.makePlan(context.Background(), rels["1.2.0"], mustManifest(t), active, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"migrate": "1.1.0", "worker": "1.0.0", "api": "1.1.0", "web": "1.2.0"}
	for _, g := range p.groups {
		for _, pt := range g.parts {
			if pt.rel.Version != want[pt.svc.Name] {
				t.Errorf("%s runs %s, want %s", pt.svc.Name, pt.rel.Version, want[pt.svc.Name])
			}
		}
	}
	if got := p.describe(nil); !strings.Contains(got, "only=web") {
		t.Errorf("describe = %q, want it to say only=web", got)
	}
}

func TestMakePlanOnlyRefused(t *testing.T) {
	o, rels := MustOrchestrator(t, "1.0.0")
	active := &gantry.Slot{Name: gantry.SlotBlue, ReleaseID: rels["1.0.0"].ID, Instances: []gantry.Instance{{Service: "web", Index: 1}}}
	for _, tc := range []struct {
		name   string
		active *gantry.Slot
		only   string
		want   string
	}{
		{"unknown service", active, "nope", "has no service"},
		{"nothing running", nil, "web", "nothing runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := o.makePlan(context.Background(), rels["1.0.0"], mustManifest(t), tc.active, tc.only, nil)
			if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), tc.want) {
				t.Errorf("makePlan(only=%s) = %v, want EINVALID saying %q", tc.only, err, tc.want)
			}
		})
	}
}

func TestCheckOpts(t *testing.T) {
	o := &Orchestrator{}
	m := mustManifest(t)
	n := func(i int) *int { return &i }
	for _, tc := range []struct {
		name       string
		strategy   string
		pauseAfter *int
		only       string
		want       string // empty: accepted
	}{
		{"no options", gantry.StrategyBlueGreen, nil, "", ""},
		{"pause after a group", gantry.StrategyBlueGreen, n(1), "", ""},
		{"pause after group 0", gantry.StrategyBlueGreen, n(0), "", ""},
		{"no such group", gantry.StrategyBlueGreen, n(5), "", "groups: 0, 1, 2"},
		{"pause with restart", gantry.StrategyRestart, n(1), "", "bluegreen"},
		{"pause with maintenance", gantry.StrategyMaintenance, n(1), "", "holds writes"},
		{"only unknown", gantry.StrategyBlueGreen, nil, "db", "no service"},
		{"only with restart", gantry.StrategyRestart, nil, "web", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := o.checkOpts(&op{m: m, spec: &gantry.EnvironmentSpec{}, strategy: tc.strategy, pauseAfter: tc.pauseAfter, only: tc.only})
			if tc.want == "" {
				if err != nil {
					t.Errorf("checkOpts = %v, want accepted", err)
				}
				return
			}
			if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), tc.want) {
				t.Errorf("checkOpts = %v, want EINVALID saying %q", err, tc.want)
			}
		})
	}
}

func TestPreviewURL(t *testing.T) {
	for _, tc := range []struct{ router, want string }{
		{"http://127.0.0.1:8080", "http://preview.test.localhost:8080/"},
		{"http://127.0.0.1", "http://preview.test.localhost/"},
		{"", "http://preview.test.localhost/"},
	} {
		o := &Orchestrator{RouterURL: tc.router}
		if got := o.previewURL("preview.test.localhost"); got != tc.want {
			t.Errorf("previewURL with router %q = %s, want %s", tc.router, got, tc.want)
		}
	}
}

// stateDriver is a driver whose instances are in a fixed state; only
// Inspect is used by the readiness checks.
type stateDriver struct {
	gantry.Driver
	state string
}

func (d stateDriver) Inspect(ctx context.Context, inst gantry.Instance) (gantry.InstanceState, error) {
	return gantry.InstanceState{State: d.state, ExitCode: 3}, nil
}

// TestWaitReadyWorker: a worker with a health path is probed over HTTP
// until it answers; one without is ready when it still runs after its delay.
func TestWaitReadyWorker(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" || calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	hc := gantry.HealthCheck{Path: "/status", Interval: 10 * time.Millisecond, Timeout: time.Second, StatusMin: 200, StatusMax: 399, HealthyAfter: 1}
	o := &Orchestrator{}
	ctx := context.Background()
	worker := &gantry.Service{Name: "worker", Health: hc}
	if err := o.waitReady(ctx, stateDriver{state: gantry.InstanceRunning}, gantry.Instance{Service: "worker", Index: 1, Addr: addr}, worker); err != nil {
		t.Fatalf("waitReady(worker with a health path) = %v", err)
	}
	if n := calls.Load(); n < 3 {
		t.Errorf("health path probed %d times, want until it answered (3)", n)
	}
	plain := &gantry.Service{Name: "worker", Ready: 10 * time.Millisecond}
	for _, tc := range []struct {
		state   string
		wantErr bool
	}{{gantry.InstanceRunning, false}, {gantry.InstanceExited, true}} {
		err := o.waitReady(ctx, stateDriver{state: tc.state}, gantry.Instance{Service: "worker", Index: 1, Addr: addr}, plain)
		if (err != nil) != tc.wantErr {
			t.Errorf("waitReady(worker %s) = %v, want error: %v", tc.state, err, tc.wantErr)
		}
	}
}
